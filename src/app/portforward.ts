/** The SSH ports of application containers: the kernel's forwards of core/portforward.ts. */
import { closePort, closePortNumber } from '../core/portforward.js';
import { readRecord } from './layout.js';

export { closePort, portHookLines, portTable, SSH_PORT } from '../core/portforward.js';

/**
 * Ends what forward the container has once it stopped (its post-stop hook's work, also when a killed
 * start or monitor left it): by the port its record names, or by a scan of the root's map when the
 * record cannot be read. A record without a port has no forward: a port is changed only while the
 * container is stopped, and that change ends the old one (settings.ts).
 */
export function closeContainerPort(name: string): void {
  let port: number | null;
  try {
    const rec = readRecord(name);
    if (!rec) return closePort(name);
    port = rec.port;
  } catch {
    return closePort(name);
  }
  if (port !== null) closePortNumber(port);
}

/** The SSH ports of application containers: the kernel's forwards of core/portforward.ts, and LXC's hook that ends one. */
import { unlinkSync, writeFileSync } from 'node:fs';
import { closePort, closePortNumber } from '../core/portforward.js';
import { portHookMarkPath, readRecord, type AppRecord } from './layout.js';

export { closePort, portHookLines, portTable, SSH_PORT } from '../core/portforward.js';

/**
 * Ends what forward the container has (after its stop, also one a killed start or monitor left): by
 * the port its record names, or by a scan of the root's map when the record cannot be read. A record
 * without a port has no forward: a port is changed only while the container is stopped, and that
 * change ends the old one (settings.ts).
 */
export function closeContainerPort(name: string): void {
  let rec: AppRecord | undefined;
  try {
    rec = readRecord(name);
  } catch {
    rec = undefined;
  }
  if (!rec) closePort(name);
  else if (rec.port !== null) closePortNumber(rec.port);
}

/** Arms the container's post-stop hook (portHookLines) as its start forwards the port: should it stop on its own, its monitor ends the forward. */
export function armPortHook(name: string): void {
  writeFileSync(portHookMarkPath(name), '');
}

/**
 * Disarms the hook before D-RE's own stop, which ends the forward itself once LXC is done; resolves to
 * whether it was armed (to arm it again should the container still run). Killed after this, the stop
 * leaves the forward to a container that then stops on its own, which the next stop or a start that
 * claims the port removes, as one a killed monitor left.
 */
export function disarmPortHook(name: string): boolean {
  try {
    unlinkSync(portHookMarkPath(name));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** The SSH ports of application containers: the kernel's forwards of core/portforward.ts. */
import { closePort, closePortNumber, reopenPort } from '../core/portforward.js';
import { readRecord, type AppRecord } from './layout.js';

export { closePort, portHookLines, portTable, SSH_PORT } from '../core/portforward.js';

/** A forward closeContainerPort removed, for reopenContainerPort to put back. */
export interface ClosedForward {
  name: string;
  address: string;
  port: number;
}

/**
 * Ends what forward the container has (before and after its stop, also one a killed start or monitor
 * left): by the port its record names, or by a scan of the root's map when the record cannot be read.
 * A record without a port has no forward: a port is changed only while the container is stopped, and
 * that change ends the old one (settings.ts). Resolves to the forward it removed by its port.
 */
export function closeContainerPort(name: string): ClosedForward | undefined {
  let rec: AppRecord | undefined;
  try {
    rec = readRecord(name);
  } catch {
    rec = undefined;
  }
  if (!rec) {
    closePort(name);
    return undefined;
  }
  if (rec.port === null || !closePortNumber(rec.port)) return undefined;
  return rec.address ? { name, address: rec.address, port: rec.port } : undefined;
}

/** Puts back a forward closeContainerPort removed from a container that still runs (its stop failed). */
export function reopenContainerPort(closed: ClosedForward | undefined): void {
  if (closed) reopenPort(closed.name, closed.address, closed.port);
}

/**
 * Control Groups of system containers: the core's ControlGroups on the host group around the
 * container's QEMU process and its threads (QEMU lives in the group itself, not in a leaf).
 */
import { STATUS, type Resource, type ResourceType } from '../core/driver.js';
import { ControlGroups, type Usage } from '../core/controlgroups.js';
import type { Limits } from '../core/limits.js';
import { checkName } from '../core/names.js';
import { requireRoot } from '../core/privilege.js';
import { containerCgroup } from './layout.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';

function sysControlGroups(name: string): ControlGroups {
  return new ControlGroups({ owner: `system container ${name}`, group: containerCgroup(name), procsLeaf: containerCgroup(name) });
}

// A suspended VM's QEMU still exists: its groups and limits may change.
const LIVE = [STATUS.RUNNING, STATUS.SUSPENDED];

/** Runs `fn` under the container's lock once its QEMU is known to run. */
function whileRunning(what: string, name: string, fn: (cgs: ControlGroups) => void): Promise<void> {
  return changing(what, name, async (n) => {
    await refuseUnless(n, what, LIVE);
    fn(sysControlGroups(n));
  });
}

export const createCgroup = (name: string, cgroup: string): Promise<void> => whileRunning('create cgroup in', name, (cgs) => cgs.create(cgroup));
export const destroyCgroup = (name: string, cgroup: string): Promise<void> => whileRunning('destroy cgroup in', name, (cgs) => cgs.destroy(cgroup));
/** Binds a QEMU thread or process of this container (a host PID outside it is PID_NONEXISTENCE). */
export const bindPid = (name: string, cgroup: string, pid: number): Promise<void> => whileRunning('bind a process in', name, (cgs) => cgs.bind(cgroup, pid));
export const unbindPid = (name: string, cgroup: string, pid: number): Promise<void> =>
  whileRunning('unbind a process in', name, (cgs) => cgs.unbind(cgroup, pid));
export const setResource = (name: string, cgroup: string, r: Resource): Promise<void> => whileRunning('set a limit in', name, (cgs) => cgs.set(cgroup, r));
export const unsetResource = (name: string, cgroup: string, r: Resource): Promise<void> =>
  whileRunning('unset a limit in', name, (cgs) => cgs.unset(cgroup, r));
export const setLimit = (name: string, r: Resource): Promise<void> => whileRunning('set a limit on', name, (cgs) => cgs.setOwn(r));
export const unsetLimit = (name: string, r: Resource): Promise<void> => whileRunning('unset a limit on', name, (cgs) => cgs.unsetOwn(r));

/** Reads only: no lock, so the container's status stays readable during the CPU window. */
export async function getResource(name: string, pid: number, type: ResourceType): Promise<Resource> {
  const n = checkName(name, 'container name');
  requireRoot(`get resource of ${n}`);
  requireContainer(n, 'get resource of');
  await refuseUnless(n, 'get resource of', LIVE);
  return sysControlGroups(n).get(pid, type);
}

/** Reads only, no lock: the running container's groups as `read` sees them (limits, usage). */
async function reading<T>(what: string, name: string, read: (cgs: ControlGroups) => T | Promise<T>): Promise<T> {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  requireContainer(n, what);
  await refuseUnless(n, what, LIVE);
  return read(sysControlGroups(n));
}

/** The limits on the container as a whole. */
export const limits = (name: string): Promise<Limits> => reading('read the limits of', name, (cgs) => cgs.ownLimits());
/** What the container as a whole uses now (CPU % over a short window, memory bytes). */
export const usage = (name: string): Promise<Usage> => reading('read the usage of', name, (cgs) => cgs.ownUsage());

/**
 * Control Groups of application containers: the core's ControlGroups on the container's LXC groups,
 * plus what only LXC containers have: the running check and PIDs as seen inside the container (VPIDs).
 */
import { STATUS, type Resource, type ResourceType } from '../core/driver.js';
import { ControlGroups, type Usage } from '../core/controlgroups.js';
import type { Limits } from '../core/limits.js';
import { dreError } from '../core/errors.js';
import { checkInt, checkName } from '../core/names.js';
import { requireRoot } from '../core/privilege.js';
import { containerCgroup, containerProcsCgroup } from './layout.js';
import { hostPidOf as hostPidIn, pidNamespace } from './pidns.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer, runningInit } from './state.js';

/** The core's view of one application container's groups (module-private: the driver spreads every export). */
function appControlGroups(name: string): ControlGroups {
  return new ControlGroups({ owner: `application container ${name}`, group: containerCgroup(name), procsLeaf: containerProcsCgroup(name) });
}

// A frozen container still runs: its groups and limits may change and thaw with it.
const LIVE = [STATUS.RUNNING, STATUS.SUSPENDED];

/** Runs `fn` under the container's lock once it is known to run. */
function whileRunning(what: string, name: string, fn: (cgs: ControlGroups, n: string) => void): Promise<void> {
  return changing(what, name, async (n) => {
    refuseUnless(n, what, LIVE);
    fn(appControlGroups(n), n);
  });
}

/**
 * The host PID of the process that has PID `vpid` in the container's own PID namespace: only processes
 * of that namespace count (a same-numbered process of the host or of another container never does).
 */
function hostPidOf(name: string, vpid: number, what: string): number {
  const v = checkInt(vpid, 'vpid', 1, 2 ** 31 - 1);
  const found = hostPidIn(pidNamespace(name, runningInit(name), what), v);
  if (found === undefined) throw dreError('DRE_ERR_PID_NONEXISTENCE', `${what} ${name}: no process ${v} in the container`);
  return found;
}

export const createCgroup = (name: string, cgroup: string): Promise<void> => whileRunning('create cgroup in', name, (cgs) => cgs.create(cgroup));
export const destroyCgroup = (name: string, cgroup: string): Promise<void> => whileRunning('destroy cgroup in', name, (cgs) => cgs.destroy(cgroup));
/** A host PID that is not a process of this container is refused with PID_NONEXISTENCE (see README). */
export const bindPid = (name: string, cgroup: string, pid: number): Promise<void> => whileRunning('bind a process in', name, (cgs) => cgs.bind(cgroup, pid));
export const bindVpid = (name: string, cgroup: string, vpid: number): Promise<void> =>
  whileRunning('bind a process in', name, (cgs, n) => cgs.bind(cgroup, hostPidOf(n, vpid, 'bind a process in')));
export const unbindPid = (name: string, cgroup: string, pid: number): Promise<void> =>
  whileRunning('unbind a process in', name, (cgs) => cgs.unbind(cgroup, pid));
export const unbindVpid = (name: string, cgroup: string, vpid: number): Promise<void> =>
  whileRunning('unbind a process in', name, (cgs, n) => cgs.unbind(cgroup, hostPidOf(n, vpid, 'unbind a process in')));
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
  refuseUnless(n, 'get resource of', LIVE);
  return appControlGroups(n).get(pid, type);
}

/** Reads only, no lock: the running container's groups as `read` sees them (limits, usage). */
async function reading<T>(what: string, name: string, read: (cgs: ControlGroups) => T | Promise<T>): Promise<T> {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  requireContainer(n, what);
  refuseUnless(n, what, LIVE);
  return read(appControlGroups(n));
}

/** The limits on the container as a whole. */
export const limits = (name: string): Promise<Limits> => reading('read the limits of', name, (cgs) => cgs.ownLimits());
/** What the container as a whole uses now (CPU % over a short window, memory bytes). */
export const usage = (name: string): Promise<Usage> => reading('read the usage of', name, (cgs) => cgs.ownUsage());

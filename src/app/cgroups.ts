/**
 * Control Groups of application containers: the core's operations (cgroupops.ts) on the container's
 * LXC groups, plus what only LXC containers have: PIDs as seen inside the container (VPIDs).
 */
import { STATUS } from '../core/driver.js';
import { ControlGroups } from '../core/controlgroups.js';
import { cgroupOperations } from '../core/cgroupops.js';
import { dreError } from '../core/errors.js';
import { checkInt } from '../core/names.js';
import { containerCgroup, containerProcsCgroup } from './layout.js';
import { hostPidOf as hostPidIn, pidNamespace } from './pidns.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer, runningInit } from './state.js';

const ops = cgroupOperations({
  groups: (n) => new ControlGroups({ owner: `application container ${n}`, group: containerCgroup(n), procsLeaf: containerProcsCgroup(n) }),
  changing: (what, name, fn) => changing(what, name, (n) => fn(n)),
  requireContainer,
  // A frozen container still runs: its groups and limits may change and thaw with it.
  requireLive: (n, what) => refuseUnless(n, what, [STATUS.RUNNING, STATUS.SUSPENDED]),
});
export const { createCgroup, destroyCgroup, bindPid, unbindPid, setResource, unsetResource, setLimit, unsetLimit, getResource, limits, usage } = ops;

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

export const bindVpid = (name: string, cgroup: string, vpid: number): Promise<void> =>
  ops.whileRunning('bind a process in', name, (cgs, n) => cgs.bind(cgroup, hostPidOf(n, vpid, 'bind a process in')));
export const unbindVpid = (name: string, cgroup: string, vpid: number): Promise<void> =>
  ops.whileRunning('unbind a process in', name, (cgs, n) => cgs.unbind(cgroup, hostPidOf(n, vpid, 'unbind a process in')));

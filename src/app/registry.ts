/**
 * dre_app_register_pid & co.: the host's side of the D-Aware registry (files and their checks in
 * registrydir.ts). Every call needs the container running (or suspended) and takes no process
 * outside its PID namespace. Processes registered from the host get SIGTERM at stop.
 */
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { requireRoot } from '../core/privilege.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';
import { hostPidOf, pidNamespace, vpidIn, type PidNamespace } from './pidns.js';
import { removeEntries, requireRegistry, resolveRegistry, writeEntry } from './registrydir.js';

/** A process under D-Aware control: its PID on the host and in the container. */
export interface RegisteredPid {
  pid: number;
  vpid: number;
}

/** A registry change: the container's lock, running (or suspended), a registry, its PID namespace. */
function changingRegistry(what: string, name: string, fn: (n: string, c: PidNamespace) => void): Promise<void> {
  return changing(what, name, async (n) => {
    const { init } = refuseUnless(n, what, [STATUS.RUNNING, STATUS.SUSPENDED]);
    requireRegistry(n, what);
    fn(n, pidNamespace(n, init, what));
  });
}

const notInContainer = (what: string, name: string, id: string) => dreError('DRE_ERR_PID_NONEXISTENCE', `${what} ${name}: no process ${id}`);

/** Records a process of the container; its init is refused: stopping init is LXC's halt, not a callback. */
function register(what: string, name: string, vpid: number, pid: number): void {
  if (vpid === 1) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${name}: PID ${pid} is the container's init, which LXC itself stops`);
  writeEntry(what, name, vpid, pid);
}

/** dre_app_register_pid: puts host process `pid`, which must belong to the container, under D-Aware control. */
export const registerPid = (name: string, pid: number): Promise<void> =>
  changingRegistry('register pid in', name, (n, c) => {
    const vpid = vpidIn(c, pid);
    if (vpid === undefined) throw notInContainer('register pid in', n, `with host PID ${pid} in this container`);
    register('register pid in', n, vpid, pid);
  });

/** dre_app_register_vpid: the same for a process named by its PID inside the container. */
export const registerVpid = (name: string, vpid: number): Promise<void> =>
  changingRegistry('register vpid in', name, (n, c) => {
    const pid = hostPidOf(c, vpid);
    if (pid === undefined) throw notInContainer('register vpid in', n, `with PID ${vpid} in this container`);
    register('register vpid in', n, vpid, pid);
  });

/** dre_app_unregister_pid: takes host process `pid` out of D-Aware control. */
export const unregisterPid = (name: string, pid: number): Promise<void> =>
  changingRegistry('unregister pid in', name, (n, c) => {
    const vpid = vpidIn(c, pid);
    if (vpid === undefined || !removeEntries(n, vpid)) throw notInContainer('unregister pid in', n, `under D-Aware control with host PID ${pid}`);
  });

/** dre_app_unregister_vpid: the same by PID inside the container (also clears the entries of a process gone). */
export const unregisterVpid = (name: string, vpid: number): Promise<void> =>
  changingRegistry('unregister vpid in', name, (n) => {
    if (!removeEntries(n, vpid)) throw notInContainer('unregister vpid in', n, `under D-Aware control with PID ${vpid} in this container`);
  });

/** dre_app_get_registered_pid_list: the live processes under D-Aware control, host PID and VPID, by VPID. */
export async function registeredPids(name: string): Promise<RegisteredPid[]> {
  const what = 'list registered pids of';
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  requireContainer(n, what);
  const { init } = refuseUnless(n, what, [STATUS.RUNNING, STATUS.SUSPENDED]);
  requireRegistry(n, what);
  const byVpid = new Map<number, RegisteredPid>();
  for (const r of resolveRegistry(n, pidNamespace(n, init, what))) byVpid.set(r.vpid, { pid: r.pid, vpid: r.vpid });
  return [...byVpid.values()];
}

/**
 * The Control Group operations of a running container, for either kind: each is ControlGroups
 * (controlgroups.ts) on the container's groups, changes under the container's lock (the kind's
 * `changing`), reads without it. A kind supplies its groups, its lock and its liveness check.
 */
import type { Resource, ResourceType } from './driver.js';
import type { ControlGroups, Usage } from './controlgroups.js';
import type { Limits } from './limits.js';
import { checkName } from './names.js';
import { requireRoot } from './privilege.js';

export interface CgroupKind {
  /** The container's groups. */
  groups(n: string): ControlGroups;
  /** Runs `fn` under the container's lock, the name checked (the kind's operation wrapper). */
  changing(what: string, name: string, fn: (n: string) => Promise<void>): Promise<void>;
  requireContainer(n: string, what: string): unknown;
  /** Refuses a container whose engine does not run (a suspended one still does: its groups may change). */
  requireLive(n: string, what: string): unknown;
}

export function cgroupOperations(k: CgroupKind) {
  /** Runs `fn` under the container's lock once it is known to run. */
  const whileRunning = (what: string, name: string, fn: (cgs: ControlGroups, n: string) => void): Promise<void> =>
    k.changing(what, name, async (n) => {
      await k.requireLive(n, what);
      fn(k.groups(n), n);
    });
  /** Reads only, no lock (the container's status stays readable during a CPU window). */
  async function reading<T>(what: string, name: string, read: (cgs: ControlGroups) => T | Promise<T>): Promise<T> {
    const n = checkName(name, 'container name');
    requireRoot(`${what} ${n}`);
    k.requireContainer(n, what);
    await k.requireLive(n, what);
    return read(k.groups(n));
  }
  return {
    whileRunning,
    createCgroup: (name: string, cgroup: string): Promise<void> => whileRunning('create cgroup in', name, (cgs) => cgs.create(cgroup)),
    destroyCgroup: (name: string, cgroup: string): Promise<void> => whileRunning('destroy cgroup in', name, (cgs) => cgs.destroy(cgroup)),
    /** A host PID that is not a process of this container is refused with PID_NONEXISTENCE (see README). */
    bindPid: (name: string, cgroup: string, pid: number): Promise<void> => whileRunning('bind a process in', name, (cgs) => cgs.bind(cgroup, pid)),
    unbindPid: (name: string, cgroup: string, pid: number): Promise<void> => whileRunning('unbind a process in', name, (cgs) => cgs.unbind(cgroup, pid)),
    setResource: (name: string, cgroup: string, r: Resource): Promise<void> => whileRunning('set a limit in', name, (cgs) => cgs.set(cgroup, r)),
    unsetResource: (name: string, cgroup: string, r: Resource): Promise<void> => whileRunning('unset a limit in', name, (cgs) => cgs.unset(cgroup, r)),
    setLimit: (name: string, r: Resource): Promise<void> => whileRunning('set a limit on', name, (cgs) => cgs.setOwn(r)),
    unsetLimit: (name: string, r: Resource): Promise<void> => whileRunning('unset a limit on', name, (cgs) => cgs.unsetOwn(r)),
    getResource: (name: string, pid: number, type: ResourceType): Promise<Resource> => reading('get resource of', name, (cgs) => cgs.get(pid, type)),
    /** The limits on the container as a whole. */
    limits: (name: string): Promise<Limits> => reading('read the limits of', name, (cgs) => cgs.ownLimits()),
    /** What the container as a whole uses now (CPU % over a short window, memory bytes). */
    usage: (name: string): Promise<Usage> => reading('read the usage of', name, (cgs) => cgs.ownUsage()),
  };
}

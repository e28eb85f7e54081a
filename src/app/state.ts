/**
 * What the kernel and D-RE's files show of an application container, without changing it: its
 * record, whether it runs (LXC's monitor and its init), whether it is frozen, whether it is busy.
 * Read-only and light: the CLI's status, pid and list load only this and the core.
 */
import { existsSync } from 'node:fs';
import { freezerState, groupDir, groupProcesses, treeProcesses } from '../core/cgroup.js';
import { STATUS, type Status } from '../core/driver.js';
import { isDreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { readSmallFile } from '../core/smallfile.js';
import { isAlive } from '../core/proc.js';
import {
  containerExists,
  containerPid,
  containerStatus,
  listContainers,
  refuseState,
  requireExisting,
  requireRecord,
  statusWithRecord,
} from '../core/operation.js';
import { containerCgroup, isMonitorOf, monitorPidPath, readRecord, recordPath, type AppRecord } from './layout.js';

export const exists = (name: string): boolean => containerExists('app', name);

export const requireContainer = (name: string, what: string): AppRecord => requireRecord('app', name, what, readRecord);

/** As requireContainer without reading the record: a container whose record is damaged is still there (to be stopped or destroyed). */
export function requireContainerDir(name: string, what: string): Pick<AppRecord, 'name'> {
  requireExisting('app', name, what);
  return { name };
}

/**
 * The running container's LXC monitor, from the pid file LXC itself writes, else from the monitor's
 * own group (the pid file went with a wiped run dir while the container ran); verified either way,
 * so a reused PID never counts.
 */
export function monitorPid(name: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readSmallFile(monitorPidPath(name)).trim());
  } catch {
    return monitorInGroup(name);
  }
  return isMonitorPid(pid, name) ? pid : monitorInGroup(name);
}

/** A zombie's cmdline is empty, so a monitor's title there is a living monitor (no second read of /proc to tell). */
function isMonitorPid(pid: number, name: string): boolean {
  try {
    return isMonitorOf(readSmallFile(`/proc/${pid}/cmdline`), name);
  } catch {
    return false;
  }
}

/** The monitor found in its group (`NAME.monitor`); one stat when the container is stopped, as the group is gone then. */
function monitorInGroup(name: string): number | undefined {
  const dir = groupDir('freezer', `${containerCgroup(name)}.monitor`) ?? groupDir('pids', `${containerCgroup(name)}.monitor`);
  if (dir === undefined || !existsSync(dir)) return undefined;
  return groupProcesses(dir).find((pid) => isMonitorPid(pid, name));
}

/**
 * The container's init: the one child of its monitor. A dead init stays in that list only until the
 * monitor reaps it, which LXC does as soon as its main loop sees the SIGCHLD: no stat of it here.
 */
function initPidOf(monitor: number): number | undefined {
  try {
    const first = readSmallFile(`/proc/${monitor}/task/${monitor}/children`).trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** The host PID of the container's init, or undefined when it does not run. */
export function runningInit(name: string): number | undefined {
  const m = monitorPid(name);
  return m === undefined ? undefined : initPidOf(m);
}

/** What a state check found: the status, and the monitor and init it read (undefined when absent). */
export interface Observation {
  status: Status;
  monitor: number | undefined;
  init: number | undefined;
}

function observe(name: string): Observation {
  const monitor = monitorPid(name);
  const init = monitor === undefined ? undefined : initPidOf(monitor);
  if (init === undefined) return { status: STATUS.STOP, monitor, init };
  const f = freezerState(containerCgroup(name));
  return { status: f === 'FROZEN' || f === 'FREEZING' ? STATUS.SUSPENDED : STATUS.RUNNING, monitor, init };
}

/** What the kernel shows of the container now, ignoring locks. */
export function observed(name: string): Status {
  return observe(name).status;
}

/** Refuses the operation unless the container is in one of the `allowed` states; returns what it found, so callers need not read it again. */
export function refuseUnless(name: string, what: string, allowed: Status[]): Observation {
  const o = observe(name);
  refuseState(name, what, o.status, allowed);
  return o;
}

export async function list(): Promise<string[]> {
  return listContainers('app', recordPath);
}

export function status(name: string): Promise<Status> {
  return containerStatus('app', name, requireContainer, observedHealing);
}

/**
 * As `observed`, but what a killed LXC monitor left of a suspended container (its frozen processes:
 * the death signal waits for the thaw) is ended first, under the container's lock, so that status
 * never says STOP while they live. The clean-up (lifecycle.ts) is loaded only when there are some.
 */
async function observedHealing(name: string): Promise<Status> {
  const o = observe(name);
  if (o.status !== STATUS.STOP || o.monitor !== undefined || !hasLeftoverProcesses(name)) return o.status;
  try {
    return await withLock('app', name, 'status', async () => {
      const { clearLeftovers } = await import('./lifecycle.js');
      await clearLeftovers(name, 'status');
      return observe(name).status;
    });
  } catch (e) {
    if (isDreError(e) && e.errName === 'DRE_ERR_CONTAINER_BUSY') return STATUS.BUSY;
    throw e;
  }
}

/** Processes in the container's group while no monitor runs (one stat when the container is simply stopped). */
function hasLeftoverProcesses(name: string): boolean {
  const dir = groupDir('freezer', containerCgroup(name)) ?? groupDir('pids', containerCgroup(name));
  return dir !== undefined && existsSync(dir) && treeProcesses(dir).some(isAlive);
}

/** The host PID of the container's init (dre_app_get_pid). */
export function pid(name: string): Promise<number> {
  return containerPid(name, requireContainer, runningInit);
}

/** What `dre-app list` shows of a container beside its status. */
export function info(name: string): AppInfo {
  return infoOf(requireContainer(checkName(name, 'container name'), 'info of'));
}

export interface AppInfo {
  base: string;
  port: number | null;
  address: string | null;
}

const infoOf = (rec: AppRecord): AppInfo => ({ base: rec.base, port: rec.port, address: rec.address ?? null });

/** A row of `dre-app list`: status and info, from one read of the record (status reads it anyway, to check it). */
export async function summary(name: string): Promise<{ status: Status } & AppInfo> {
  const { status, rec } = await statusWithRecord('app', name, requireContainer, observedHealing);
  return { status, ...infoOf(rec) };
}

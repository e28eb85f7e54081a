/**
 * What a system container is now, read without changing it: its record, its QEMU process, its
 * status from QMP, its PID. The read-only half of the driver: `dre-sys status` loads this module and
 * what it needs, nothing that launches or stops QEMU (lifecycle.ts, qemu.ts).
 */
import { readFileSync } from 'node:fs';
import { STATUS, type Status } from '../core/driver.js';
import { isDreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
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
import { isAlive } from '../core/proc.js';
import { readUntrustedFile } from '../core/store.js';
import { pidFilePath, qmpSocketPath, readRecord, recordPath, type SysRecord } from './layout.js';
import { queryStatus, type RunState } from './qmp/commands.js';
import { withQmp, type Qmp } from './qmp/monitor.js';

export const exists = (name: string): boolean => containerExists('sys', name);

export const requireContainer = (name: string, what: string): SysRecord => requireRecord('sys', name, what, readRecord);

/** As requireContainer without reading the record (stop and destroy need none of it). */
export const requireContainerDir = (name: string, what: string): void => requireExisting('sys', name, what);

/** The container's running QEMU, from its pid file, verified by its command line (a reused PID never counts). */
export function qemuPid(name: string): number | undefined {
  // QEMU owns the run dir: its pid file may be anything (a FIFO, a symlink), so it is read as untrusted.
  const text = readUntrustedFile(pidFilePath(name), 32);
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(`\0-pidfile\0${pidFilePath(name)}\0`)) return undefined;
  } catch {
    return undefined;
  }
  return isAlive(pid) ? pid : undefined;
}

/** QEMU's run state (query-status `status`) as the spec's status. */
export function statusOfRunState(runState: RunState): Status {
  if (runState === 'running') return STATUS.RUNNING;
  // prelaunch: paused before the guest ever ran, i.e. a start that was killed; start and destroy end it.
  // inmigrate: waiting for a migration that has not come; postmigrate: the guest now runs on the target.
  if (['prelaunch', 'shutdown', 'guest-panicked', 'internal-error', 'inmigrate', 'postmigrate'].includes(runState)) return STATUS.STOP;
  return STATUS.SUSPENDED;
}

/** The spec's status of a QEMU on an open QMP connection. */
export async function qmpStatusOn(q: Qmp): Promise<Status> {
  return statusOfRunState(await queryStatus(q));
}

/** QEMU's run state (query-status), or undefined when it does not answer. */
async function runState(name: string): Promise<RunState | undefined> {
  try {
    return await withQmp(qmpSocketPath(name), (q) => queryStatus(q));
  } catch {
    return undefined;
  }
}

/** Containers this process is launching: their QEMU waits paused (`prelaunch`) on purpose until it is in its cgroups. */
export const launching = new Set<string>();

/** Containers whose lock this process holds (through lifecycle's `changing`, or `endOrphan` itself). */
const held = new Set<string>();

/** Runs `fn` with container `n` counted as held by this process (its lock is taken by the caller). */
export async function holding<T>(n: string, fn: () => Promise<T>): Promise<T> {
  held.add(n);
  try {
    return await fn();
  } finally {
    held.delete(n);
  }
}

/** What QEMU and the process say of the container now, ignoring locks; ends the orphan of a killed start. */
export async function observed(name: string): Promise<Status> {
  if (qemuPid(name) === undefined) return STATUS.STOP;
  const state = await runState(name);
  if (state === undefined) return qemuPid(name) === undefined ? STATUS.STOP : STATUS.BUSY;
  if (state === 'prelaunch') return launching.has(name) ? STATUS.BUSY : endOrphan(name);
  return statusOfRunState(state);
}

/**
 * A QEMU still paused before its guest ever ran that no start of this process launches is the orphan
 * of a killed start: it holds the disk's write lock and lives outside the container's cgroups, and
 * its guest never ran, so it is ended, never adopted. Under the container's lock (this process's own
 * inside an operation), so that it is never another process's start underway: BUSY while one holds it.
 * (qemu.ts, which ends it, is loaded only here: a status that finds no orphan never needs it.)
 */
async function endOrphan(name: string): Promise<Status> {
  if (held.has(name)) {
    const { endLeftover } = await import('./qemu.js');
    await endLeftover(name);
    return STATUS.STOP;
  }
  try {
    return await withLock('sys', name, 'status', () => holding(name, () => observed(name))); // held now: the orphan is ended there
  } catch (e) {
    if (isDreError(e) && e.errName === 'DRE_ERR_CONTAINER_BUSY') return STATUS.BUSY;
    throw e;
  }
}

export async function refuseUnless(name: string, what: string, allowed: Status[]): Promise<Status> {
  return refuseState(name, what, await observed(name), allowed);
}

export async function list(): Promise<string[]> {
  return listContainers('sys', recordPath);
}

export function status(name: string): Promise<Status> {
  return containerStatus('sys', name, requireContainer, observed);
}

/** The host PID of the container's QEMU process (dre_sys_get_pid). */
export function pid(name: string): Promise<number> {
  return containerPid(name, requireContainer, qemuPid);
}

/** What `dre-sys list` shows of a container beside its status. */
export interface SysInfo {
  base: string | null;
  rootfs: string | null;
  memoryMiB: number;
  cpus: number;
  address: string | null;
  /** Its NIC's MAC (what an immigration of its copied disk takes over with the address); null without a NIC. */
  mac: string | null;
  port: number | null;
}

export function info(name: string): SysInfo {
  return infoOf(requireContainer(checkName(name, 'container name'), 'info of'));
}

function infoOf(rec: SysRecord): SysInfo {
  const mac = rec.address ? (rec.mac ?? null) : null;
  return { base: rec.base, rootfs: rec.rootfs, memoryMiB: rec.memoryMiB, cpus: rec.cpus ?? 1, address: rec.address ?? null, mac, port: rec.port ?? null };
}

/** A row of `dre-sys list`: status and info, from one read of the record (status reads it anyway, to check it). */
export async function summary(name: string): Promise<{ status: Status } & SysInfo> {
  const { status, rec } = await statusWithRecord('sys', name, requireContainer, observed);
  return { status, ...infoOf(rec) };
}

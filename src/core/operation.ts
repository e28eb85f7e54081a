/** What every container operation of either kind does around its work: state checks, the lock, listing. */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts, removeGroupTree } from './cgroup.js';
import { STATUS, type Status, type StopOptions } from './driver.js';
import { dreError } from './errors.js';
import { isLocked, withLock, type ContainerLock } from './lock.js';
import { checkName } from './names.js';
import { containerRecordPath, containersDir, type Kind } from './paths.js';
import { moveAside } from './staging.js';
import { requireRoot } from './privilege.js';
import { listEntries } from './store.js';

/** Throws the code for being in state `s` when the operation needs one of `allowed`; else returns `s`. */
export function refuseState(name: string, what: string, s: Status, allowed: Status[]): Status {
  if (allowed.includes(s)) return s;
  if (s === STATUS.RUNNING) throw dreError('DRE_ERR_CONTAINER_RUNNING', `${what} ${name}: the container is running`);
  if (s === STATUS.SUSPENDED) throw dreError('DRE_ERR_CONTAINER_SUSPENDED', `${what} ${name}: the container is suspended; resume it first`);
  if (s === STATUS.BUSY) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${name}: the engine does not answer`);
  throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${name}: the container is stopped; start it first`);
}

/**
 * Runs a state-changing operation: root, a valid name, the container's lock, and its record
 * (`load` throws DRE_ERR_CONTAINER_NONEXISTENCE when there is none).
 */
export async function changingContainer<R, T>(
  kind: Kind,
  what: string,
  name: unknown,
  load: (name: string, what: string) => R,
  fn: (name: string, rec: R, lock: ContainerLock) => Promise<T>,
): Promise<T> {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  return withLock(kind, n, what, (lock) => fn(n, load(n, what), lock));
}

/** The checks of a read-only call: the name, root, and the container's record (`load` fails for a missing one). */
export function inspecting<R>(what: string, name: unknown, load: (name: string, what: string) => R): { n: string; rec: R } {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  return { n, rec: load(n, what) };
}

/** A container exists once its record does (its directory is renamed into place complete). */
export const containerExists = (kind: Kind, name: string): boolean => existsSync(containerRecordPath(kind, name));

const KIND_NAMES: Record<Kind, string> = { app: 'application container', sys: 'system container' };

/** Refuses what `what` names a container that does not exist: DRE_ERR_CONTAINER_NONEXISTENCE. */
export function requireExisting(kind: Kind, name: string, what: string): void {
  if (!containerExists(kind, name)) throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${name}: no such ${KIND_NAMES[kind]}`);
}

/** The container's record as `read` gives it (undefined: there is none), or DRE_ERR_CONTAINER_NONEXISTENCE. */
export function requireRecord<R>(kind: Kind, name: string, what: string, read: (name: string) => R | undefined): R {
  const rec = read(name);
  if (!rec) throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${name}: no such ${KIND_NAMES[kind]}`);
  return rec;
}

/** The containers of a kind in this root: finished entries that hold a record. */
export function listContainers(kind: Kind, recordPath: (name: string) => string): string[] {
  requireRoot('list containers');
  return listEntries(containersDir(kind)).filter((n) => existsSync(recordPath(n)));
}

/**
 * A container's status for callers: BUSY while another process holds its lock (read without taking
 * it), else what `observe` sees of the engine.
 */
export async function containerStatus(
  kind: Kind,
  name: unknown,
  load: (name: string, what: string) => unknown,
  observe: (name: string) => Status | Promise<Status>,
): Promise<Status> {
  return (await statusWithRecord(kind, name, load, observe)).status;
}

/** containerStatus, with the record `load` read on the way (a list row shows both: one read of it). */
export async function statusWithRecord<R>(
  kind: Kind,
  name: unknown,
  load: (name: string, what: string) => R,
  observe: (name: string) => Status | Promise<Status>,
): Promise<{ status: Status; rec: R }> {
  const { n, rec } = inspecting('status', name, load);
  return { status: isLocked(kind, n) ? STATUS.BUSY : await observe(n), rec };
}

/** The host PID of the container's engine process (dre_*_get_pid): `running` finds it; a stopped container → DRE_ERR_CONTAINER_STOPPED. */
export async function containerPid(
  name: unknown,
  load: (name: string, what: string) => unknown,
  running: (name: string) => number | undefined,
): Promise<number> {
  const { n } = inspecting('get pid of', name, load);
  const pid = running(n);
  if (pid === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `get pid of ${n}: the container is stopped`);
  return pid;
}

/**
 * Removes a container's persistent files: renamed out of sight first, so a killed destroy leaves a
 * staging entry (removed by the next create), never a half-container. Its run dir is the caller's.
 */
export function removeContainerFiles(kind: Kind, name: string): void {
  rmSync(moveAside(containersDir(kind), name), { recursive: true, force: true });
}

/** How long a stop gives the container to end by itself before it is killed, for both kinds. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The stop's grace period: the one asked, else the default; a bad one → DRE_ERR_INVALID_ARGUMENT. */
export function stopTimeout(opts: StopOptions): number {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `stop: timeout ${timeoutMs} ms is invalid`);
  return timeoutMs;
}

/**
 * Removes a container's group (and `siblings`, e.g. LXC's `NAME.monitor`) in every hierarchy. The parents
 * (`dre/<root id>/<kind>`) stay: removing them could race with LXC or QEMU making a sibling's group for a
 * start in this or another root.
 */
export function removeContainerGroups(group: string, siblings: string[] = []): void {
  for (const mount of allHierarchyMounts()) for (const g of [group, ...siblings]) removeGroupTree(join(mount, g));
}

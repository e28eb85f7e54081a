import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS, type Status } from '../core/driver.js';
import { dreError, isDreError, type DreErrName } from '../core/errors.js';
import type { ContainerLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { baseDir, basesDir } from '../core/paths.js';
import { withRevert } from '../core/revert.js';
import { buildAside, moveAside } from '../core/staging.js';
import { requireRoot } from '../core/privilege.js';
import { engineCause, lastLines, run } from '../core/run.js';
import { listEntries, writeJsonAtomic } from '../core/store.js';
import { baseBoot, baseExists, buildDefaultBase, DEFAULT_BASE, type Progress } from './base.js';
import {
  baseDiskPath,
  baseInitrdPath,
  baseKernelPath,
  CHECKPOINT_PREFIX,
  qmpSocketPath,
  readRecord,
  recordPath,
  SNAPSHOT_PREFIX,
  type SysRecord,
} from './layout.js';
import { listContainers, refuseState } from '../core/operation.js';
import type { SnapshotDetail } from '../core/driver.js';
import { changing } from './lifecycle.js';
import { observed, qemuPid, qmpStatusOn, refuseUnless, requireContainer } from './state.js';
import { imageInfo, requireOwnBacking, type ImageInfo, type ImageSnapshot } from './image.js';
import { launch } from './qemu.js';
import { cont, humanMonitor, queryBlock } from './qmp/commands.js';
import { Qmp } from './qmp/monitor.js';
import { diskPath, isShared, requireOwnerHere } from './lease.js';

/**
 * The internal snapshots of the container's disk whose names carry `prefix`, without it. A snapshot
 * (file system only) has no VM state; a checkpoint has one: both the prefix and the size must agree.
 */
async function tags(n: string, disk: string, prefix: string, what: string, code: DreErrName): Promise<string[]> {
  return filterTags((await imageInfo(disk, `${what} ${n}`, code)).snapshots ?? [], prefix);
}

/** The tags under `prefix` of the running QEMU's disk, from QMP query-block (no qemu-img process). */
async function tagsOn(q: Qmp, prefix: string): Promise<string[]> {
  const blocks = await queryBlock(q);
  const snaps = blocks.find((b) => b.device === 'd0')?.inserted?.image?.snapshots ?? [];
  return filterTags(snaps, prefix);
}

/** The tags under `prefix` among a disk's internal snapshots (a checkpoint has VM state, a snapshot none). */
export function filterTags(snaps: ImageSnapshot[], prefix: string): string[] {
  const wantState = prefix === CHECKPOINT_PREFIX;
  return snaps
    .filter((s) => s.name.startsWith(prefix) && s['vm-state-size'] > 0 === wantState)
    .map((s) => s.name.slice(prefix.length))
    .sort();
}

/** An HMP command on an open connection; HMP reports failure as text, so any output is an error. */
async function hmpOn(q: Qmp, n: string, what: string, code: DreErrName, line: string): Promise<void> {
  let out: string;
  try {
    out = await humanMonitor(q, line, 600_000);
  } catch (e) {
    throw dreError(code, `${what} ${n}: ${(e as Error).message}`, e);
  }
  if (out.trim()) throw dreError(code, `${what} ${n}: QEMU: ${lastLines(out)}`);
}

/** Runs `fn` on a QMP connection to the container's running QEMU, with its current status. */
async function onRunning<T>(n: string, what: string, code: DreErrName, fn: (q: Qmp, s: Status) => Promise<T>): Promise<T> {
  if (qemuPid(n) === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: the container is stopped; start it first`);
  let q: Qmp;
  try {
    q = await Qmp.connect(qmpSocketPath(n));
  } catch (e) {
    throw dreError(code, `${what} ${n}: QEMU does not answer on its monitor: ${(e as Error).message}`, e);
  }
  return onConnection(q, n, what, code, async () => fn(q, await qmpStatusOn(q)));
}

/** Runs `fn` on the open connection `q` and closes it; QEMU dying or going silent half-way becomes `code`. */
async function onConnection<T>(q: Qmp, n: string, what: string, code: DreErrName, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isDreError(e)) throw e;
    // QEMU died or stopped answering half-way (a killed QEMU closes the connection).
    throw dreError(code, `${what} ${n}: QEMU stopped answering on its monitor: ${(e as Error).message}`, e);
  } finally {
    q.close();
  }
}

/** A container whose disk can hold internal snapshots (a qcow2 overlay; a raw rootfs cannot). */
function requireSnapshotDisk(n: string, rec: SysRecord, what: string, code: DreErrName): void {
  if (rec.rootfs !== null) throw dreError(code, `${what} ${n}: it runs on rootfs ${rec.rootfs}, which D-RE does not snapshot`);
}

/**
 * qemu-img snapshot on the stopped container's disk; it keeps the container locked while it runs, even if we are killed.
 * `disk` is `diskPath(n)`, found once per operation (for a shared container that is an NFS mount and a lease check).
 */
async function qemuImgSnapshot(
  n: string,
  disk: string,
  lock: ContainerLock,
  what: string,
  code: DreErrName,
  flag: '-c' | '-a' | '-d',
  name: string,
): Promise<void> {
  const r = await run('qemu-img', ['snapshot', flag, name, disk], { timeoutMs: 300_000, inheritFds: [lock.fd] });
  if (r.code !== 0) throw dreError(code, `${what} ${n}: qemu-img snapshot ${flag} failed: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
}

export async function saveSnapshot(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'snapshot tag');
  await changing('save snapshot of', name, async (n, rec, lock) => {
    requireSnapshotDisk(n, rec, 'save snapshot of', 'DRE_ERR_SAVE_SNAPSHOT_FAILED');
    await refuseUnless(n, 'save snapshot of', [STATUS.STOP]);
    const disk = diskPath(n);
    if ((await tags(n, disk, SNAPSHOT_PREFIX, 'save snapshot of', 'DRE_ERR_SAVE_SNAPSHOT_FAILED')).includes(t)) {
      throw dreError('DRE_ERR_SNAPSHOT_EXISTENCE', `save snapshot of ${n}: a snapshot named ${t} exists`);
    }
    await qemuImgSnapshot(n, disk, lock, 'save snapshot of', 'DRE_ERR_SAVE_SNAPSHOT_FAILED', '-c', SNAPSHOT_PREFIX + t);
  });
}

async function requireTag(n: string, disk: string, prefix: string, t: string, what: string, code: DreErrName): Promise<void> {
  requireTagIn(await imageInfo(disk, `${what} ${n}`, code), n, prefix, t, what);
}

/** Fails with DRE_ERR_SNAPSHOT_NONEXISTENCE unless the disk `info` describes holds tag `t` under `prefix`. */
function requireTagIn(info: ImageInfo, n: string, prefix: string, t: string, what: string): void {
  if (!filterTags(info.snapshots ?? [], prefix).includes(t)) {
    const kind = prefix === SNAPSHOT_PREFIX ? 'snapshot' : 'checkpoint';
    throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `${what} ${n}: no ${kind} named ${t}`);
  }
}

export async function loadSnapshot(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'snapshot tag');
  await changing('load snapshot of', name, async (n, rec, lock) => {
    requireSnapshotDisk(n, rec, 'load snapshot of', 'DRE_ERR_LOAD_SNAPSHOT_FAILED');
    await refuseUnless(n, 'load snapshot of', [STATUS.STOP]);
    const disk = diskPath(n);
    await requireTag(n, disk, SNAPSHOT_PREFIX, t, 'load snapshot of', 'DRE_ERR_LOAD_SNAPSHOT_FAILED');
    await qemuImgSnapshot(n, disk, lock, 'load snapshot of', 'DRE_ERR_LOAD_SNAPSHOT_FAILED', '-a', SNAPSHOT_PREFIX + t);
  });
}

/** Deletes an internal snapshot: through QEMU while it runs (it holds the image), else with qemu-img. */
async function deleteInternal(n: string, disk: string, lock: ContainerLock, what: string, full: string): Promise<void> {
  if (qemuPid(n) !== undefined) {
    await onRunning(n, what, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED', (q) => hmpOn(q, n, what, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED', `delvm ${full}`));
  } else await qemuImgSnapshot(n, disk, lock, what, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED', '-d', full);
}

/** Removes the snapshot or checkpoint `tag` (told apart by `prefix`), after checking it is there. */
async function removeTagged(name: string, tag: string, prefix: string, kind: 'snapshot' | 'checkpoint'): Promise<void> {
  const what = `remove ${kind} of`;
  const t = checkName(tag, `${kind} tag`);
  await changing(what, name, async (n, rec, lock) => {
    if (kind === 'snapshot') await refuseUnless(n, what, [STATUS.STOP]); // the spec: snapshots only while stopped
    requireSnapshotDisk(n, rec, what, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED');
    const disk = diskPath(n);
    await requireTag(n, disk, prefix, t, what, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED');
    await deleteInternal(n, disk, lock, what, prefix + t);
  });
}

export const removeSnapshot = (name: string, tag: string) => removeTagged(name, tag, SNAPSHOT_PREFIX, 'snapshot');

async function listing(name: string, prefix: string, what: string): Promise<string[]> {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  const rec = requireContainer(n, what);
  if (rec.rootfs !== null) return [];
  return tags(n, diskPath(n), prefix, what, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS');
}

export const listSnapshots = (name: string): Promise<string[]> => listing(name, SNAPSHOT_PREFIX, 'list snapshots of');
export const listCheckpoints = (name: string): Promise<string[]> => listing(name, CHECKPOINT_PREFIX, 'list checkpoints of');

/** The snapshots with when they were taken and their size (a disk snapshot's own size is not kept apart in qcow2: null). */
export async function snapshotDetails(name: string): Promise<SnapshotDetail[]> {
  const n = checkName(name, 'container name');
  const what = 'list snapshots of';
  requireRoot(`${what} ${n}`);
  const rec = requireContainer(n, what);
  if (rec.rootfs !== null) return [];
  const snaps = (await imageInfo(diskPath(n), `${what} ${n}`, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS')).snapshots ?? [];
  return filterTags(snaps, SNAPSHOT_PREFIX).map((tag) => {
    const s = snaps.find((x) => x.name === SNAPSHOT_PREFIX + tag)!;
    return { tag, created: s['date-sec'] === undefined ? null : new Date(s['date-sec'] * 1000).toISOString(), bytes: null };
  });
}

/** Flattens a snapshot (with everything under it) into a standalone Base Image beside the others. */
export async function commitSnapshot(name: string, tag: string, base: string): Promise<void> {
  const t = checkName(tag, 'snapshot tag');
  const b = checkName(base, 'base');
  await changing('commit snapshot of', name, async (n, rec, lock) => {
    requireSnapshotDisk(n, rec, 'commit snapshot of', 'DRE_ERR_COMMIT_SNAPSHOT_FAILED');
    await refuseUnless(n, 'commit snapshot of', [STATUS.STOP]);
    if (existsSync(baseDir('sys', b))) throw dreError('DRE_ERR_BASE_EXISTENCE', `commit snapshot of ${n}: a Base Image named ${b} exists`);
    const disk = diskPath(n);
    // One qemu-img info for both checks: the tag, then the header's backing file.
    const info = await imageInfo(disk, `commit snapshot of ${n}`, 'DRE_ERR_COMMIT_SNAPSHOT_FAILED');
    requireTagIn(info, n, SNAPSHOT_PREFIX, t, 'commit snapshot of');
    const backing = isShared(n) ? undefined : baseDiskPath(rec.base!); // a shared image is flattened
    requireOwnBacking(info, backing, `commit snapshot of ${n}`, 'DRE_ERR_COMMIT_SNAPSHOT_FAILED');
    const taken = (e: unknown) => dreError('DRE_ERR_BASE_EXISTENCE', `commit snapshot of ${n}: a Base Image named ${b} appeared meanwhile`, e);
    await buildAside(
      basesDir('sys'),
      b,
      async (staging) => {
        const r = await run('qemu-img', ['convert', '-U', '-l', `snapshot.name=${SNAPSHOT_PREFIX}${t}`, '-O', 'qcow2', disk, join(staging, 'disk.qcow2')], {
          timeoutMs: 600_000,
          inheritFds: [lock.fd],
        });
        if (r.code !== 0)
          throw dreError(
            'DRE_ERR_COMMIT_SNAPSHOT_FAILED',
            `commit snapshot ${t} of ${n}: qemu-img convert failed: ${lastLines(r.stderr)}`,
            engineCause('qemu-img', r),
          );
        // It boots as its base did: with the same kernel and initramfs, or through the firmware.
        const boot = baseBoot(rec.base!);
        if (boot.boot === 'kernel') {
          copyFileSync(baseKernelPath(rec.base!), join(staging, 'vmlinuz'));
          copyFileSync(baseInitrdPath(rec.base!), join(staging, 'initrd.img'));
        }
        writeJsonAtomic(join(staging, 'base.json'), { from: { container: n, snapshot: t, base: rec.base }, ...boot, built: new Date().toISOString() });
      },
      { ifTaken: taken },
    );
  });
}

export async function listBases(): Promise<string[]> {
  requireRoot('list bases');
  return listEntries(basesDir('sys')).filter(baseExists);
}

/** Containers standing on `base` (rootfs containers borrow the default base's kernel). */
function usersOf(base: string): string[] {
  return listContainers('sys', recordPath).filter((n) => {
    const rec = readRecord(n);
    return rec !== undefined && (rec.base === base || (rec.rootfs !== null && base === DEFAULT_BASE));
  });
}

/**
 * Removes a Base Image no container stands on. It is moved aside before users are counted, so a
 * create racing with it either is counted here or finds the base gone (and undoes itself).
 */
export async function removeBase(base: string): Promise<void> {
  const b = checkName(base, 'base');
  requireRoot(`remove base ${b}`);
  if (!existsSync(baseDir('sys', b))) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `remove base ${b}: no such Base Image`);
  const trash = withRevert((revert) => {
    let moved: string;
    try {
      moved = moveAside(basesDir('sys'), b);
    } catch (e) {
      throw dreError('DRE_ERR_BASE_NONEXISTENCE', `remove base ${b}: no such Base Image`, e);
    }
    revert.add(() => renameSync(moved, baseDir('sys', b)));
    const users = usersOf(b);
    if (users.length > 0) throw dreError('DRE_ERR_REMOVE_BASE_FAILED', `remove base ${b}: used by container(s) ${users.join(', ')}`);
    return moved;
  });
  rmSync(trash, { recursive: true, force: true });
}

/** `dre-sys base build`: (re)builds the default base; refused while a container stands on it. */
export async function rebuildDefaultBase(progress: Progress): Promise<void> {
  requireRoot('build default base');
  const users = usersOf(DEFAULT_BASE);
  if (users.length > 0) throw dreError('DRE_ERR_REMOVE_BASE_FAILED', `build default base: the current one is used by container(s) ${users.join(', ')}`);
  await buildDefaultBase(progress, true);
}

export async function checkpoint(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'checkpoint tag');
  await changing('checkpoint', name, async (n, rec) => {
    requireSnapshotDisk(n, rec, 'checkpoint', 'DRE_ERR_SAVE_SNAPSHOT_FAILED');
    // One QMP connection for the state check, the tag check and savevm: this runs at the speed of raw savevm.
    await onRunning(n, 'checkpoint', 'DRE_ERR_SAVE_SNAPSHOT_FAILED', async (q, s) => {
      refuseState(n, 'checkpoint', s, [STATUS.RUNNING]);
      await requireOwnerHere(n, 'checkpoint'); // a host fenced off its shared container writes no checkpoint into its image
      if ((await tagsOn(q, CHECKPOINT_PREFIX)).includes(t)) throw dreError('DRE_ERR_SNAPSHOT_EXISTENCE', `checkpoint ${n}: a checkpoint named ${t} exists`);
      await hmpOn(q, n, 'checkpoint', 'DRE_ERR_SAVE_SNAPSHOT_FAILED', `savevm ${CHECKPOINT_PREFIX}${t}`);
    });
  });
}

/** Loads checkpoint `t` into the running or suspended QEMU on `q`, whose status is `s` and checkpoints `tags`. */
async function loadvmOn(q: Qmp, n: string, t: string, s: Status, tags: string[]): Promise<void> {
  refuseState(n, 'restart', s, [STATUS.RUNNING, STATUS.SUSPENDED]);
  // Checked first: a failed loadvm leaves the guest paused (and, past the header, half-loaded).
  if (!tags.includes(t)) throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `restart ${n}: no checkpoint named ${t}`);
  await hmpOn(q, n, 'restart', 'DRE_ERR_LOAD_SNAPSHOT_FAILED', `loadvm ${CHECKPOINT_PREFIX}${t}`);
  // loadvm leaves a paused VM paused: a restarted container runs.
  if (s === STATUS.SUSPENDED) await cont(q);
}

/**
 * restart's common case on one QMP connection, with its status and its checkpoints asked in one
 * round trip (QEMU answers in order): a running or suspended QEMU loads the checkpoint in place.
 * false, having done nothing: no QEMU answered as running or suspended (gone, shut down, busy, the
 * orphan of a killed start), and the caller takes the way that handles those.
 */
async function restartInPlace(n: string, t: string): Promise<boolean> {
  let q: Qmp;
  try {
    q = await Qmp.connect(qmpSocketPath(n));
  } catch {
    return false;
  }
  return onConnection(q, n, 'restart', 'DRE_ERR_LOAD_SNAPSHOT_FAILED', async () => {
    const asked = await Promise.all([qmpStatusOn(q), tagsOn(q, CHECKPOINT_PREFIX)]).catch(() => undefined);
    if (!asked || (asked[0] !== STATUS.RUNNING && asked[0] !== STATUS.SUSPENDED)) return false;
    await loadvmOn(q, n, t, ...asked);
    return true;
  });
}

/** Brings the container back to a checkpoint: loadvm in the running QEMU, or a new QEMU started from it. */
export async function restart(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'checkpoint tag');
  await changing('restart', name, async (n, rec) => {
    requireSnapshotDisk(n, rec, 'restart', 'DRE_ERR_LOAD_SNAPSHOT_FAILED');
    // A running one first: one QMP connection where the way below opens two (observed's, then onRunning's).
    if (qemuPid(n) !== undefined && (await restartInPlace(n, t))) return;
    // observed ends the paused QEMU a killed start or restart left; launch ends any other that counts as STOP.
    if (qemuPid(n) === undefined || (await observed(n)) === STATUS.STOP) {
      await requireTag(n, diskPath(n), CHECKPOINT_PREFIX, t, 'restart', 'DRE_ERR_LOAD_SNAPSHOT_FAILED');
      return launch(n, rec, 'restart', CHECKPOINT_PREFIX + t);
    }
    await onRunning(n, 'restart', 'DRE_ERR_LOAD_SNAPSHOT_FAILED', async (q, s) => loadvmOn(q, n, t, s, await tagsOn(q, CHECKPOINT_PREFIX)));
  });
}

export const removeCheckpoint = (name: string, tag: string) => removeTagged(name, tag, CHECKPOINT_PREFIX, 'checkpoint');

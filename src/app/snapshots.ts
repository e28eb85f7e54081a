/**
 * Snapshots of a stopped container's file system and Base Images committed from them (CRIU checkpoints
 * are checkpoints.ts's). A snapshot freezes the upper layer into a read-only layer (one atomic directory
 * swap, whatever the size) and records the layer stack; loading one swaps in an empty upper and that
 * stack. A committed base is a hard-link copy of the snapshot's layers: it shares no directory entry
 * with the container, so removing the container or the snapshot never harms it.
 */
import { existsSync, lstatSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS, type SnapshotDetail } from '../core/driver.js';
import { dreError, isDreError, type DreErrName } from '../core/errors.js';
import { type ContainerLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { baseDir, basesDir, containersDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { lastLines, run, engineCause } from '../core/run.js';
import { withRevert } from '../core/revert.js';
import { buildAside, moveAside } from '../core/staging.js';
import { listEntries, writeJsonAtomic } from '../core/store.js';
import { baseExists, BUILT_IN_BASES, readBaseRecord, withBaseLock, type BaseRecord } from './base.js';
import { confineDir } from './userns.js';
import { layerDir, readRecord, snapshotPath, upperDir, type AppRecord } from './layout.js';
import {
  asideDir,
  emptyDirLike,
  exchange,
  nextLayerId,
  readSnapshot,
  removeLater,
  stackProblem,
  tidy,
  upperIsEmpty,
  usableSnapshotTags,
  writeStack,
  type SnapshotRecord,
} from './layers.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';
import { containerIdRange, lowerDirs } from './lxcconfig.js';

/** Tests set DRE_TEST_KILL_AT to a step's label to SIGKILL the operation exactly there. */
function killPoint(label: string): void {
  if (process.env.DRE_TEST_KILL_AT === label) process.kill(process.pid, 'SIGKILL');
}

/** Runs a step whose unexpected failures (I/O, a tool) become `code`; precondition errors pass through. */
async function failingAs<T>(code: DreErrName, what: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isDreError(e)) throw e;
    throw dreError(code, `${what}: ${(e as Error).message}`, e);
  }
}

/**
 * A snapshot operation on a stopped container: the tag checked, the container locked and present,
 * what a killed operation left tidied; failures other than a precondition become `code`.
 */
async function whileStopped(
  verb: string,
  name: string,
  tag: string,
  code: DreErrName,
  fn: (n: string, rec: AppRecord, t: string, what: string, lock: ContainerLock) => void | Promise<void>,
): Promise<void> {
  const t = checkName(tag, 'snapshot tag');
  await changing(`${verb} ${t} of`, name, (n, rec, lock) => {
    refuseUnless(n, `${verb} ${t} of`, [STATUS.STOP]);
    const what = `${verb} ${t} of ${n}`;
    return failingAs(code, what, () => {
      tidy(rec);
      return fn(n, rec, t, what, lock);
    });
  });
}

function requireSnapshot(name: string, tag: string, what: string): SnapshotRecord {
  const snap = readSnapshot(name, tag);
  if (!snap) throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `${what}: container ${name} has no snapshot ${tag}`);
  return snap;
}

export async function saveSnapshot(name: string, tag: string): Promise<void> {
  await whileStopped('save snapshot', name, tag, 'DRE_ERR_SAVE_SNAPSHOT_FAILED', (n, rec, t, what) => {
    if (readSnapshot(n, t)) throw dreError('DRE_ERR_SNAPSHOT_EXISTENCE', `${what}: the container already has a snapshot of that name`);
    let saved = rec;
    if (!upperIsEmpty(n)) {
      const id = nextLayerId(n);
      saved = { ...rec, layers: [id, ...(rec.layers ?? [])] };
      const tooBig = stackProblem(saved);
      if (tooBig) throw dreError('DRE_ERR_SAVE_SNAPSHOT_FAILED', `${what}: ${tooBig}; commit a snapshot as a Base Image and create a new container from it`);
      // Each step leaves a container that shows the same files: an empty layer, then it in the stack, then the swap.
      emptyDirLike(layerDir(n, id), upperDir(n));
      killPoint('save:layer-made');
      writeStack(saved);
      killPoint('save:recorded');
      exchange(upperDir(n), layerDir(n, id));
      killPoint('save:swapped');
    }
    const snap: SnapshotRecord = { tag: t, layers: saved.layers ?? [], created: new Date().toISOString() };
    writeJsonAtomic(snapshotPath(n, t), snap);
  });
}

export async function loadSnapshot(name: string, tag: string): Promise<void> {
  let discarded: string | undefined;
  try {
    await whileStopped('load snapshot', name, tag, 'DRE_ERR_LOAD_SNAPSHOT_FAILED', (n, rec, t, what) => {
      const snap = requireSnapshot(n, t, what);
      const loaded: AppRecord = { ...rec, layers: snap.layers };
      const lowers = lowerDirs(loaded);
      const missing = lowers.find((d) => !existsSync(d));
      if (missing) throw dreError('DRE_ERR_LOAD_SNAPSHOT_FAILED', `${what}: its layer ${missing} is missing`);
      // The unsaved changes go aside in one swap, then the snapshot's stack comes back; they are removed once the lock is released.
      discarded = asideDir(n);
      emptyDirLike(discarded, lowers[0]);
      exchange(upperDir(n), discarded);
      killPoint('load:discarded');
      writeStack(loaded);
      tidy(loaded);
    });
  } finally {
    if (discarded) removeLater(discarded);
  }
}

export async function removeSnapshot(name: string, tag: string): Promise<void> {
  await whileStopped('remove snapshot', name, tag, 'DRE_ERR_REMOVE_SNAPSHOT_FAILED', (n, rec, t, what) => {
    if (!existsSync(snapshotPath(n, t))) requireSnapshot(n, t, what); // a damaged record is there to be removed
    rmSync(snapshotPath(n, t));
    tidy(rec);
  });
}

export async function listSnapshots(name: string): Promise<string[]> {
  const n = checkName(name, 'container name');
  requireRoot(`list snapshots of ${n}`);
  requireContainer(n, 'list snapshots of');
  return usableSnapshotTags(n);
}

/** The snapshots with when they were saved and the bytes of the layer each froze (the changes since the one before). */
export async function snapshotDetails(name: string): Promise<SnapshotDetail[]> {
  const n = checkName(name, 'container name');
  requireRoot(`list snapshots of ${n}`);
  requireContainer(n, 'list snapshots of');
  return usableSnapshotTags(n).flatMap((tag) => {
    const rec = readSnapshot(n, tag);
    if (!rec) return [];
    const top = rec.layers[0];
    return [{ tag, created: rec.created, bytes: top === undefined ? 0 : treeBytes(layerDir(n, top)) }];
  });
}

/** Bytes of the regular files under `dir` (hard links counted once), as `du --apparent-size` would; a missing tree is 0. */
function treeBytes(dir: string, seen = new Set<string>()): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) total += treeBytes(p, seen);
    else if (!seen.has(`${st.dev}:${st.ino}`)) {
      seen.add(`${st.dev}:${st.ino}`);
      total += st.size;
    }
  }
  return total;
}

/** Serialises everything that makes or removes the Base Image `base` (names starting with '.' are never containers). */

/**
 * Copies one layer as hard links (`cp -a` keeps owners, modes, xattrs such as overlayfs's opaque marks,
 * and whiteouts); `cp` holds our locks while it runs, even if we are killed.
 */
async function linkCopy(from: string, to: string, what: string, locks: ContainerLock[]): Promise<void> {
  const r = await run('cp', ['-a', '--link', '--', from, to], { timeoutMs: 600_000, inheritFds: locks.map((l) => l.fd) });
  if (r.code !== 0) throw dreError('DRE_ERR_COMMIT_SNAPSHOT_FAILED', `${what}: copying ${from} failed: ${lastLines(r.stderr)}`, engineCause('cp', r));
}

export async function commitSnapshot(name: string, tag: string, base: string): Promise<void> {
  checkName(tag, 'snapshot tag');
  const b = checkName(base, 'base name');
  await whileStopped('commit snapshot', name, tag, 'DRE_ERR_COMMIT_SNAPSHOT_FAILED', (n, rec, t, commit, lock) => {
    const what = `${commit} as base ${b}`;
    const snap = requireSnapshot(n, t, what);
    return withBaseLock(b, `commit to base`, async (baseLock) => {
      if (BUILT_IN_BASES.includes(b) || baseExists(b)) throw dreError('DRE_ERR_BASE_EXISTENCE', `${what}: a Base Image of that name exists`);
      if (!baseExists(rec.base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: the container's own Base Image ${rec.base} is missing`);
      // Made aside and renamed into place: a killed commit leaves only a staging entry, never a base.
      await buildAside(
        basesDir('app'),
        b,
        async (staging) => {
          const own = snap.layers.map((_, i) => (i === 0 ? 'rootfs' : `l${i}`));
          for (const [i, id] of snap.layers.entries()) {
            await linkCopy(layerDir(n, id), join(staging, own[i]), what, [lock, baseLock]);
            killPoint('commit:copied');
          }
          if (own.length === 0) {
            emptyDirLike(join(staging, 'rootfs'), lowerDirs(rec)[0]);
            own.push('rootfs');
          }
          const record: BaseRecord = { parent: rec.base, layers: own, from: { container: n, snapshot: t }, created: new Date().toISOString() };
          writeJsonAtomic(join(staging, 'base.json'), record);
          confineDir(staging, containerIdRange(rec));
          killPoint('commit:recorded');
        },
        { dirMode: 0o711, mode: 0o755, ifTaken: () => dreError('DRE_ERR_BASE_EXISTENCE', `${what}: a Base Image of that name appeared meanwhile`) },
      );
    });
  });
}

export async function listBases(): Promise<string[]> {
  requireRoot('list bases');
  return listEntries(basesDir('app')).filter(baseExists);
}

/** Refuses while anything stands on the Base Image: containers made from it, bases committed on top of it. */
function refuseIfUsed(base: string, what: string): void {
  // A damaged record may stand on the base: counted as a user, named as damaged.
  const standsOn = <R>(read: () => R | undefined, on: (r: R) => boolean): 'yes' | 'no' | 'damaged' => {
    try {
      const r = read();
      return r !== undefined && on(r) ? 'yes' : 'no';
    } catch (e) {
      if (isDreError(e)) return 'damaged';
      throw e;
    }
  };
  const users: string[] = [];
  for (const c of listEntries(containersDir('app'))) {
    const u = standsOn(
      () => readRecord(c),
      (r) => r.base === base,
    );
    if (u !== 'no') users.push(`container ${c}${u === 'damaged' ? ' (its record is damaged)' : ''}`);
  }
  for (const x of listEntries(basesDir('app')).filter((x) => x !== base)) {
    const u = standsOn(
      () => readBaseRecord(x),
      (r) => r.parent === base,
    );
    if (u !== 'no') users.push(`base ${x}${u === 'damaged' ? ' (its record is damaged)' : ''}`);
  }
  if (users.length > 0) throw dreError('DRE_ERR_REMOVE_BASE_FAILED', `${what}: still used by ${users.join(', ')}`);
}

export async function removeBase(base: string): Promise<void> {
  const b = checkName(base, 'base name');
  requireRoot(`remove base ${b}`);
  const what = `remove base ${b}`;
  await withBaseLock(b, 'remove base', (lock) =>
    failingAs('DRE_ERR_REMOVE_BASE_FAILED', what, () => {
      if (!baseExists(b)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: no Base Image of that name`);
      refuseIfUsed(b, what);
      // Renamed out of sight first: a killed removal leaves a staging entry, never a half base.
      const trash = withRevert((revert) => {
        const moved = moveAside(basesDir('app'), b);
        revert.add(() => renameSync(moved, baseDir('app', b)));
        // A create that published its container just before the rename: give it back (create takes no
        // base lock; it checks the base again once its container is in place, and undoes itself if gone).
        refuseIfUsed(b, what);
        return moved;
      });
      rmSync(trash, { recursive: true, force: true });
      lock.removeFile();
    }),
  );
}

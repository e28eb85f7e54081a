/**
 * The container's copy-on-write layer stack: the writable `upper`, the read-only layers its snapshots
 * froze (`layers/<id>`), then its Base Image's layers. Every change here runs under the container's lock.
 */
import { chownSync, chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readRecordOrSkip, snapshotRecordCheck, warnDamaged, type DamagedRecord } from '../core/records.js';
import { hostLibc } from '../core/libc.js';
import { compareNames } from '../core/names.js';
import { inBackground } from '../core/background.js';
import { isAlive } from '../core/proc.js';
import { jsonText, listEntries, writeIfChanged } from '../core/store.js';
import { layerDir, layersDir, recordPath, snapshotPath, snapshotsDir, upperDir, type AppRecord } from './layout.js';
import { lowerDirs, syncLxcConfig } from './lxcconfig.js';

/** What a snapshot restores: the container's layer stack at the time it was saved, topmost first. */
export interface SnapshotRecord {
  tag: string;
  layers: string[];
  created: string;
}

/** overlayfs refuses more lower layers than this (OVL_MAX_STACK). */
export const MAX_LOWERS = 500;
/** LXC keeps lxc.rootfs.path within PATH_MAX, and mount(2) copies at most one page of options (lowerdir, upperdir, workdir). */
const MOUNT_DATA_MAX = 4096;

const AT_FDCWD = -100;
const RENAME_EXCHANGE = 2;

/** Swaps two directories in one step (renameat2 RENAME_EXCHANGE): no moment where either is missing. */
export function exchange(a: string, b: string): void {
  if (hostLibc().renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) !== 0) throw new Error(`renameat2(${a}, ${b}, RENAME_EXCHANGE) failed`);
}

/** A damaged snapshot record is skipped with a warning: the snapshot is lost, the container and its other snapshots are not. */
const skipDamaged = (e: DamagedRecord) =>
  warnDamaged(e, 'the snapshot is skipped (remove it with rm-snapshot, or save a snapshot of the same tag to replace it)');

/** The snapshot's record, checked; undefined when there is none or it is damaged (skipped, with a warning). */
export function readSnapshot(name: string, tag: string): SnapshotRecord | undefined {
  return readRecordOrSkip<SnapshotRecord>(snapshotPath(name, tag), snapshotRecordCheck, skipDamaged);
}

/** Tags of the snapshots that can be loaded: those whose record reads (a damaged one is skipped with a warning). */
export function usableSnapshotTags(name: string): string[] {
  return snapshotTags(name).filter((t) => readSnapshot(name, t) !== undefined);
}

/** Tags of the container's finished snapshots (a half-written record is a `.tmp-*` file, never listed). */
export function snapshotTags(name: string): string[] {
  // Sorted again by tag: 'a-b.json' sorts before 'a.json', but tag 'a' before 'a-b'.
  return listEntries(snapshotsDir(name))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort(compareNames);
}

/** True when the upper layer holds no change since the last save. */
export function upperIsEmpty(name: string): boolean {
  return readdirSync(upperDir(name)).length === 0;
}

/** A layer id never used by the container's present layers: one more than the highest (short ids keep mount options short). */
export function nextLayerId(name: string): string {
  let max = 0;
  for (const e of readdirSync(layersDir(name))) {
    const n = parseInt(e, 36);
    if (/^[0-9a-z]+$/.test(e) && n > max) max = n;
  }
  return (max + 1).toString(36);
}

/** Why the stack would be too deep or too long to mount, or undefined when it fits. */
export function stackProblem(rec: AppRecord): string | undefined {
  const lowers = lowerDirs(rec);
  if (lowers.length > MAX_LOWERS) return `${lowers.length} layers exceed overlayfs's limit of ${MAX_LOWERS}`;
  const upper = upperDir(rec.name);
  const bytes = Buffer.byteLength(`upperdir=${upper},lowerdir=${lowers.join(':')},workdir=${upper}.work,`) + 64;
  if (bytes > MOUNT_DATA_MAX) return `its ${lowers.length} layers need ${bytes} bytes of mount options, over the kernel's ${MOUNT_DATA_MAX}`;
  return undefined;
}

/**
 * Writes the container's record, then LXC's config from it: the record is the truth, the config follows
 * it. A file that already holds its content is left alone (a rollback to the stack in place: two fsyncs saved).
 */
export function writeStack(rec: AppRecord): void {
  writeIfChanged(recordPath(rec.name), jsonText(rec));
  syncLxcConfig(rec);
}

/** Uppers this process set aside and removes itself (removeLater), by path. */
const removing = new Set<string>();
let asides = 0;

/**
 * A new directory of the container's layers directory to set an upper aside in, `.discard-PID-N`: tidy
 * leaves it to this process while it lives (and removes it once it died before removeLater finished).
 */
export function asideDir(name: string): string {
  const dir = layerDir(name, `.discard-${process.pid}-${++asides}`);
  removing.add(dir);
  return dir;
}

/** Removes a directory of asideDir off the operation's path (after the lock is released: a rollback does not wait for the old run's files). */
export function removeLater(dir: string): void {
  inBackground(rm(dir, { recursive: true, force: true }).finally(() => removing.delete(dir))); // what is left, tidy removes
}

/** Whether a live process (this one among them) still removes this entry of the layers directory. */
function beingRemoved(dir: string, entry: string): boolean {
  if (removing.has(dir)) return true;
  const pid = /^\.discard-(\d+)-\d+$/.exec(entry)?.[1];
  return pid !== undefined && Number(pid) !== process.pid && isAlive(Number(pid));
}

/**
 * Repairs what a killed operation left: LXC's config re-rendered from the record when they differ,
 * then every layer no longer in the record or a snapshot removed, with half-written snapshot records.
 */
export function tidy(rec: AppRecord): void {
  syncLxcConfig(rec);
  mkdirSync(layersDir(rec.name), { recursive: true, mode: 0o711 }); // LXC passes it as the container's root
  mkdirSync(snapshotsDir(rec.name), { recursive: true, mode: 0o700 });
  const live = new Set(rec.layers ?? []);
  let damaged = false;
  for (const tag of snapshotTags(rec.name)) {
    const snap = readSnapshot(rec.name, tag);
    if (snap) for (const id of snap.layers) live.add(id);
    else damaged = true;
  }
  // A damaged record may name any layer: keep them all until it is removed or replaced.
  if (!damaged)
    for (const e of readdirSync(layersDir(rec.name))) {
      const dir = layerDir(rec.name, e);
      if (!live.has(e) && !beingRemoved(dir, e)) rmSync(dir, { recursive: true, force: true });
    }
  for (const f of readdirSync(snapshotsDir(rec.name))) if (!f.endsWith('.json')) rmSync(join(snapshotsDir(rec.name), f), { force: true });
}

/** Makes an empty directory with the owner, mode and times of `like`: overlayfs shows the upper's root attributes as `/`. */
export function emptyDirLike(dir: string, like: string): void {
  const st = lstatSync(like);
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, st.uid, st.gid);
  chmodSync(dir, st.mode & 0o7777);
  utimesSync(dir, st.atime, st.mtime);
}

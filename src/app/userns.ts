/**
 * The user namespace of unprivileged application containers: one range of subordinate ids per D-RE
 * root (as Incus shares one map among its containers), container root = host uid `uid`. The range is
 * reserved in /etc/subuid and /etc/subgid under `dre-<root id>`, the files shadow's useradd and other
 * runtimes consult, so no two roots, users or tools get overlapping ranges; $DRE_ROOT/app/idmap.json
 * records it for this root. Layers D-RE builds are owned by the mapped ids once, at build time, so
 * snapshots, loads and creates from a base stay directory swaps (no idmapped mount per start).
 */
import { chmodSync, lchownSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { addSearch, makeOwnedDir } from '../core/access.js';
import { withHostLock } from '../core/lock.js';
import { basesDir, cgroupRoot, containerDir, containerRunDir, containersDir, runRoot, stateRoot } from '../core/paths.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../core/store.js';
import { layersDir, workDir } from './layout.js';

/** Host ids that appear as 0 .. count-1 inside the container. */
export interface IdRange {
  uid: number;
  gid: number;
  count: number;
}

/** 65536 ids: every id a Debian system uses, nobody (65534) included. */
export const ID_COUNT = 65536;
/** Ranges start here (above the 100000.. that useradd hands to users) and at multiples of ID_COUNT. */
const FIRST_ID = 16 * ID_COUNT;
const LAST_ID = 2 ** 32 - 2; // (uid_t)-1 is "no id"
export const SUBUID = '/etc/subuid';
export const SUBGID = '/etc/subgid';
const RESERVE_LOCK = '/run/lock/dre-subids.lock';

interface SubidEntry {
  name: string;
  start: number;
  count: number;
}

const idmapPath = () => join(stateRoot(), 'app', 'idmap.json');
/** This root's name in /etc/subuid and /etc/subgid. */
export const reservationName = (root = stateRoot()) => `dre-${cgroupRoot(root).slice('dre/'.length)}`;

function readSubids(file: string): SubidEntry[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return text
    .split('\n')
    .map((l) => /^([^:\s]+):(\d+):(\d+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1], start: Number(m[2]), count: Number(m[3]) }));
}

const overlaps = (a: { start: number; count: number }, b: { start: number; count: number }) => a.start < b.start + b.count && b.start < a.start + a.count;

/** The lowest aligned start whose range meets none of `taken`. */
export function freeStart(taken: { start: number; count: number }[], count = ID_COUNT): number | undefined {
  for (let start = FIRST_ID; start + count - 1 <= LAST_ID; start += ID_COUNT) {
    const clash = taken.find((t) => overlaps({ start, count }, t));
    if (!clash) return start;
    start = Math.max(start, Math.floor((clash.start + clash.count - 1) / ID_COUNT) * ID_COUNT);
  }
  return undefined;
}

/** Adds `name:start:count` to a subid file unless present; refuses a range another entry holds. */
function reserveIn(file: string, name: string, start: number, count: number): void {
  const entries = readSubids(file);
  if (entries.some((e) => e.name === name && e.start === start && e.count === count)) return;
  const clash = entries.find((e) => e.name !== name && overlaps(e, { start, count }));
  if (clash) {
    throw dreError(
      'DRE_ERR_PERMISSION_DENIED',
      `reserve ids ${start}-${start + count - 1} for this D-RE root: ${file} gives them to ${clash.name} too; remove one of the two`,
    );
  }
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    /* a new file */
  }
  if (text && !text.endsWith('\n')) text += '\n';
  writeFileAtomic(file, `${text}${name}:${start}:${count}\n`, 0o644);
}

/** Removes this root's lines from /etc/subuid and /etc/subgid (a test root, or a root being deleted). */
export function releaseReservation(root = stateRoot()): void {
  const name = reservationName(root);
  withHostLock(RESERVE_LOCK, 'release subordinate ids', () => {
    for (const file of [SUBUID, SUBGID]) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      const kept = text.split('\n').filter((l) => !l.startsWith(`${name}:`));
      if (kept.length !== text.split('\n').length) writeFileAtomic(file, kept.join('\n'), 0o644);
    }
  });
}

function validRange(r: IdRange | undefined): r is IdRange {
  return !!r && [r.uid, r.gid, r.count].every((v) => Number.isInteger(v)) && r.uid >= ID_COUNT && r.gid >= ID_COUNT && r.count === ID_COUNT;
}

let verified: { root: string; range: IdRange } | undefined;

/**
 * This root's id range, reserved on first use. The first call of a process checks the reservation is
 * still in both files and puts it back if someone removed it; later calls of the process reuse it.
 */
export function rootIdRange(): IdRange {
  if (verified?.root === stateRoot()) return verified.range;
  verified = { root: stateRoot(), range: reserveRootIdRange() };
  return verified.range;
}

function reserveRootIdRange(): IdRange {
  const name = reservationName();
  const present = (r: IdRange) =>
    readSubids(SUBUID).some((e) => e.name === name && e.start === r.uid && e.count === r.count) &&
    readSubids(SUBGID).some((e) => e.name === name && e.start === r.gid && e.count === r.count);
  const known = readJson<IdRange>(idmapPath());
  if (validRange(known) && present(known)) return known;
  return withHostLock(RESERVE_LOCK, 'reserve subordinate ids', () => {
    let r = readJson<IdRange>(idmapPath());
    if (!validRange(r)) {
      const mine = (e: SubidEntry) => e.name !== name;
      const start = freeStart([...readSubids(SUBUID).filter(mine), ...readSubids(SUBGID).filter(mine)]);
      if (start === undefined)
        throw dreError('DRE_ERR_PERMISSION_DENIED', `reserve ids for this D-RE root: no free range of ${ID_COUNT} ids left in ${SUBUID}/${SUBGID}`);
      r = { uid: start, gid: start, count: ID_COUNT };
    }
    reserveIn(SUBUID, name, r.uid, r.count);
    reserveIn(SUBGID, name, r.gid, r.count);
    writeJsonAtomic(idmapPath(), r);
    return r;
  });
}

/**
 * Gives the tree's files to the range: ids 0..count-1 become uid/gid + id; ids already in a range stay.
 * Never follows a link. chown clears set-uid/set-gid bits, so modes are put back after it.
 */
export function shiftOwners(dir: string, range: IdRange): void {
  const shift = (path: string) => {
    const st = lstatSync(path);
    if (st.uid < range.count || st.gid < range.count) {
      lchownSync(path, st.uid < range.count ? st.uid + range.uid : st.uid, st.gid < range.count ? st.gid + range.gid : st.gid);
      if (!st.isSymbolicLink()) chmodSync(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const e of readdirSync(path)) shift(join(path, e));
  };
  shift(dir);
}

/** Host uid of the root of a layer tree: 0 for privileged trees, a range's uid for unprivileged ones. */
export function treeOwner(dir: string): number {
  return lstatSync(dir).uid;
}

/**
 * A directory LXC reaches from inside the user namespace (the container's files, its base, its run
 * dir): only the container's root may pass through it (mode 0100, as Incus does), host users cannot.
 * Privileged: root only.
 */
export function confineDir(dir: string, range: IdRange | null): void {
  makeOwnedDir(dir, range ?? { uid: 0, gid: 0 }, range ? 0o100 : 0o700);
}

/** D-RE's own directories on the way to those: passable by anyone (mode +x), never listable. */
export function allowTraversal(): void {
  for (const dir of [stateRoot(), join(stateRoot(), 'app'), containersDir('app'), basesDir('app'), runRoot(), join(runRoot(), 'app')]) addSearch(dir, 0o011);
}

/**
 * Before a start: the directories LXC passes from inside the user namespace are passable by the
 * container's root only, and overlayfs's work directory is the mapped root's (LXC cannot make it there).
 * Also heals what an older D-RE or a killed create left.
 */
export function prepareContainerAccess(name: string, range: IdRange | null): void {
  if (range) allowTraversal();
  confineDir(containerRunDir('app', name), range);
  confineDir(containerDir('app', name), range);
  makeOwnedDir(layersDir(name), null, 0o711);
  if (range) makeOwnedDir(workDir(name), range, 0o700);
}

import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dreError } from './errors.js';
import { hostLibc, hostLibcBound } from './libc.js';
import { locksDir, type Kind } from './paths.js';
import { isAlive } from './proc.js';
import { readSmallFile } from './smallfile.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

const flock = () => hostLibc().flock;

/**
 * Takes the lock without waiting for a real holder; a status probe (a shared lock held for a few
 * microseconds) is waited out with up to three 1 ms retries so it never looks like BUSY.
 */
function tryExclusive(fd: number): boolean {
  for (let attempt = 0; ; attempt++) {
    if (flock()(fd, LOCK_EX | LOCK_NB) === 0) return true;
    if (attempt === 3) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
}

/** What a lock file says of its holder: the operation, its process and descriptor, and since when (BUSY messages; isLocked without flock). */
interface Holder {
  op: string;
  pid: number;
  fd: number;
  since: number;
}

/** Writes the holder into the lock file it has just locked (the file was opened for appending: after the truncation that is its start). */
function recordHolder(fd: number, what: string): void {
  ftruncateSync(fd, 0);
  writeSync(fd, JSON.stringify({ op: what, pid: process.pid, fd, since: Date.now() } satisfies Holder) + '\n');
}

/** ": OP (pid N, for T s)" naming who holds the lock at `path`, or nothing when that cannot be told (a holder that has not written yet). */
function holderOf(path: string): string {
  let h: Partial<Holder> | undefined;
  try {
    h = parseHolder(readFileSync(path, 'utf8'));
  } catch {
    return ''; // gone meanwhile
  }
  if (!h || typeof h.op !== 'string' || !Number.isInteger(h.pid) || !isAlive(h.pid as number)) return '';
  return `: ${h.op} (pid ${h.pid}, for ${Math.max(0, Math.round((Date.now() - (h.since as number)) / 1000))} s)`;
}

/** A lock file's holder record, unchecked: undefined when the text is no JSON (empty: released, or not written yet). */
function parseHolder(text: string): Partial<Holder> | undefined {
  try {
    return JSON.parse(text) as Partial<Holder>;
  } catch {
    return undefined;
  }
}

export function lockPath(kind: Kind, name: string): string {
  return join(locksDir(), `${kind}-${name}.lock`);
}

/**
 * A held per-container lock. The kernel drops a flock when its holder dies, so a killed process
 * never leaves a container locked.
 */
export class ContainerLock {
  private constructor(
    private readonly path: string,
    private fd_: number | undefined,
  ) {}

  /**
   * Takes the lock of a container for a state-changing operation without waiting:
   * someone else holding it → DRE_ERR_CONTAINER_BUSY (`what` names the operation in the message).
   */
  static acquire(kind: Kind, name: string, what: string): ContainerLock {
    mkdirSync(locksDir(), { recursive: true, mode: 0o700 });
    const path = lockPath(kind, name);
    for (;;) {
      const fd = openSync(path, 'a', 0o600); // libuv opens with O_CLOEXEC: children never inherit it
      if (!tryExclusive(fd)) {
        closeSync(fd);
        throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${name}: another D-RE operation on this container is in progress${holderOf(path)}`);
      }
      // A holder that unlinked the file (destroy) before we locked it: lock the new file instead.
      let same = false;
      try {
        const a = fstatSync(fd);
        const b = statSync(path);
        same = a.ino === b.ino && a.dev === b.dev;
      } catch {
        same = false;
      }
      if (same) {
        recordHolder(fd, what);
        return new ContainerLock(path, fd);
      }
      closeSync(fd);
    }
  }

  /**
   * The descriptor holding the lock. A child given it keeps the container locked until it exits,
   * even if this process is killed first.
   */
  get fd(): number {
    if (this.fd_ === undefined) throw new Error('lock already released');
    return this.fd_;
  }

  /** Removes the lock file while still holding it (the container is gone). */
  removeFile(): void {
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  release(): void {
    if (this.fd_ === undefined) return;
    // Emptied first, so that an empty file says "released" (isLocked) and a next holder's record, written after our unlock, stays.
    ftruncateSync(this.fd_, 0);
    flock()(this.fd_, LOCK_UN);
    closeSync(this.fd_);
    this.fd_ = undefined;
  }
}

/** Runs `fn` holding the container's lock; see ContainerLock.acquire. */
export async function withLock<T>(kind: Kind, name: string, what: string, fn: (lock: ContainerLock) => Promise<T>): Promise<T> {
  const lock = ContainerLock.acquire(kind, name, what);
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}

/**
 * Runs `fn` holding an exclusive flock on `path`, a lock shared by every D-RE root of this host (the
 * subordinate id reservations). Holders keep it for milliseconds, so a waiter retries for up to 10 s.
 */
export function withHostLock<T>(path: string, what: string, fn: () => T): T {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const fd = openSync(path, 'a', 0o600);
  try {
    for (let waited = 0; flock()(fd, LOCK_EX | LOCK_NB) !== 0; waited += 5) {
      if (waited >= 10_000) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what}: another process holds ${path} for over 10 s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
    return fn();
  } finally {
    closeSync(fd); // closing the only descriptor drops the lock
  }
}

/**
 * True when some process holds the container's lock. Where flock is already loaded (a long-lived
 * process) a non-blocking shared probe answers in microseconds. A short-lived CLI does not load koffi
 * for it (≈ 8 ms): it asks the kernel about the holder the lock file names (heldByRecordedHolder), and
 * reads /proc/locks only when that cannot tell, since a read of /proc/locks waits for an RCU grace
 * period (the kernel takes its file-lock rwsem for writing): 7–18 ms on this machine.
 */
export function isLocked(kind: Kind, name: string): boolean {
  const path = lockPath(kind, name);
  if (hostLibcBound()) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return false;
    }
    try {
      return flock()(fd, LOCK_SH | LOCK_NB) !== 0;
    } finally {
      closeSync(fd); // drops the probe's shared lock with the only descriptor
    }
  }
  let text: string;
  try {
    text = readSmallFile(path);
  } catch {
    return false;
  }
  // Lock lines look like: "1: FLOCK  ADVISORY  WRITE 1234 fd:01:123456 0 EOF". The inode is looked up
  // only when lines are read: a released lock file (empty) needs no stat.
  const names = (lines: string) => {
    const ino = statSync(path, { throwIfNoEntry: false })?.ino;
    return ino !== undefined && lines.split('\n').some((line) => line.includes('FLOCK') && line.includes(`:${ino} `));
  };
  const known = heldByRecordedHolder(text, names);
  return known ?? names(readFileSync('/proc/locks', 'utf8'));
}

/**
 * Whether the holder a lock file records (its pid and descriptor) still holds a flock on it:
 * - an empty file was released (release empties it before it unlocks) → false;
 * - a living holder → /proc/PID/fdinfo/FD, which lists the locks of that descriptor;
 * - a holder that died without releasing, an older holder format, or an fdinfo this process may not
 *   read → undefined (ask /proc/locks): a child it gave the descriptor (lxc-start) may hold it still.
 */
function heldByRecordedHolder(text: string, namesThisFile: (lines: string) => boolean): boolean | undefined {
  if (text === '') return false;
  const h = parseHolder(text);
  if (!h || !Number.isInteger(h.pid) || !Number.isInteger(h.fd)) return undefined;
  try {
    return namesThisFile(readFileSync(`/proc/${h.pid}/fdinfo/${h.fd}`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Takes an exclusive flock on `path` for as long as this process lives (one daemon per root), or
 * returns false at once when another process holds it.
 */
export function holdForLife(path: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, 'a', 0o600);
  if (flock()(fd, LOCK_EX | LOCK_NB) === 0) return true; // the descriptor stays open: the lock goes with the process
  closeSync(fd);
  return false;
}

/**
 * The D-Aware registry's files on the host (the spec's /proc/daware): one small tmpfs per running
 * container, mounted at registryDir(name) and bind-mounted at /run/daware inside it, holding one file
 * per registered process and signal, `<vpid>.<signo>`, whose content is the process's start time. The
 * container writes it, so it is hostile: every entry is resolved through the container's own PID
 * namespace (NSpid) and checked against the process's start time; the host opens nothing there that
 * could be a link or a special file, creates files only under fresh names, and the tmpfs caps what a
 * container can store (and keeps the registry off the host's file systems).
 */
import { appendFileSync, closeSync, constants as fsc, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { constants as osc } from 'node:os';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { containerRunDir } from '../core/paths.js';
import { isAlive, procStat, waitFor } from '../core/proc.js';
import { lxcLogPath } from './layout.js';
import { pidNamespace, processesOf, type PidNamespace } from './pidns.js';

/** A registered process: host PID, PID in the container, and the signal it gets at stop. */
export interface Registered {
  pid: number;
  vpid: number;
  signo: number;
}

/** The signal a process registered from the host (dre_app_register_pid / _vpid) gets at stop. */
export const HOST_REGISTERED_SIGNAL = osc.signals.SIGTERM;

const ENTRY_NAME = /^([1-9]\d{0,9})\.([1-9]\d?)$/;
const MAX_ENTRIES = 128;
const MAX_ENTRY_BYTES = 32;
/** Inodes of a registry's tmpfs: its root, the entries, and files being written (renamed into place). */
export const REGISTRY_INODES = MAX_ENTRIES + 32;
/** Its size: a page for each file with content, the only thing there that takes pages. */
export const REGISTRY_BYTES = REGISTRY_INODES * 4096;
/** The tmpfs's source field, so that the host's mount table says whose it is. */
const REGISTRY_SOURCE = 'dre-daware';

const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MNT_DETACH = 2;
const UMOUNT_NOFOLLOW = 8;

interface Libc {
  mount: (source: string, target: string, fstype: string, flags: number, data: string) => number;
  umount2: (target: string, flags: number) => number;
  errno: () => number;
}
let libcFns: Libc | undefined;

/** libc mount(2) and umount2(2) through koffi (loaded on first use): quick, and no mount(8) helper in between. */
function libc(): Libc {
  if (!libcFns) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load('libc.so.6');
    libcFns = {
      mount: lib.func('int mount(const char *, const char *, const char *, unsigned long, const char *)') as Libc['mount'],
      umount2: lib.func('int umount2(const char *, int)') as Libc['umount2'],
      errno: () => koffi.errno(),
    };
  }
  return libcFns;
}

const errnoName = (n: number) => Object.entries(osc.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;

/** The host directory a container sees as /run/daware. */
export function registryDir(name: string): string {
  return join(containerRunDir('app', name), 'daware');
}

/** How many mounts the host has at `path` (stacked ones included), from /proc/self/mountinfo. */
function mountsAt(path: string): number {
  const unescape = (f: string) => f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line && unescape(line.split(' ')[4]) === path).length;
}

/** The registry directory as the mount table spells it (no links in between), or undefined when there is none. */
function registryMountPoint(name: string): string | undefined {
  try {
    return join(realpathSync(containerRunDir('app', name)), 'daware');
  } catch {
    return undefined;
  }
}

/**
 * Unmounts every registry mount of the container (stop, destroy, and before a start: a killed start or
 * a died container leaves one); lazily where something still holds it open.
 */
export function unmountRegistry(name: string): void {
  const at = registryMountPoint(name);
  if (at === undefined) return;
  for (let left = mountsAt(at); left > 0; left--) {
    if (libc().umount2(at, UMOUNT_NOFOLLOW) === 0) continue;
    const err = libc().errno();
    if (err === osc.errno.EBUSY && libc().umount2(at, UMOUNT_NOFOLLOW | MNT_DETACH) === 0) continue;
    throw dreError('DRE_ERR_DEVICE_BUSY', `${name}: cannot unmount its D-Aware registry at ${at}: ${errnoName(libc().errno() || err)}`);
  }
}

/**
 * Mounts an empty registry for a new run (entries of the last run name PIDs that may since be reused):
 * a tmpfs of its own, so a container fills only its own few hundred KiB and never a host file system.
 */
export function mountRegistry(name: string): void {
  unmountRegistry(name);
  const dir = registryDir(name);
  rmSync(dir, { recursive: true, force: true }); // the host directory below: empty, or an older D-RE's registry
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mode=1777: any user of the container may register its own processes; sticky: not remove others'.
  const options = `size=${REGISTRY_BYTES / 1024}k,nr_inodes=${REGISTRY_INODES},mode=1777`;
  if (libc().mount(REGISTRY_SOURCE, dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, options) !== 0) {
    throw dreError('DRE_ERR_DAWARE_MOD_NONEXISTENCE', `${name}: cannot mount its D-Aware registry (tmpfs ${options}) at ${dir}: ${errnoName(libc().errno())}`);
  }
}

// No openat in Node: enough, as entries lie directly in registryDir, a host path and mount point the container cannot replace.
const READ_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY;
const CREATE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW | fsc.O_NOCTTY;

/** Reads one entry: a regular file (never a link, FIFO or device: fstat after a non-blocking open), a few bytes, a number. */
function readEntry(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES) return undefined;
    const buf = Buffer.alloc(MAX_ENTRY_BYTES);
    const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('latin1');
    return /^\d{1,20}\n?$/.test(text) ? Number(text.trim()) : undefined;
  } finally {
    closeSync(fd);
  }
}

/** Entries of the registry that name a live process of this container with the recorded start time. */
export function resolveRegistry(name: string, c: PidNamespace): Registered[] {
  let names: string[];
  try {
    names = readdirSync(registryDir(name));
  } catch {
    return [];
  }
  const procs = processesOf(c);
  const found: Registered[] = [];
  for (const entry of names.filter((n) => ENTRY_NAME.test(n)).slice(0, MAX_ENTRIES)) {
    const [, v, s] = ENTRY_NAME.exec(entry)!;
    const vpid = Number(v);
    const signo = Number(s);
    const pid = vpid === 1 ? undefined : procs.get(vpid); // the container's init is LXC's to stop
    const start = readEntry(join(registryDir(name), entry));
    if (pid === undefined || start === undefined || signo > 64 || procStat(pid)?.startTime !== start) continue;
    found.push({ pid, vpid, signo });
  }
  return found.sort((a, b) => a.vpid - b.vpid || a.signo - b.signo);
}

/** The running container has its registry mounted (else it was not started by this D-RE). */
export function requireRegistry(name: string, what: string): void {
  const at = registryMountPoint(name);
  if (at === undefined || mountsAt(at) === 0) {
    throw dreError('DRE_ERR_DAWARE_MOD_NONEXISTENCE', `${what} ${name}: the container has no D-Aware registry (it was not started by this D-RE)`);
  }
}

/**
 * Writes an entry as the library does, whole or not at all: a new file under a name nobody can
 * guess (O_EXCL: never an existing file, link or FIFO), then renamed over the entry name (rename
 * replaces a link there, never follows it). A full registry or a directory in the way: DEVICE_BUSY.
 */
export function writeEntry(what: string, name: string, vpid: number, pid: number): void {
  const dir = registryDir(name);
  const entry = `${vpid}.${HOST_REGISTERED_SIGNAL}`;
  const tmp = join(dir, `.host-${randomBytes(12).toString('hex')}.tmp`);
  let created = false;
  try {
    const fd = openSync(tmp, CREATE_FLAGS, 0o644);
    created = true;
    try {
      writeSync(fd, `${procStat(pid)!.startTime}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, entry));
  } catch (e) {
    if (created) rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw dreError('DRE_ERR_DEVICE_BUSY', `${what} ${name}: the container's D-Aware registry does not take entry ${entry} (${code}: full, or something of the container's in the way)`, e);
  }
}

/** Removes every entry of `vpid`; false when there was none. */
export function removeEntries(name: string, vpid: number): boolean {
  let removed = false;
  for (const e of readdirSync(registryDir(name))) {
    if (ENTRY_NAME.exec(e)?.[1] !== String(vpid)) continue;
    try {
      unlinkSync(join(registryDir(name), e)); // unlink never follows a link
      removed = true;
    } catch {
      /* not a file (a directory the container made): not an entry */
    }
  }
  return removed;
}

/** One line in the container's LXC log, in LXC's own layout, so D-RE's steps read in order with LXC's. */
function logStep(name: string, text: string): void {
  const t = new Date().toISOString().replace(/[-:T]/g, '').replace('Z', '').slice(0, 18);
  try {
    appendFileSync(lxcLogPath(name), `dre ${name} ${t} NOTICE    daware - ${text}\n`);
  } catch {
    /* the log is a courtesy: stopping goes on without it */
  }
}

const signalName = (signo: number) => Object.entries(osc.signals).find(([, v]) => v === signo)?.[0] ?? `signal ${signo}`;

/**
 * The stop hook: sends each registered process of the running container its signal, then waits up
 * to `graceMs` for all of them to exit, so their termination callbacks finish before LXC stops the
 * container. Never throws: a broken registry must not keep a container from stopping.
 */
export async function terminateRegistered(name: string, init: number | undefined, graceMs: number): Promise<void> {
  if (!existsSync(registryDir(name))) return;
  let targets: Registered[];
  try {
    targets = resolveRegistry(name, pidNamespace(name, init, 'stop'));
  } catch {
    return;
  }
  if (targets.length === 0) return;
  const began = Date.now();
  for (const t of targets) {
    try {
      process.kill(t.pid, t.signo);
      logStep(name, `sent ${signalName(t.signo)} to registered process ${t.pid} (PID ${t.vpid} in the container)`);
    } catch {
      /* it exited meanwhile */
    }
  }
  const pids = [...new Set(targets.map((t) => t.pid))];
  const done = await waitFor(() => (pids.every((p) => !isAlive(p)) ? true : undefined), graceMs, 20);
  const left = pids.filter((p) => isAlive(p));
  logStep(
    name,
    done
      ? `all ${pids.length} registered processes exited after ${Date.now() - began} ms`
      : `grace period of ${graceMs} ms over; still running: ${left.join(', ')}`,
  );
  logStep(name, 'asking LXC to stop the container');
}

/**
 * The D-Aware registry's files on the host (the spec's /proc/daware): one small tmpfs per running
 * container, mounted at registryDir(name) and bind-mounted at /run/daware inside it, holding one file
 * per registered process and signal, `<vpid>.<signo>`, whose content is the process's start time. The
 * container writes it, so it is hostile: every entry is resolved through the container's own PID
 * namespace (NSpid) and checked against the process's start time; the host opens nothing there that
 * could be a link or a special file, creates files only under fresh names, and the tmpfs caps what a
 * container can store (and keeps the registry off the host's file systems).
 */
import {
  appendFileSync,
  closeSync,
  constants as fsc,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { constants as osc } from 'node:os';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { readUntrustedFile } from '../core/store.js';
import { mount, MS_NODEV, MS_NOEXEC, MS_NOSUID, unmount } from '../core/mounts.js';
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

/** The host directory a container sees as /run/daware. */
export function registryDir(name: string): string {
  return join(containerRunDir('app', name), 'daware');
}

/** The registry directory as the mount table spells it (no links in between), or undefined when there is none. */
function registryMountPoint(name: string): string | undefined {
  try {
    return join(realpathSync(containerRunDir('app', name)), 'daware');
  } catch {
    return undefined;
  }
}

/** How many stacked registry mounts an unmount takes off at most: a bound, should one never go. */
const MAX_STACKED_MOUNTS = 16;

/**
 * Unmounts every registry mount of the container (stop, destroy, and before a start: a killed start or
 * a died container leaves one); lazily where something still holds it open. Each round asks two stats
 * whether a mount is left, never the mount table: with 500 running containers that has over a
 * thousand lines, ≈ 6 ms of every stop.
 */
export function unmountRegistry(name: string): void {
  if (!registryMounted(name)) return; // the usual case
  const at = registryMountPoint(name);
  if (at === undefined) return;
  for (let taken = 0; registryMounted(name); taken++) {
    try {
      if (taken === MAX_STACKED_MOUNTS) throw new Error(`still mounted after ${taken} unmounts`);
      unmount(at);
    } catch (e) {
      throw dreError('DRE_ERR_DEVICE_BUSY', `${name}: cannot unmount its D-Aware registry: ${(e as Error).message}`, e);
    }
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
  try {
    mount(REGISTRY_SOURCE, dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, options);
  } catch (e) {
    throw dreError('DRE_ERR_DAWARE_MOD_NONEXISTENCE', `${name}: cannot mount its D-Aware registry (${options}): ${(e as Error).message}`, e);
  }
}

// No openat in Node: enough, as entries lie directly in registryDir, a host path and mount point the container cannot replace.
const CREATE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW | fsc.O_NOCTTY;

/** Reads one entry: a regular file of a few bytes (readUntrustedFile), holding a number. */
function readEntry(path: string): number | undefined {
  const text = readUntrustedFile(path, MAX_ENTRY_BYTES + 1);
  return text !== undefined && text.length <= MAX_ENTRY_BYTES && /^\d{1,20}\n?$/.test(text) ? Number(text.trim()) : undefined;
}

/** Entries of the registry that name a live process of this container with the recorded start time. */
export function resolveRegistry(name: string, c: PidNamespace): Registered[] {
  let entries: string[];
  try {
    entries = readdirSync(registryDir(name))
      .filter((n) => ENTRY_NAME.test(n))
      .slice(0, MAX_ENTRIES);
  } catch {
    return [];
  }
  if (entries.length === 0) return []; // nothing registered: no pass over /proc (≈ 1.5 ms of every stop)
  const procs = processesOf(c);
  const found: Registered[] = [];
  for (const entry of entries) {
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

/** Whether a registry tmpfs is mounted: its own device, so two stats answer, not a read of the mount table. */
function registryMounted(name: string): boolean {
  try {
    return statSync(registryDir(name)).dev !== statSync(containerRunDir('app', name)).dev;
  } catch {
    return false; // no run dir or no registry
  }
}

/** The running container has its registry mounted (else it was not started by this D-RE). */
export function requireRegistry(name: string, what: string): void {
  if (!registryMounted(name)) {
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
    throw dreError(
      'DRE_ERR_DEVICE_BUSY',
      `${what} ${name}: the container's D-Aware registry does not take entry ${entry} (${code}: full, or something of the container's in the way)`,
      e,
    );
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

/**
 * The D-Aware registry's files on the host (the spec's /proc/daware): one directory per running container,
 * bind-mounted at /run/daware inside it, holding one file per registered process and signal,
 * `<vpid>.<signo>`, whose content is the process's start time. The container writes it, so it is
 * untrusted: every entry is resolved through the container's own PID namespace (NSpid), checked
 * against the process's start time, read without following links and with a size cap; anything
 * that does not map to a live process of that container is ignored.
 */
import { appendFileSync, chmodSync, closeSync, constants as fsc, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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
const MAX_ENTRIES = 4096;
const MAX_ENTRY_BYTES = 32;

/** The host directory a container sees as /run/daware. */
export function registryDir(name: string): string {
  return join(containerRunDir('app', name), 'daware');
}

/** Makes an empty registry for a new run: entries of the last run name PIDs that may since be reused. */
export function resetRegistry(name: string): void {
  const dir = registryDir(name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1777); // any user of the container may register its own processes; sticky: not remove others'
}

/** Reads one entry: a regular file (never a link, FIFO or device), at most a few bytes, holding a number. */
function readEntry(path: string): number | undefined {
  let fd: number;
  try {
    if (!lstatSync(path).isFile()) return undefined; // never open a device or FIFO; fstat below closes the race
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
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

export function requireRegistry(name: string, what: string): void {
  if (!existsSync(registryDir(name))) {
    throw dreError('DRE_ERR_DAWARE_MOD_NONEXISTENCE', `${what} ${name}: the container has no D-Aware registry (it was not started by this D-RE)`);
  }
}

/** Writes an entry as the library does: whole or not at all. */
export function writeEntry(name: string, vpid: number, pid: number): void {
  const dir = registryDir(name);
  const tmp = join(dir, `.${vpid}.${HOST_REGISTERED_SIGNAL}.host-tmp`);
  writeFileSync(tmp, `${procStat(pid)!.startTime}\n`, { mode: 0o644 });
  renameSync(tmp, join(dir, `${vpid}.${HOST_REGISTERED_SIGNAL}`));
}

/** Removes every entry of `vpid`; false when there was none. */
export function removeEntries(name: string, vpid: number): boolean {
  let removed = false;
  for (const e of readdirSync(registryDir(name))) {
    if (ENTRY_NAME.exec(e)?.[1] !== String(vpid)) continue;
    unlinkSync(join(registryDir(name), e)); // unlink never follows a link
    removed = true;
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

/**
 * Termination callbacks (spec 2.6.5-2.6.6). Registering installs a handler for the signal and records
 * the process in the container's registry, which D-RE bind-mounts at /run/daware: one file per process
 * and signal, named `<vpid>.<signo>`, holding the process's start time so a reused PID never matches.
 * D-RE, on the host, resolves the VPID through the container's PID namespace when it stops it.
 */
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';

/** Where D-RE mounts the container's registry (the spec's /proc/daware). */
export const DAWARE_REGISTRY_DIR = '/run/daware';

/** The handle of a termination callback (spec 2.5.1: `typedef long DTermination`). */
export type DTermination = number;

/** The callback: gets the signal and `arg`; its return value (or the value its promise resolves to) is the exit status. */
export type DTerminationCallback = (signo: number, arg: unknown) => number | void | Promise<number | void>;

interface Registration {
  signo: number;
  func: DTerminationCallback;
  arg: unknown;
}

const registrations = new Map<DTermination, Registration>();
const listeners = new Map<number, () => void>();
let lastHandle = 0;
let terminating = false;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([n, v]) => [v, n as NodeJS.Signals]));
// No handler can be installed for these (Node refuses them; the kernel never delivers them to one).
const UNCATCHABLE = new Set([constants.signals.SIGKILL, constants.signals.SIGSTOP]);

const entryPath = (signo: number) => join(DAWARE_REGISTRY_DIR, `${process.pid}.${signo}`);

/** This process's start time in clock ticks after boot (/proc/self/stat field 22). */
function startTime(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Writes this process's registry entry for `signo` (atomically: readers never see a partial one). */
function writeEntry(signo: number): boolean {
  try {
    if (!statSync(DAWARE_REGISTRY_DIR).isDirectory()) return false;
    const tmp = join(DAWARE_REGISTRY_DIR, `.${process.pid}.${signo}.tmp`);
    writeFileSync(tmp, `${startTime()}\n`, { mode: 0o644 });
    renameSync(tmp, entryPath(signo));
    return true;
  } catch {
    return false; // no registry reachable (not in a D-RE container) or not writable
  }
}

function removeEntry(signo: number): void {
  try {
    unlinkSync(entryPath(signo));
  } catch {
    /* already gone */
  }
}

/** Runs every callback registered for `signo`, in registration order, then leaves the registry and exits. */
async function terminate(signo: number): Promise<void> {
  if (terminating) return;
  terminating = true;
  let status = 0;
  for (const r of [...registrations.values()].filter((x) => x.signo === signo)) {
    try {
      const v = await r.func(signo, r.arg);
      if (typeof v === 'number' && Number.isInteger(v)) status = v;
    } catch (e) {
      process.stderr.write(`daware: termination callback for signal ${signo} failed: ${(e as Error)?.stack ?? String(e)}\n`);
      status = 1;
    }
  }
  process.exit(status);
}

/** A process that ends, by any path, leaves the registry (a stale entry would be ignored anyway). */
function leaveRegistry(): void {
  for (const s of listeners.keys()) removeEntry(s);
}

/**
 * Installs `func` for signal `signo` and records this process in the container's registry; when the
 * signal comes (D-RE sends it before it stops the container), the callbacks run and the process exits
 * with the callback's return value. Resolves to the handle, or null when the signal cannot be caught,
 * `func` is not a function, or no registry is reachable (not inside a D-RE application container).
 */
export function daware_termination_register_callback(signo: number, func: DTerminationCallback, arg?: unknown): DTermination | null {
  const name = SIGNAL_NAMES.get(signo);
  if (name === undefined || UNCATCHABLE.has(signo) || typeof func !== 'function') return null;
  if (!writeEntry(signo)) return null;
  if (listeners.size === 0) process.once('exit', leaveRegistry);
  if (!listeners.has(signo)) {
    const listener = () => void terminate(signo);
    process.on(name, listener);
    listeners.set(signo, listener);
  }
  registrations.set(++lastHandle, { signo, func, arg });
  return lastHandle;
}

/** Removes a callback; the last one of its signal also removes the handler and the registry entry. Unknown handles are ignored. */
export function daware_termination_unregister_callback(dterm: DTermination | null): void {
  const r = dterm === null || dterm === undefined ? undefined : registrations.get(dterm);
  if (!r) return;
  registrations.delete(dterm!);
  if ([...registrations.values()].some((x) => x.signo === r.signo)) return;
  const listener = listeners.get(r.signo);
  if (listener) process.off(SIGNAL_NAMES.get(r.signo)!, listener);
  listeners.delete(r.signo);
  removeEntry(r.signo);
  if (listeners.size === 0) process.off('exit', leaveRegistry);
}

/**
 * The event journal of a D-RE root: every process that changes a container (the library, a CLI, the
 * daemon) appends one JSON line per change to `$DRE_RUNDIR/events.jsonl`, so the daemon's event
 * stream shows changes whoever made them. Lines are small and written with one O_APPEND write, so
 * concurrent writers never interleave; the file is runtime state (gone after a reboot) and rotated.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runRoot, type Kind } from './paths.js';

/** What happened to a container (the engine-observed `died` and `appeared` come from the daemon). */
export type EventType =
  | 'created'
  | 'destroyed'
  | 'started'
  | 'stopped'
  | 'suspended'
  | 'resumed'
  | 'died'
  | 'appeared'
  | 'snapshot-saved'
  | 'snapshot-loaded'
  | 'snapshot-removed'
  | 'base-committed'
  | 'base-removed'
  | 'checkpointed'
  | 'restarted'
  | 'checkpoint-removed'
  | 'cgroup-created'
  | 'cgroup-destroyed'
  | 'pid-bound'
  | 'pid-unbound'
  | 'limit-set'
  | 'limit-unset'
  | 'shared'
  | 'unshared'
  | 'migrated'
  | 'immigrating'
  | 'policy-set'
  | 'snapshot-marked-good'
  // The recovery supervisor's decisions (src/daemon/supervisor.ts).
  | 'health-failed'
  | 'healthy'
  | 'recovering'
  | 'recovered'
  | 'recovery-failed'
  | 'gave-up';

export interface JournalEvent {
  time: string;
  kind: Kind;
  /** The container (for base events: the base). */
  name: string;
  type: EventType;
  /** The process that made the change. */
  pid: number;
  [detail: string]: unknown;
}

/** Past this size the writer that notices moves the journal to `events.jsonl.1` (a reader follows it). */
const ROTATE_BYTES = 1 << 20;

/** Who is acting, for the events of the changes made inside `withCause` (e.g. the recovery supervisor). */
const cause = new AsyncLocalStorage<string>();

/** Runs `fn` with every event it records marked `cause: who`, so readers tell those changes from a user's. */
export function withCause<T>(who: string, fn: () => Promise<T>): Promise<T> {
  return cause.run(who, fn);
}

export function journalPath(): string {
  return join(runRoot(), 'events.jsonl');
}

/** Appends one event. Never throws: an event that cannot be written must not fail the change it reports. */
export function record(kind: Kind, name: string, type: EventType, detail: Record<string, unknown> = {}): void {
  const by = cause.getStore();
  const line = `${JSON.stringify({ time: new Date().toISOString(), kind, name, type, pid: process.pid, ...(by ? { cause: by } : {}), ...detail })}\n`;
  const path = journalPath();
  try {
    try {
      if (statSync(path).size > ROTATE_BYTES) renameSync(path, `${path}.1`);
    } catch {
      mkdirSync(runRoot(), { recursive: true, mode: 0o700 });
    }
    appendFileSync(path, line, { mode: 0o600 });
  } catch {
    /* a full or read-only run dir: the change itself stands */
  }
}

/** An event a driver method records on success: its type and the names of the arguments it carries. */
export type EventSpec = readonly [EventType, ...string[]];

type Methods<D> = { [K in keyof D]: D[K] extends (...a: never[]) => unknown ? K : never }[keyof D];

/**
 * The driver with each method named in `events` recording its event after it succeeds. The event's
 * `name` is the argument called `name` (or `base`); the other named arguments become its details.
 */
export function journaled<D extends object>(kind: Kind, driver: D, events: Partial<Record<Methods<D>, EventSpec>>): D {
  const out = { ...driver };
  for (const [method, spec] of Object.entries(events) as [keyof D & string, EventSpec][]) {
    const fn = driver[method] as (...a: unknown[]) => unknown;
    const [type, ...argNames] = spec;
    (out as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const result = await fn(...args);
      const detail: Record<string, unknown> = {};
      argNames.forEach((a, i) => (detail[a] = args[i]));
      const { name, base, ...rest } = detail;
      record(kind, String(name ?? base), type, base !== undefined && name !== undefined ? { base, ...rest } : rest);
      return result;
    };
  }
  return out;
}

/** Every event still in the journal (the rotated file first), oldest first; torn lines are skipped. */
export function readJournal(): JournalEvent[] {
  const out: JournalEvent[] = [];
  for (const path of [`${journalPath()}.1`, journalPath()]) {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JournalEvent);
      } catch {
        /* a writer killed mid-line */
      }
    }
  }
  return out;
}

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
  | 'base-built'
  | 'base-imported'
  | 'exported'
  | 'imported'
  | 'file-pushed'
  | 'base-removed'
  | 'checkpointed'
  | 'restarted'
  | 'checkpoint-removed'
  | 'cgroup-created'
  | 'cgroup-destroyed'
  | 'pid-bound'
  | 'pid-unbound'
  | 'renamed'
  | 'configured'
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
  | 'gave-up'
  // READY=1 on the container's NOTIFY_SOCKET (src/daemon/notify.ts).
  | 'ready'
  // Clusters (src/daemon/cluster.ts): a host that lost its lease killed its guest; another host took the container over.
  | 'fenced'
  | 'failed-over';

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

/** The `withCause` this call runs under, if any (carried along where the work moves to another thread). */
export const currentCause = (): string | undefined => cause.getStore();

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

/** The events of the operations both drivers share (each kind adds its own: VPIDs, sharing, migration). */
export const DRIVER_EVENTS = {
  create: ['created', 'name'],
  destroy: ['destroyed', 'name'],
  start: ['started', 'name'],
  stop: ['stopped', 'name'],
  suspend: ['suspended', 'name'],
  resume: ['resumed', 'name'],
  saveSnapshot: ['snapshot-saved', 'name', 'tag'],
  loadSnapshot: ['snapshot-loaded', 'name', 'tag'],
  removeSnapshot: ['snapshot-removed', 'name', 'tag'],
  commitSnapshot: ['base-committed', 'name', 'tag', 'base'],
  removeBase: ['base-removed', 'base'],
  checkpoint: ['checkpointed', 'name', 'tag'],
  restart: ['restarted', 'name', 'tag'],
  removeCheckpoint: ['checkpoint-removed', 'name', 'tag'],
  createCgroup: ['cgroup-created', 'name', 'cgroup'],
  destroyCgroup: ['cgroup-destroyed', 'name', 'cgroup'],
  bindPid: ['pid-bound', 'name', 'cgroup', 'pid'],
  unbindPid: ['pid-unbound', 'name', 'cgroup', 'pid'],
  setResource: ['limit-set', 'name', 'cgroup', 'resource'],
  unsetResource: ['limit-unset', 'name', 'cgroup', 'resource'],
  setLimit: ['limit-set', 'name', 'resource'],
  unsetLimit: ['limit-unset', 'name', 'resource'],
  setPolicy: ['policy-set', 'name', 'policy'],
  markGood: ['snapshot-marked-good', 'name', 'tag'],
} as const satisfies Record<string, EventSpec>;

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

/** The events of whole journal lines; a torn line (a writer killed mid-write) is skipped. */
export function parseEvents(lines: string[]): JournalEvent[] {
  const out: JournalEvent[] = [];
  for (const line of lines) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as JournalEvent);
    } catch {
      /* torn */
    }
  }
  return out;
}

/** Every event still in the journal (the rotated file first), oldest first. */
export function readJournal(): JournalEvent[] {
  return [`${journalPath()}.1`, journalPath()].flatMap((path) => {
    try {
      return parseEvents(readFileSync(path, 'utf8').split('\n'));
    } catch {
      return [];
    }
  });
}

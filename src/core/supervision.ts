/**
 * What the recovery supervisor (src/daemon/supervisor.ts) works from, for both kinds: each
 * container's recovery policy and its snapshots marked good, kept beside its record
 * (`supervision.json`, removed with the container), and the supervisor's view of its health, runtime
 * state under the run dir (so a daemon that is killed mid-recovery finds what it was doing).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dreError } from './errors.js';
import { checkInt, checkName, shown } from './names.js';
import { containerDir, runRoot, type Kind } from './paths.js';
import { int, orNull, readRecordOr, shape, str, bool, type Check } from './records.js';
import { changingContainer } from './operation.js';
import { requireRoot } from './privilege.js';
import { readJson, writeJsonAtomic } from './store.js';

/** What to do: `none`, `restart`, `rollback:TAG`, `rollback:last-good`, or (system containers) `restart-from:CHECKPOINT`. */
export type Action = string;

export interface Probe {
  /**
   * tcp: connect to the container's address on `port`; http: GET `path` there, 2xx/3xx passes;
   * exec: `command` run by `/bin/sh -c` inside the container (app: lxc-attach; sys: the guest agent)
   * passes when it exits 0 within the timeout; heartbeat (application containers): passes while a
   * process of the container sent `WATCHDOG=1` on its NOTIFY_SOCKET within the last `timeoutMs`
   * (or the `WATCHDOG_USEC=` it sent last).
   */
  type: 'tcp' | 'http' | 'exec' | 'heartbeat';
  port?: number;
  path?: string;
  command?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failures in a row that make the container unhealthy. */
  retries: number;
  /** After a start, failures do not count for this long. */
  startPeriodMs: number;
}

export interface RecoveryPolicy {
  probe: Probe | null;
  onUnhealthy: Action;
  /** Init (LXC) or QEMU gone without a stop. */
  onExit: Action;
  /** At most `max` recoveries in `windowMs`; then the container is left stopped and `failed`. */
  max: number;
  windowMs: number;
  /** Started by the daemon when it starts (at boot, through the systemd unit). */
  autostart: boolean;
  /**
   * Once the container stayed healthy this long after its last start (or recovery), the newest
   * snapshot older than that start is marked good (the target of `rollback:last-good`); null: never.
   */
  markGoodAfterMs?: number | null;
  /**
   * A shared system container in a cluster: when its host is lost (its lease expired), another
   * healthy host of the cluster starts it from the shared image (src/daemon/cluster.ts).
   */
  failover?: boolean;
}

export interface Supervision {
  policy: RecoveryPolicy | null;
  /** Snapshot tags marked good, oldest first (`rollback:last-good` takes the newest that still exists). */
  good: string[];
}

export const DEFAULT_PROBE = { intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 };
export const DEFAULT_LIMIT = { max: 5, windowMs: 10 * 60_000 };

const probeCheck = shape({
  type: str,
  'port?': int(1, 65535),
  'path?': str,
  'command?': str,
  intervalMs: int(50, 3_600_000),
  timeoutMs: int(10, 600_000),
  retries: int(1, 1000),
  startPeriodMs: int(0, 3_600_000),
});
const supervisionCheck: Check = shape({
  policy: orNull(
    shape({
      probe: orNull(probeCheck),
      onUnhealthy: str,
      onExit: str,
      max: int(1, 1000),
      windowMs: int(1000, 86_400_000),
      autostart: bool,
      'markGoodAfterMs?': orNull(int(100, 604_800_000)),
      'failover?': bool,
    }),
  ),
  good: (v) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : 'a list of snapshot tags'),
});

export const supervisionPath = (kind: Kind, name: string) => join(containerDir(kind, name), 'supervision.json');

export function readSupervision(kind: Kind, name: string): Supervision {
  return (
    readRecordOr<Supervision>(
      supervisionPath(kind, name),
      supervisionCheck,
      'DRE_ERR_CONTAINER_UNKNOWN_STATUS',
      `supervision of ${name}`,
      'set the policy again (dre-app policy NAME ...) or remove the file',
    ) ?? {
      policy: null,
      good: [],
    }
  );
}

/** Writes the container's supervision file; the caller holds the container's lock. */
export function writeSupervision(kind: Kind, name: string, s: Supervision): void {
  writeJsonAtomic(supervisionPath(kind, name), s);
}

/** An action as given, checked: the names it carries are valid, restart-from only for system containers. */
export function checkAction(kind: Kind, a: unknown, what: string): Action {
  if (typeof a !== 'string')
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be none, restart, rollback:TAG, rollback:last-good or restart-from:CHECKPOINT, not ${shown(a)}`);
  if (a === 'none' || a === 'restart' || a === 'rollback:last-good') return a;
  const [verb, tag] = a.split(/:(.*)/s);
  if (verb === 'rollback') return `rollback:${checkName(tag, 'snapshot tag')}`;
  if (verb === 'restart-from' && kind === 'sys') return `restart-from:${checkName(tag, 'checkpoint tag')}`;
  throw dreError(
    'DRE_ERR_INVALID_ARGUMENT',
    `${what} ${shown(a)}: use none, restart, rollback:TAG, rollback:last-good${kind === 'sys' ? ' or restart-from:CHECKPOINT' : ''}`,
  );
}

/** A policy as a caller gives it (partial, from the API or the CLI), completed with the defaults and checked. */
export function checkPolicy(kind: Kind, p: unknown): RecoveryPolicy {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `policy must be an object, not ${shown(p)}`);
  const v = p as Record<string, unknown>;
  let probe: Probe | null = null;
  if (v.probe !== undefined && v.probe !== null) {
    if (typeof v.probe !== 'object') throw dreError('DRE_ERR_INVALID_ARGUMENT', `probe must be an object, not ${shown(v.probe)}`);
    const q: Record<string, unknown> = { ...DEFAULT_PROBE, ...(v.probe as Record<string, unknown>) };
    if (q.type !== 'tcp' && q.type !== 'http' && q.type !== 'exec' && q.type !== 'heartbeat')
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `probe type must be tcp, http, exec or heartbeat, not ${shown(q.type)}`);
    if (q.path !== undefined && (typeof q.path !== 'string' || !q.path.startsWith('/')))
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `probe path must start with /, not ${shown(q.path)}`);
    if (q.type === 'exec' && (typeof q.command !== 'string' || q.command.trim() === '' || q.command.includes('\0') || q.command.length > 4096)) {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `an exec probe needs a command (1 to 4096 characters, no NUL), not ${shown(q.command)}`);
    }
    if (q.type === 'heartbeat' && kind === 'sys')
      throw dreError(
        'DRE_ERR_INVALID_ARGUMENT',
        'a system container has no NOTIFY_SOCKET to send heartbeats on: use an exec probe (run through its guest agent)',
      );
    if ((q.type === 'tcp' || q.type === 'http') && kind === 'sys')
      throw dreError(
        'DRE_ERR_INVALID_ARGUMENT',
        `a system container has no network address to probe: use an exec probe (run through its guest agent), not ${q.type}`,
      );
    probe = {
      type: q.type,
      ...(q.type === 'exec' ? { command: q.command as string } : q.type === 'heartbeat' ? {} : { port: checkInt(q.port, 'probe port', 1, 65535) }),
      ...(q.type === 'http' ? { path: (q.path as string | undefined) ?? '/' } : {}),
      intervalMs: checkInt(q.intervalMs, 'probe interval (ms)', 50, 3_600_000),
      timeoutMs: checkInt(q.timeoutMs, 'probe timeout (ms)', 10, 600_000),
      retries: checkInt(q.retries, 'probe retries', 1, 1000),
      startPeriodMs: checkInt(q.startPeriodMs, 'probe start period (ms)', 0, 3_600_000),
    };
  }
  for (const flag of ['autostart', 'failover'] as const)
    if (v[flag] !== undefined && typeof v[flag] !== 'boolean')
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${flag} must be true or false, not ${shown(v[flag])}`);
  if (v.failover === true && kind === 'app')
    throw dreError('DRE_ERR_INVALID_ARGUMENT', 'failover is for shared system containers (an application container lives on one host)');
  const markGood = v.markGoodAfterMs ?? null;
  if (markGood !== null && !probe)
    throw dreError('DRE_ERR_INVALID_ARGUMENT', 'marking snapshots good after a healthy time needs a probe (--probe) to tell healthy');
  return {
    probe,
    markGoodAfterMs: markGood === null ? null : checkInt(markGood, 'mark-good-after (ms)', 100, 604_800_000),
    onUnhealthy: checkAction(kind, v.onUnhealthy ?? (probe ? 'restart' : 'none'), 'onUnhealthy'),
    onExit: checkAction(kind, v.onExit ?? 'none', 'onExit'),
    max: checkInt(v.max ?? DEFAULT_LIMIT.max, 'max recoveries', 1, 1000),
    windowMs: checkInt(v.windowMs ?? DEFAULT_LIMIT.windowMs, 'recovery window (ms)', 1000, 86_400_000),
    autostart: (v.autostart as boolean | undefined) ?? false,
    failover: (v.failover as boolean | undefined) ?? false,
  };
}

/** The supervisor's view of one container: runtime state, rewritten at each change of it. */
export interface Health {
  state: 'unsupervised' | 'starting' | 'healthy' | 'unhealthy' | 'recovering' | 'failed' | 'stopped';
  since: string;
  reason: string | null;
  /** Recoveries begun (epoch ms), within the policy's window. */
  recoveries: number[];
  /** The last snapshot the supervisor marked good by itself (policy markGoodAfterMs). */
  markedGood?: { tag: string; at: string };
  /** What the container's NOTIFY_SOCKET said since its last start (application containers). */
  notify?: { ready: boolean; status: string | null; stopping: boolean };
  /** The recovery under way (state `recovering`) or the last one. */
  last: {
    trigger: 'unhealthy' | 'exit';
    action: Action;
    startedAt: string;
    ms: number | null;
    result: 'running' | 'recovered' | 'failed';
    error?: string;
  } | null;
}

export const healthPath = (kind: Kind, name: string) => join(runRoot(), 'supervisor', `${kind}-${name}.json`);

/** The health the supervisor last wrote; a torn file (a daemon killed mid-write) reads as none. */
export function readHealth(kind: Kind, name: string): Health | undefined {
  try {
    return readJson<Health>(healthPath(kind, name));
  } catch {
    return undefined;
  }
}

export function writeHealth(kind: Kind, name: string, h: Health): void {
  mkdirSync(dirname(healthPath(kind, name)), { recursive: true, mode: 0o700 });
  writeJsonAtomic(healthPath(kind, name), h);
}

export function removeHealth(kind: Kind, name: string): void {
  rmSync(healthPath(kind, name), { force: true });
}

/** What a driver offers of supervision: the policy, good marks and health of its containers. */
export function supervisionOps(kind: Kind, requireContainer: (name: string, what: string) => unknown, listSnapshots: (name: string) => Promise<string[]>) {
  return {
    /** Sets (or with null clears) the container's recovery policy; the supervisor in dred follows it. */
    setPolicy: (name: string, policy: Partial<RecoveryPolicy> | null): Promise<void> =>
      changingContainer(kind, 'set the recovery policy of', name, requireContainer, async (n) => {
        const p = policy === null ? null : checkPolicy(kind, policy);
        writeSupervision(kind, n, { ...readSupervision(kind, n), policy: p });
      }),
    /** The policy, the snapshots marked good and the supervisor's last word on the container's health. */
    supervision: async (name: string): Promise<Supervision & { health: Health | null }> => {
      const n = checkName(name, 'container name');
      requireRoot(`supervision of ${n}`);
      requireContainer(n, 'supervision of');
      return { ...readSupervision(kind, n), health: readHealth(kind, n) ?? null };
    },
    /** Marks a snapshot good: `rollback:last-good` goes back to the newest snapshot so marked. */
    markGood: (name: string, tag: string): Promise<void> =>
      changingContainer(kind, 'mark a snapshot good in', name, requireContainer, async (n) => {
        const t = checkName(tag, 'snapshot tag');
        if (!(await listSnapshots(n)).includes(t)) throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `mark snapshot ${t} of ${n} good: no such snapshot`);
        const s = readSupervision(kind, n);
        writeSupervision(kind, n, { ...s, good: [...s.good.filter((g) => g !== t), t] });
      }),
  };
}

/** Sets whether the first daemon after a boot starts the container (its policy's autostart; a policy that does nothing else is made). The caller holds its lock. */
export function setAutostart(kind: Kind, name: string, on: boolean): void {
  const s = readSupervision(kind, name);
  if (!s.policy && !on) return;
  writeSupervision(kind, name, { ...s, policy: checkPolicy(kind, { ...(s.policy ?? {}), autostart: on }) });
}

/** Whether the container is started by the first daemon after a boot. */
export const autostarts = (kind: Kind, name: string): boolean => readSupervision(kind, name).policy?.autostart ?? false;

/** The tag `rollback:last-good` goes back to: the newest snapshot marked good that still exists. */
export function lastGood(good: string[], existing: string[]): string | undefined {
  return [...good].reverse().find((t) => existing.includes(t));
}

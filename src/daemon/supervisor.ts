/**
 * The recovery supervisor, inside dred: for each container with a recovery policy it probes the
 * service and watches the engine (the event hub's `died`), and brings the container back to a known
 * state (restart, rollback to a snapshot, restart from a checkpoint) within the policy's limit.
 *
 * - Every step is an ordinary driver call, so it takes the container's lock like any operation and
 *   never acts while a user (or another process) changes the container.
 * - Its changes are journaled with `cause: supervisor`; a stop that is not its own is the user's, and
 *   wins: a recovery under way gives up its remaining steps, and nothing restarts the container.
 * - Its intent is written (health `recovering`) before it acts: a daemon killed mid-recovery redoes
 *   the recovery when it starts again (each action is safe to redo).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { STATUS, type Status } from '../core/driver.js';
import { isDreError } from '../core/errors.js';
import { readJournal, record, withCause, type EventType, type JournalEvent } from '../core/journal.js';
import { runRoot, type Kind } from '../core/paths.js';
import { sleep } from '../core/proc.js';
import {
  lastGood,
  readHealth,
  readSupervision,
  removeHealth,
  writeHealth,
  type Action,
  type Health,
  type Probe,
  type RecoveryPolicy,
} from '../core/supervision.js';
import type { EventHub, StreamEvent } from './events.js';

export const SUPERVISOR = 'supervisor';

/** What the supervisor needs of a driver (both kinds offer it). */
export interface Supervised {
  kind: Kind;
  list(): Promise<string[]>;
  enginePid(name: string): number | undefined;
  status(name: string): Promise<Status>;
  info(name: string): object;
  start(name: string): Promise<void>;
  stop(name: string, opts?: { timeoutMs?: number }): Promise<void>;
  loadSnapshot(name: string, tag: string): Promise<void>;
  listSnapshots(name: string): Promise<string[]>;
  restart(name: string, tag: string): Promise<void>;
  execCapture(name: string, argv: string[], timeoutMs?: number): Promise<{ status: number }>;
  snapshotDetails(name: string): Promise<{ tag: string; created: string | null }[]>;
  markGood(name: string, tag: string): Promise<void>;
}

interface Watch {
  kind: Kind;
  name: string;
  policy: RecoveryPolicy;
  health: Health;
  failures: number;
  startedAt: number;
  /** Bumped by a user's stop: a recovery that began under an older generation stops taking steps. */
  generation: number;
  recovering: boolean;
  timer?: NodeJS.Timeout;
  /** Since when every probe passed (undefined: the last one failed, or none passed since the start). */
  healthySince?: number;
  /** The start (startedAt) whose good snapshot was marked already. */
  markedFor?: number;
  /** Killed by this host's fencing (cluster lease lost): its death is not one to recover from here. */
  fenced?: boolean;
  /** The address probes go to, read on the first probe (again while the container has none). */
  address?: string | null;
}

class Cancelled extends Error {}

/** What a container's NOTIFY_SOCKET said since its last start. */
interface Notes {
  ready: boolean;
  status: string | null;
  stopping: boolean;
  /** The last WATCHDOG=1 (epoch ms). */
  watchdogAt: number;
  /** WATCHDOG_USEC= as the service last set it, in ms (it replaces the probe's timeout). */
  watchdogMs?: number;
}

/** Recoveries after the first in a window wait 250 ms, 500 ms, 1 s ... up to 10 s. */
const backoffMs = (earlier: number) => (earlier === 0 ? 0 : Math.min(250 * 2 ** (earlier - 1), 10_000));

export class Supervisor {
  private readonly watches = new Map<string, Watch>();
  private readonly notes = new Map<string, Notes>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly drivers: Supervised[],
    private readonly hub: EventHub,
  ) {}

  private driver(kind: Kind): Supervised {
    return this.drivers.find((d) => d.kind === kind)!;
  }

  /** Takes up every supervised container; redoes recoveries a killed daemon left; autostarts after a boot. */
  async start(): Promise<void> {
    this.unsubscribe = this.hub.subscribe((e) => this.onEvent(e));
    const firstSinceBoot = !existsSync(join(runRoot(), 'supervisor', 'booted'));
    for (const d of this.drivers) for (const n of await d.list()) this.load(d.kind, n);
    const last = lastLifeEvents();
    for (const w of this.watches.values()) {
      const alive = this.driver(w.kind).enginePid(w.name) !== undefined;
      const e = last.get(`${w.kind}/${w.name}`);
      const userStopped = e?.type === 'stopped' && e.cause !== SUPERVISOR;
      // The journal's last word is a start (or a death nobody acted on), yet no engine runs: it died unwatched.
      const diedUnwatched = !alive && (e?.type === 'started' || e?.type === 'restarted' || e?.type === 'died');
      if (w.health.state === 'recovering' && w.health.last && !userStopped) void this.recover(w, w.health.last.trigger, true);
      else if (firstSinceBoot && w.policy.autostart && !alive) void this.autostart(w);
      else if (diedUnwatched && w.health.state !== 'failed') void this.recover(w, 'exit');
      else if (!alive && w.health.state !== 'failed') this.setHealth(w, 'stopped', userStopped ? 'stopped by the user' : w.health.reason);
    }
    markTakenUp();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const w of this.watches.values()) clearTimeout(w.timer);
  }

  /** (Re)reads a container's policy; a container without one is not watched. */
  private load(kind: Kind, name: string): void {
    const key = `${kind}/${name}`;
    const old = this.watches.get(key);
    clearTimeout(old?.timer);
    let policy: RecoveryPolicy | null = null;
    try {
      policy = readSupervision(kind, name).policy;
    } catch (e) {
      process.stderr.write(`dred: supervisor: ${(e as Error).message}\n`);
    }
    if (!policy) {
      if (old) old.generation++; // a recovery under way takes no further step
      this.watches.delete(key);
      removeHealth(kind, name);
      return;
    }
    const alive = this.driver(kind).enginePid(name) !== undefined;
    const health = readHealth(kind, name) ?? fresh(alive ? 'starting' : 'stopped', null);
    if (old) {
      old.policy = policy; // in place: a recovery under way holds this watch
      return this.schedule(old);
    }
    const w: Watch = { kind, name, policy, health, failures: 0, startedAt: Date.now(), generation: 0, recovering: false };
    this.watches.set(key, w);
    this.setHealth(w, w.health.state, w.health.reason);
    this.schedule(w);
  }

  private onEvent(e: StreamEvent): void {
    if (e.type === 'operation') return;
    const key = `${e.kind}/${e.name}`;
    if (e.type === 'policy-set' || e.type === 'created') return this.load(e.kind, e.name);
    if (e.type === 'stopped' || e.type === 'died' || e.type === 'destroyed') this.notes.delete(key); // a new run says READY again
    const w = this.watches.get(key);
    if (!w) return;
    const ours = e.cause === SUPERVISOR;
    if (e.type === 'destroyed') {
      clearTimeout(w.timer);
      w.generation++;
      this.watches.delete(key);
      removeHealth(e.kind, e.name);
    } else if (e.type === 'fenced') {
      // Killed by this host's own fencing (it lost its cluster lease): another host takes it over; nothing here restarts it.
      w.fenced = true;
      w.generation++;
      this.setHealth(w, 'stopped', `fenced: ${String(e.reason ?? 'this host lost the cluster')}`);
    } else if (e.type === 'died') {
      if (!w.recovering && !w.fenced) void this.recover(w, 'exit');
    } else if (e.type === 'stopped' && !ours) {
      w.generation++; // the user's stop wins over any recovery under way
      this.setHealth(w, 'stopped', 'stopped by the user');
    } else if ((e.type === 'started' || e.type === 'restarted') && !ours) {
      w.fenced = false;
      w.failures = 0;
      w.startedAt = Date.now();
      w.healthySince = undefined;
      this.setHealth(w, 'starting', null, { recoveries: w.health.state === 'failed' ? [] : w.health.recoveries });
    }
  }

  private schedule(w: Watch): void {
    clearTimeout(w.timer);
    if (this.stopped || !w.policy.probe) return;
    w.timer = setTimeout(
      () => void this.probeOnce(w, w.policy.probe!).finally(() => this.watches.get(`${w.kind}/${w.name}`) === w && this.schedule(w)),
      w.policy.probe.intervalMs,
    );
  }

  private async probeOnce(w: Watch, probe: Probe): Promise<void> {
    if (w.recovering || ['failed', 'stopped'].includes(w.health.state)) return;
    const d = this.driver(w.kind);
    if (d.enginePid(w.name) === undefined) return; // not running: the engine watch (died) decides
    const target = this.probeTarget(w, probe);
    if (target === null) return;
    if (await target.passes()) {
      w.failures = 0;
      w.healthySince ??= Date.now();
      if (w.health.state !== 'healthy') {
        this.setHealth(w, 'healthy', null);
        this.event(w, 'healthy', {});
      }
      return this.markGoodWhenDue(w);
    }
    w.healthySince = undefined;
    if (Date.now() - w.startedAt < probe.startPeriodMs) return;
    // A container the user suspended, or one another operation holds, is not unhealthy.
    const s = await d.status(w.name).catch(() => STATUS.BUSY);
    if (s !== STATUS.RUNNING) return;
    w.failures++;
    if (w.failures < probe.retries) return;
    this.event(w, 'health-failed', { probe: target.shown, failures: w.failures });
    await this.recover(w, 'unhealthy');
  }

  /**
   * A message on the container's NOTIFY_SOCKET (from its own processes: the relay checked the sender).
   * READY, STATUS and STOPPING go into its health (and READY=1 is the `ready` event); WATCHDOG=1 feeds
   * a heartbeat probe.
   */
  onNotify(name: string, fields: Record<string, string>, pid: number): void {
    const key = `app/${name}`;
    const n = this.notes.get(key) ?? { ready: false, status: null, stopping: false, watchdogAt: 0 };
    this.notes.set(key, n);
    if (fields.WATCHDOG === '1') n.watchdogAt = Date.now();
    const usec = Number(fields.WATCHDOG_USEC);
    if (fields.WATCHDOG_USEC !== undefined && Number.isSafeInteger(usec) && usec > 0) n.watchdogMs = Math.max(10, Math.round(usec / 1000));
    const was = { ready: n.ready, status: n.status, stopping: n.stopping };
    if (fields.READY === '1') n.ready = true;
    if (fields.STATUS !== undefined) n.status = fields.STATUS.slice(0, 256);
    if (fields.STOPPING === '1') n.stopping = true;
    if (n.ready && !was.ready) record('app', name, 'ready', { cause: SUPERVISOR, pid_in_host: pid, via: 'notify' });
    const w = this.watches.get(key);
    if (w && (n.ready !== was.ready || n.status !== was.status || n.stopping !== was.stopping)) this.setHealth(w, w.health.state, w.health.reason);
  }

  /** Whether a WATCHDOG=1 came within the heartbeat's timeout (counted from the last start when none came since). */
  private heartbeatFresh(w: Watch, probe: Probe): boolean {
    const n = this.notes.get(`${w.kind}/${w.name}`);
    if (n?.stopping) return true; // the service said it is going down: not a hang
    return Date.now() - Math.max(n?.watchdogAt ?? 0, w.startedAt) <= (n?.watchdogMs ?? probe.timeoutMs);
  }

  /**
   * Policy markGoodAfterMs: once every probe passed for that long since the last start (or
   * recovery), marks good the newest snapshot taken before that start (a driver call under the
   * container's lock, journaled `snapshot-marked-good` with cause supervisor), once per start.
   */
  private async markGoodWhenDue(w: Watch): Promise<void> {
    const after = w.policy.markGoodAfterMs;
    if (!after || w.healthySince === undefined || w.markedFor === w.startedAt) return;
    if (Date.now() - Math.max(w.healthySince, w.startedAt) < after) return;
    const run = w.startedAt;
    w.markedFor = run;
    const d = this.driver(w.kind);
    try {
      const older = (await d.snapshotDetails(w.name)).filter((s) => s.created !== null && Date.parse(s.created) < run);
      const newest = older.sort((a, b) => Date.parse(b.created!) - Date.parse(a.created!))[0];
      if (!newest || readSupervision(w.kind, w.name).good.at(-1) === newest.tag) return;
      await withCause(SUPERVISOR, () => d.markGood(w.name, newest.tag));
      this.setHealth(w, w.health.state, w.health.reason, { markedGood: { tag: newest.tag, at: new Date().toISOString() } });
    } catch (e) {
      if (w.markedFor === run) w.markedFor = undefined; // busy (a user's operation): the next passing probe tries again
      process.stderr.write(`dred: supervisor: mark a snapshot of ${w.name} good: ${(e as Error).message}\n`);
    }
  }

  /** What a probe of the container runs and how it is shown in events; null while a network probe has no address to go to. */
  private probeTarget(w: Watch, probe: Probe): { passes: () => Promise<boolean>; shown: string } | null {
    const d = this.driver(w.kind);
    if (probe.type === 'heartbeat') return { passes: async () => this.heartbeatFresh(w, probe), shown: `heartbeat within ${probe.timeoutMs} ms` };
    if (probe.type === 'exec') {
      const command = probe.command!;
      return { passes: () => execPasses(d, w.name, command, probe.timeoutMs), shown: `exec ${command}` };
    }
    // The address is the container's for its whole life (leased at create): read once per watch.
    const address = (w.address ??= (d.info(w.name) as { address?: string | null }).address ?? null);
    if (!address) return null;
    return { passes: () => probePasses(probe, address), shown: `${probe.type} ${address}:${probe.port}${probe.path ?? ''}` };
  }

  /** Brings the container back as its policy says, or leaves it stopped and `failed` past the limit. */
  private async recover(w: Watch, trigger: 'unhealthy' | 'exit', redo = false): Promise<void> {
    if (w.recovering || this.stopped) return;
    const action = redo && w.health.last ? w.health.last.action : trigger === 'exit' ? w.policy.onExit : w.policy.onUnhealthy;
    if (action === 'none') {
      this.setHealth(w, trigger === 'exit' ? 'stopped' : 'unhealthy', trigger === 'exit' ? 'exited without a stop' : 'the probe fails');
      return;
    }
    const now = Date.now();
    const earlier = w.health.recoveries.filter((t) => t > now - w.policy.windowMs);
    if (!redo && earlier.length >= w.policy.max) return this.giveUp(w, trigger, earlier.length);
    w.recovering = true;
    const generation = w.generation;
    const startedAt = new Date().toISOString();
    this.setHealth(w, 'recovering', null, {
      recoveries: redo ? earlier : [...earlier, now],
      last: { trigger, action, startedAt, ms: null, result: 'running' },
    });
    this.event(w, 'recovering', { trigger, action, attempt: earlier.length + (redo ? 0 : 1), redo });
    try {
      await sleep(redo ? 0 : backoffMs(earlier.length));
      const t0 = performance.now();
      await withCause(SUPERVISOR, () => this.perform(w, action, generation));
      const ms = Math.round(performance.now() - t0);
      w.failures = 0;
      w.startedAt = Date.now();
      w.healthySince = undefined;
      this.setHealth(w, 'starting', null, { last: { trigger, action, startedAt, ms, result: 'recovered' } });
      this.event(w, 'recovered', { trigger, action, ms });
    } catch (e) {
      if (e instanceof Cancelled) return this.setHealth(w, 'stopped', 'stopped by the user during a recovery');
      const error = isDreError(e) ? e.toString() : String(e);
      this.setHealth(w, 'unhealthy', error, { last: { trigger, action, startedAt, ms: null, result: 'failed', error } });
      this.event(w, 'recovery-failed', { trigger, action, error });
      // Not running after a failed recovery: try again (the limit ends it); running: the probe decides.
      if (this.driver(w.kind).enginePid(w.name) === undefined) setImmediate(() => void this.recover(w, trigger));
    } finally {
      w.recovering = false;
    }
  }

  /** The steps of an action, each a driver call under the container's lock; a user's stop between them ends the recovery. */
  private async perform(w: Watch, action: Action, generation: number): Promise<void> {
    const d = this.driver(w.kind);
    const step = async (fn: () => Promise<void>) => {
      this.hub.readJournal(); // a user's stop made just now must be seen before the next step
      if (w.generation !== generation) throw new Cancelled();
      await fn();
    };
    const [verb, tag] = action.split(/:(.*)/s);
    if (verb === 'restart-from') return step(() => d.restart(w.name, tag));
    if (d.enginePid(w.name) !== undefined) await step(() => d.stop(w.name, { timeoutMs: 0 }));
    if (verb === 'rollback') {
      const target = tag === 'last-good' ? lastGood(readSupervision(w.kind, w.name).good, await d.listSnapshots(w.name)) : tag;
      if (target === undefined) throw new Error('rollback:last-good: no snapshot is marked good (dre-app snapshot NAME TAG --good)');
      await step(() => d.loadSnapshot(w.name, target));
    }
    await step(() => d.start(w.name));
  }

  private async giveUp(w: Watch, trigger: string, count: number): Promise<void> {
    const reason = `${count} recoveries in ${Math.round(w.policy.windowMs / 1000)} s (the limit); last trigger: ${trigger === 'exit' ? 'exited without a stop' : 'the probe fails'}`;
    w.recovering = true;
    try {
      if (this.driver(w.kind).enginePid(w.name) !== undefined) await withCause(SUPERVISOR, () => this.driver(w.kind).stop(w.name, { timeoutMs: 0 }));
    } catch (e) {
      process.stderr.write(`dred: supervisor: stop ${w.name} after giving up: ${(e as Error).message}\n`);
    } finally {
      w.recovering = false;
    }
    this.setHealth(w, 'failed', reason);
    this.event(w, 'gave-up', { reason });
  }

  private async autostart(w: Watch): Promise<void> {
    try {
      await withCause(SUPERVISOR, () => this.driver(w.kind).start(w.name));
      w.startedAt = Date.now();
      w.healthySince = undefined;
      this.setHealth(w, 'starting', null);
    } catch (e) {
      process.stderr.write(`dred: autostart ${w.kind} ${w.name}: ${(e as Error).message}\n`);
    }
  }

  private setHealth(w: Watch, state: Health['state'], reason: string | null, more: Partial<Health> = {}): void {
    const n = this.notes.get(`${w.kind}/${w.name}`);
    const notify = { notify: n ? { ready: n.ready, status: n.status, stopping: n.stopping } : undefined };
    w.health = { ...w.health, ...notify, ...more, state, reason, since: state === w.health.state ? w.health.since : new Date().toISOString() };
    writeHealth(w.kind, w.name, w.health);
  }

  private event(w: Watch, type: EventType, detail: Record<string, unknown>): void {
    record(w.kind, w.name, type, { cause: SUPERVISOR, ...detail });
  }
}

/** The last start, stop or death the journal holds for each container ("kind/name"). */
function lastLifeEvents(): Map<string, JournalEvent> {
  const life = new Set<string>(['started', 'restarted', 'stopped', 'died', 'destroyed', 'created', 'fenced']);
  const out = new Map<string, JournalEvent>();
  for (const e of readJournal()) if (life.has(e.type)) out.set(`${e.kind}/${e.name}`, e);
  return out;
}

const fresh = (state: Health['state'], reason: string | null): Health => ({ state, since: new Date().toISOString(), reason, recoveries: [], last: null });

/** Marks the run dir (a tmpfs, wiped at boot) as taken up by a supervisor: autostart happens once per boot. */
function markTakenUp(): void {
  mkdirSync(join(runRoot(), 'supervisor'), { recursive: true, mode: 0o700 });
  writeFileSync(join(runRoot(), 'supervisor', 'booted'), `${new Date().toISOString()}\n`);
}

/**
 * An exec probe: `/bin/sh -c COMMAND` inside the container, passing when it exits 0 within `timeoutMs`.
 * On a timeout the driver kills its lxc-attach (or the agent's wait ends); a container that is not
 * running, or that another operation holds, fails the probe here and the caller's status check
 * keeps that from counting.
 */
async function execPasses(d: Supervised, name: string, command: string, timeoutMs: number): Promise<boolean> {
  try {
    return (await d.execCapture(name, ['/bin/sh', '-c', command], timeoutMs)).status === 0;
  } catch {
    return false;
  }
}

/** One probe: a TCP connect, or an HTTP GET answered with a status below 400, within the timeout. */
export function probePasses(p: Probe, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      sock?.destroy();
      req?.destroy();
      resolve(false);
    }, p.timeoutMs);
    let sock: ReturnType<typeof connect> | undefined;
    let req: ReturnType<typeof request> | undefined;
    if (p.type === 'tcp') {
      sock = connect({ host, port: p.port! }, () => {
        sock!.destroy();
        done(true);
      });
      sock.on('error', () => done(false));
    } else {
      req = request({ host, port: p.port!, path: p.path ?? '/', method: 'GET', agent: false }, (res) => {
        res.resume();
        done((res.statusCode ?? 500) < 400);
      });
      req.on('error', () => done(false));
      req.end();
    }
  });
}

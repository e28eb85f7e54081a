/** Command builders shared by the CLIs (see framework.ts for the shape of a command): one container, container + tag, listings, resource words. */
import {
  RESOURCE,
  statusName,
  type Cgroups,
  type Configurable,
  type Lifecycle,
  type Resource,
  type ResourceType,
  type Settings,
  type Snapshots,
} from '../core/driver.js';
import type { Usage } from '../core/controlgroups.js';
import { readUntrustedFile } from '../core/store.js';
import { lstatSync } from 'node:fs';
import { dreError } from '../core/errors.js';
import { intArg } from './common.js';
import { oneOf, type CommandSpec } from './framework.js';
import type { Kind } from '../core/paths.js';
import type { Health, supervisionOps } from '../core/supervision.js';

export const one = (args: string, summary: string, name: string, fn: (n: string) => Promise<void>): CommandSpec => ({
  name,
  args,
  summary,
  run: async ([n]) => fn(n),
});

export const tagged = (name: string, summary: string, fn: (n: string, tag: string) => Promise<void>): CommandSpec => ({
  name,
  args: 'NAME TAG',
  summary,
  run: async ([n, tag]) => fn(n, tag),
});

export const listing = (name: string, args: string, summary: string, fn: (args: string[]) => Promise<string[]>): CommandSpec => ({
  name,
  args,
  summary,
  output: true,
  run: async (a, _, out) => out.print(await fn(a), { key: (r) => r }),
});

const RESOURCE_NAMES: Record<string, ResourceType> = { cpu: RESOURCE.CPU, cores: RESOURCE.CPU_CORE, memory: RESOURCE.MEMORY, memsw: RESOURCE.MEMSW };

export function resourceType(word: string | undefined): ResourceType {
  const t = word === undefined ? undefined : RESOURCE_NAMES[word];
  if (t === undefined)
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `resource must be one of ${Object.keys(RESOURCE_NAMES).join(', ')}, not ${JSON.stringify(word)}`);
  return t;
}

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Bytes from "536870912", "512M", "512MiB", "1.5G" (binary units, as cgroups and `lxc.cgroup.memory.limit_in_bytes` read them). */
export function bytesArg(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be a size in bytes, optionally with K, M, G or T (e.g. 512M), not ${JSON.stringify(text)}`);
  const bytes = Number(m[1]) * UNITS[m[2].toUpperCase()];
  if (!Number.isSafeInteger(Math.floor(bytes))) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is too large`);
  return Math.floor(bytes);
}

export function resource(word: string, value: string | undefined): Resource {
  const type = resourceType(word);
  if (type === RESOURCE.CPU_CORE) return { type, cores: value };
  return type === RESOURCE.CPU ? { type, percent: intArg(value, word) } : { type, bytes: bytesArg(value, word) };
}

export const pidOf = (text: string, what = 'pid') => intArg(text, what)!;

/** Every method of `T`, resolving after `T` is loaded. */
export type Lazy<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never };

/**
 * A module (or driver) loaded on first use: a CLI run loads only what its command needs, so
 * `status` pays for the state module and the core, not for every driver module.
 */
export function lazy<T extends object>(load: () => Promise<T>): Lazy<T> {
  let loaded: Promise<T> | undefined;
  return new Proxy({} as Lazy<T>, {
    get:
      (_, key) =>
      async (...args: unknown[]) => {
        const target = await (loaded ??= load());
        return (target[key as keyof T] as (...a: unknown[]) => unknown)(...args);
      },
  });
}

type Ops<K extends keyof Lifecycle<unknown>> = Lazy<Pick<Lifecycle<unknown>, K>>;

/** `stop NAME [--timeout SECONDS]`. */
export const stopCommand = (d: Ops<'stop'>, summary: string): CommandSpec => ({
  name: 'stop',
  args: 'NAME',
  summary,
  options: { '--timeout SECONDS': 'force the stop after SECONDS (default 10)' },
  run: async ([n], o) => {
    const t = intArg(o.timeout as string | undefined, '--timeout');
    await d.stop(n, t === undefined ? {} : { timeoutMs: t * 1000 });
  },
});

/** `destroy NAME [--force]`: with --force a running or suspended container is stopped (forced) first. */
export const destroyCommand = (d: Ops<'stop' | 'destroy' | 'status'>): CommandSpec => ({
  name: 'destroy',
  args: 'NAME',
  summary: 'destroy a stopped container and everything it holds; --force stops it first',
  options: { '--force': 'stop a running or suspended container first (no grace period)' },
  run: async ([n], o) => {
    if (o.force && statusName(await d.status(n)) !== 'STOP') await d.stop(n, { timeoutMs: 0 });
    await d.destroy(n);
  },
});

/** `start NAME [--wait-ready [--ready-timeout MS]]`: with --wait-ready, returns once dred says the container is ready. */
const startCommand = (d: Ops<'start'>, kind: Kind, summary: string): CommandSpec => ({
  name: 'start',
  args: 'NAME',
  summary: `${summary}; --wait-ready: return once it is ready (its first passing probe${kind === 'app' ? ', or READY=1 on its NOTIFY_SOCKET' : ''}; needs dred)`,
  options: {
    '--wait-ready': 'wait until the container is ready',
    '--ready-timeout MS': 'give up waiting after MS (default 30000; the container keeps running)',
  },
  run: async ([n], o) => {
    if (!o['wait-ready']) {
      if (o['ready-timeout'] !== undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', '--ready-timeout goes with --wait-ready');
      return d.start(n);
    }
    const { startWhenReady, streamSubscribe } = await import('../daemon/readiness.js'); // only --wait-ready pays for it
    const r = await startWhenReady(kind, n, () => d.start(n), streamSubscribe, intArg(o['ready-timeout'] as string | undefined, '--ready-timeout'));
    process.stderr.write(`${n}: ready in ${r.ms} ms (${r.via === 'notify' ? 'READY=1' : 'first passing probe'})\n`);
  },
});

/** destroy, start, stop, suspend, resume, status and pid: the same words for both kinds; `texts` says what each does to this kind. */
export const lifecycleCommands = (
  d: Ops<'destroy' | 'start' | 'stop' | 'suspend' | 'resume' | 'status'>,
  state: Ops<'status' | 'pid'>,
  kind: Kind,
  texts: { start: string; stop: string; suspend: string; resume: string; pid: string },
): CommandSpec[] => [
  destroyCommand(d),
  startCommand(d, kind, texts.start),
  stopCommand(d, texts.stop),
  one('NAME', texts.suspend, 'suspend', d.suspend),
  one('NAME', texts.resume, 'resume', d.resume),
  ...stateCommands(state, kind, texts.pid),
];

/** One line on the supervisor's view of a container, e.g. "health: healthy; last recovery: rollback:good (exit) recovered in 412 ms". */
function healthLine(h: Health): string {
  const last = h.last
    ? `; last recovery: ${h.last.action} (${h.last.trigger}) ${h.last.result}${h.last.ms === null ? '' : ` in ${h.last.ms} ms`} at ${h.last.startedAt}`
    : '';
  const marked = h.markedGood ? `\nmarked good: ${h.markedGood.tag} at ${h.markedGood.at} (healthy long enough)` : '';
  return `health: ${h.state}${h.reason ? ` (${h.reason})` : ''}${last}${marked}`;
}

/** `status NAME` (with the supervisor's health when the container has a policy) and `pid NAME`. */
export const stateCommands = (d: Ops<'status' | 'pid'>, kind: Kind, pidSummary: string): CommandSpec[] => [
  {
    name: 'status',
    args: 'NAME',
    summary: "print STOP, RUNNING, SUSPENDED or BUSY, and the supervisor's health of a supervised container",
    output: true,
    run: async ([n], _, out) => {
      const s = statusName(await d.status(n));
      const { readHealth } = await import('../core/supervision.js'); // loaded by status alone: no other command's start-up pays for it
      const health = readHealth(kind, n);
      await out.print(
        { name: n, status: s, ...(health ? { health } : {}) },
        { key: (r) => r.status, text: () => `${s}\n${health ? `${healthLine(health)}\n` : ''}` },
      );
    },
  },
  {
    name: 'pid',
    args: 'NAME',
    summary: pidSummary,
    output: true,
    run: async ([n], _, out) => {
      const pid = await d.pid(n);
      await out.print({ name: n, pid }, { key: (r) => r.pid, text: () => `${pid}\n` });
    },
  },
];

/**
 * `exec NAME [--dre-status] [--] CMD [ARGS...]`: by default the command's exit status becomes the CLI's
 * (D-RE's own failures also print their `PROG: DRE_ERR_X:` line on stderr). With --dre-status the exit
 * status is D-RE's alone (0: the command ran, whatever its status; else |DRE_ERR code|) and the
 * command's status is the last line on stderr, `PROG: exec: status N`.
 */
/** All of this process's stdin (a system container's exec sends it to the guest whole). */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `exec`; with `stdin`, the command gets this process's stdin unless that is a terminal. */
export const execCommand = (
  d: Lazy<{ exec(name: string, argv: string[], stdin?: Buffer): Promise<number> }>,
  prog: string,
  summary: string,
  stdin = false,
): CommandSpec => ({
  name: 'exec',
  args: 'NAME CMD...',
  summary,
  options: { '--dre-status': "exit with D-RE's status only (0 once the command ran); the command's status goes to stderr as 'PROG: exec: status N'" },
  run: async ([n, ...argv], o) => {
    const status = stdin && !process.stdin.isTTY ? await d.exec(n, argv, await readStdin()) : await d.exec(n, argv);
    if (!o['dre-status']) return status;
    process.stderr.write(`${prog}: exec: status ${status}\n`);
    return 0;
  },
});

/** Snapshots, Base Images and checkpoints, the same words for both kinds; `what` fills in the summaries. */
export const snapshotCommands = (
  d: Lazy<Snapshots & Pick<SupervisionOps, 'markGood'>>,
  what: { snapshot: string; load: string; commit: string; checkpoint: string; restart: string },
): CommandSpec[] => [
  {
    name: 'snapshot',
    args: 'NAME TAG',
    summary: `${what.snapshot}; --good marks it the target of rollback:last-good`,
    options: { '--good': 'mark it good (the target of rollback:last-good)' },
    run: async ([n, tag], o) => {
      await d.saveSnapshot(n, tag);
      if (o.good) await d.markGood(n, tag);
    },
  },
  tagged('mark-good', 'mark a snapshot good: the target of rollback:last-good', d.markGood),
  tagged('load', what.load, d.loadSnapshot),
  tagged('rm-snapshot', 'remove a snapshot', d.removeSnapshot),
  listing('snapshots', 'NAME', 'list the snapshots of a container', ([n]) => d.listSnapshots(n)),
  { name: 'commit', args: 'NAME TAG BASE', summary: what.commit, run: async ([n, tag, base]) => d.commitSnapshot(n, tag, base) },
  listing('bases', '', 'list the Base Images', () => d.listBases()),
  one('BASE', 'remove a Base Image no container uses', 'rm-base', d.removeBase),
  tagged('checkpoint', what.checkpoint, d.checkpoint),
  tagged('restart', what.restart, d.restart),
  tagged('rm-checkpoint', 'remove a checkpoint', d.removeCheckpoint),
  listing('checkpoints', 'NAME', 'list the checkpoints of a container', ([n]) => d.listCheckpoints(n)),
];

type SupervisionOps = ReturnType<typeof supervisionOps>;

const POLICY_FLAGS = {
  '--probe PROBE':
    "tcp:PORT, http:PORT/PATH, exec:'CMD ...' (run by sh -c inside the container, healthy on status 0) or heartbeat[:MS] (WATCHDOG=1 on NOTIFY_SOCKET within MS, or --timeout)",
  '--interval MS': 'probe every MS',
  '--timeout MS': 'each probe within MS',
  '--retries N': 'N failures in a row make it unhealthy',
  '--start-period MS': 'failures in the first MS after a start do not count',
  '--on-unhealthy ACTION': 'what to do when unhealthy',
  '--on-exit ACTION': 'what to do when the engine process is gone without a stop',
  '--max N': 'at most N recoveries in the window',
  '--window SECONDS': 'the window of --max',
  '--autostart': 'start it when the first daemon after a boot starts',
  '--failover': 'shared system containers in a cluster: start it on another healthy host when its host is lost',
  '--mark-good-after DURATION': 'once healthy for DURATION (e.g. 30s, 5m, 1500ms) after a start, mark the newest snapshot older than the start good',
  '--clear': 'remove the policy',
};

/** `policy NAME [flags]`: sets the recovery policy the supervisor of dred follows; with no flag, prints it. */
export const policyCommand = (d: Lazy<SupervisionOps>, actions: string): CommandSpec => ({
  name: 'policy',
  args: 'NAME',
  summary: `recovery policy (dred's supervisor acts on it); ACTION: ${actions}; with no flag, print it`,
  options: POLICY_FLAGS,
  output: true,
  run: async ([n], v, out) => {
    const setting = Object.keys(POLICY_FLAGS).some((f) => v[f.split(' ')[0].slice(2)] !== undefined);
    if (!setting) {
      const s = await d.supervision(n);
      await out.print(s, {
        key: () => n,
        text: () => `${JSON.stringify(s.policy)}\ngood snapshots: ${s.good.join(' ') || '-'}\n${s.health ? healthLine(s.health) : 'health: unsupervised'}\n`,
      });
      return;
    }
    if (v.clear) return d.setPolicy(n, null);
    const probe = v.probe === undefined ? null : probeArg(v.probe as string);
    const ms = (flag: string, key: string) => (v[flag] === undefined ? {} : { [key]: intArg(v[flag] as string, `--${flag}`) });
    await d.setPolicy(n, {
      probe: probe && {
        ...probe,
        ...ms('interval', 'intervalMs'),
        ...ms('timeout', 'timeoutMs'),
        ...ms('retries', 'retries'),
        ...ms('start-period', 'startPeriodMs'),
      },
      ...(v['on-unhealthy'] === undefined ? {} : { onUnhealthy: v['on-unhealthy'] }),
      ...(v['on-exit'] === undefined ? {} : { onExit: v['on-exit'] }),
      ...ms('max', 'max'),
      ...(v.window === undefined ? {} : { windowMs: intArg(v.window as string, '--window')! * 1000 }),
      autostart: v.autostart === true,
      ...(v.failover === true ? { failover: true } : {}),
      ...(v['mark-good-after'] === undefined ? {} : { markGoodAfterMs: durationArg(v['mark-good-after'] as string, '--mark-good-after') }),
    } as Parameters<SupervisionOps['setPolicy']>[1]);
  },
});

/** A duration as `1500ms`, `30s`, `5m`, `2h` (a bare number: seconds), in ms. */
function durationArg(text: string, what: string): number {
  const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(text);
  if (!m) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)}: give a duration such as 1500ms, 30s, 5m or 2h`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
}

/** `tcp:PORT`, `http:PORT/PATH`, `exec:CMD ...` or `heartbeat[:MS]` as a probe. */
function probeArg(text: string): { type: 'tcp' | 'http' | 'exec' | 'heartbeat'; port?: number; path?: string; command?: string; timeoutMs?: number } {
  if (text.startsWith('exec:')) return { type: 'exec', command: text.slice('exec:'.length) };
  const hb = /^(?:heartbeat|watchdog)(?::(.*))?$/.exec(text);
  if (hb) return { type: 'heartbeat', ...(hb[1] === undefined ? {} : { timeoutMs: intArg(hb[1], '--probe heartbeat:MS') }) };
  const m = /^(tcp|http):(\d{1,5})(\/.*)?$/.exec(text);
  if (!m || (m[1] === 'tcp' && m[3]))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `--probe ${JSON.stringify(text)}: give tcp:PORT, http:PORT/PATH, exec:'CMD ...' or heartbeat[:MS]`);
  return m[1] === 'tcp' ? { type: 'tcp', port: Number(m[2]) } : { type: 'http', port: Number(m[2]), path: m[3] ?? '/' };
}

/** PIDs as seen inside the container, for drivers that can translate them (application containers). */
export interface VpidOps {
  bindVpid(name: string, cgroup: string, vpid: number): Promise<void>;
  unbindVpid(name: string, cgroup: string, vpid: number): Promise<void>;
}

/** Control Groups and limits, the same words for both kinds; with `vpid`, bind and unbind take --vpid. */
export function cgroupCommands(d: Lazy<Cgroups>, texts: { create: string; bind: string }, vpid?: VpidOps): CommandSpec[] {
  const moving = (
    name: string,
    summary: string,
    host: (n: string, cg: string, pid: number) => Promise<void>,
    inside?: (n: string, cg: string, vpid: number) => Promise<void>,
  ): CommandSpec => ({
    name,
    args: 'NAME CGROUP PID',
    summary,
    options: inside ? { '--vpid': 'PID is as seen inside the container' } : {},
    run: async ([n, cg, p], o) => (o.vpid && inside ? inside(n, cg, pidOf(p, 'vpid')) : host(n, cg, pidOf(p))),
  });
  return [
    { name: 'cgroup-create', args: 'NAME CGROUP', summary: texts.create, run: async ([n, cg]) => d.createCgroup(n, cg) },
    {
      name: 'cgroup-destroy',
      args: 'NAME CGROUP',
      summary: 'remove a control group (its processes go back to the container)',
      run: async ([n, cg]) => d.destroyCgroup(n, cg),
    },
    moving('bind', texts.bind, d.bindPid, vpid?.bindVpid),
    moving('unbind', "move a process back into the container's own group", d.unbindPid, vpid?.unbindVpid),
    {
      name: 'limit',
      args: 'NAME CGROUP|RESOURCE RESOURCE|VALUE [VALUE]',
      summary:
        'set a limit on the container itself (limit NAME RESOURCE VALUE) or on one of its control groups (limit NAME CGROUP RESOURCE VALUE): ' +
        'cpu PERCENT, cores LIST (e.g. 0-1), memory SIZE, memsw SIZE (bytes, or with K, M, G: 512M)',
      run: async ([n, a, b, c]) => (c === undefined ? d.setLimit(n, resource(a, b)) : d.setResource(n, a, resource(b, c))),
    },
    {
      name: 'unlimit',
      args: 'NAME CGROUP|RESOURCE [RESOURCE]',
      summary:
        'lift a limit of the container itself (unlimit NAME RESOURCE) or of a control group (unlimit NAME CGROUP RESOURCE); RESOURCE: cpu, cores, memory, memsw',
      run: async ([n, a, b]) => (b === undefined ? d.unsetLimit(n, { type: resourceType(a) }) : d.unsetResource(n, a, { type: resourceType(b) })),
    },
    {
      name: 'usage',
      args: 'NAME PID RESOURCE',
      summary: 'print the usage of the group holding PID (RESOURCE: cpu, cores, memory, memsw)',
      output: true,
      run: async ([n, p, r], _, out) => {
        const u = await d.getResource(n, pidOf(p), resourceType(r));
        await out.print(u, { key: (x) => x.percent ?? x.cores ?? x.bytes, text: (x) => `${x.percent ?? x.cores ?? x.bytes}\n` });
      },
    },
  ];
}

const mib = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? '-' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const pct = (p: number | null | undefined) => (p === null || p === undefined ? '-' : `${p}%`);

type InfoOps = Ops<'status' | 'pid'> & Lazy<Pick<Snapshots, 'snapshotDetails'> & Pick<Cgroups, 'limits' | 'usage'>>;

/**
 * `info NAME`: everything about one container from the driver's own calls: state, PID, what its record
 * says (`record`: base, address, port or memory), snapshots with dates and sizes, limits and usage
 * while it runs, and the supervisor's health when it has a policy.
 */
export const infoCommand = (d: InfoOps, kind: Kind, record: (name: string) => Promise<object>): CommandSpec => ({
  name: 'info',
  args: 'NAME',
  summary: 'print everything about a container: state, PID, base, address, snapshots (dates, sizes), limits, usage, health',
  output: true,
  run: async ([n], _, out) => {
    const status = statusName(await d.status(n));
    const live = status === 'RUNNING' || status === 'SUSPENDED';
    const { readHealth } = await import('../core/supervision.js');
    const [pid, rec, snapshots, limits, usage] = await Promise.all([
      live ? d.pid(n) : null,
      record(n),
      d.snapshotDetails(n),
      live ? d.limits(n) : null,
      live ? d.usage(n) : null,
    ]);
    const info = { name: n, kind, status, pid, ...rec, snapshots, limits, usage, health: readHealth(kind, n) ?? null };
    const text = () =>
      [
        `Name: ${n}`,
        `Status: ${status}${pid === null ? '' : ` (PID ${pid})`}`,
        ...Object.entries(rec).map(([k, v]) => `${k[0].toUpperCase()}${k.slice(1)}: ${v ?? '-'}`),
        `Snapshots:${snapshots.length ? '' : ' -'}`,
        ...snapshots.map((x) => `  ${x.tag}  ${x.created ?? '-'}  ${x.bytes === null ? '-' : mib(x.bytes)}`),
        `Limits: ${limits ? `cpu ${pct(limits.cpuPercent)}, cores ${limits.cores ?? '-'}, memory ${limits.memory === null ? 'none' : mib(limits.memory)}, memsw ${limits.memsw === null ? 'none' : mib(limits.memsw)}` : '- (not running)'}`,
        `Usage: ${usage ? `cpu ${pct(usage.cpuPercent)}, memory ${mib(usage.memory)}` : '- (not running)'}`,
        `Health: ${info.health ? healthLine(info.health).slice('health: '.length) : 'unsupervised'}`,
        '',
      ].join('\n');
    await out.print(info, { key: (i) => i.name, text });
  },
});

/** `top [--once]`: CPU and memory of every running container by name, sampled together; again every 2 s until Ctrl-C. */
export const topCommand = (d: Ops<'list' | 'status'> & Lazy<Pick<Cgroups, 'usage'>>): CommandSpec => ({
  name: 'top',
  summary: 'live CPU and memory of every running container, by name (--once: one sample, for scripts)',
  options: { '--once': 'print one sample and exit', '--interval SECONDS': 'seconds between samples (default 2)' },
  output: true,
  run: async (_, o, out) => {
    const every = intArg(o.interval, '--interval') ?? 2;
    if (every < 1) throw dreError('DRE_ERR_INVALID_ARGUMENT', '--interval must be at least 1 second');
    const sample = async () => {
      const names = await d.list();
      const rows = await Promise.all(
        names.map(async (name) => {
          const s = statusName(await d.status(name));
          if (s !== 'RUNNING' && s !== 'SUSPENDED') return undefined;
          const u: Usage | null = await d.usage(name).catch(() => null); // stopped meanwhile
          return u && { name, status: s, cpuPercent: u.cpuPercent, memory: u.memory };
        }),
      );
      return rows.filter((r) => r !== undefined && r !== null);
    };
    const view = {
      columns: [
        ['NAME', (r) => r.name],
        ['STATUS', (r) => r.status],
        ['CPU', (r) => pct(r.cpuPercent)],
        ['MEMORY', (r) => mib(r.memory)],
      ],
    } satisfies Parameters<typeof out.print<{ name: string; status: string; cpuPercent: number | null; memory: number | null }>>[1];
    if (o.once || !process.stdout.isTTY || out.format !== 'table') return out.print(await sample(), view);
    for (;;) {
      const rows = await sample();
      process.stdout.write('\x1b[H\x1b[2J'); // home and clear, as top does
      await out.print(rows, view);
      await new Promise((r) => setTimeout(r, every * 1000));
    }
  },
});

const LOG_TAIL_BYTES = 1 << 20;

/**
 * `logs NAME [-f] [--source S]`: the container's host logs (console; LXC's log of this run and the one
 * before, or QEMU's) and, for application containers, the syslog inside it; -f keeps printing what is
 * added. The files are read as untrusted (never through a link: QEMU owns its run dir).
 */
export const logsCommand = (d: Ops<'logFiles' | 'status' | 'exec'>, inside?: { source: string; path: string }): CommandSpec => ({
  name: 'logs',
  args: 'NAME',
  summary: `print a container's logs: console, ${inside ? "LXC's log (lxc.1: the run before, with its stop), and the syslog inside it" : "QEMU's log"}; -f follows them`,
  options: {
    '-f, --follow': 'keep printing what is added (Ctrl-C ends)',
    '--source SOURCE': `only one: ${inside ? 'console, lxc.1, lxc, syslog' : 'console, qemu'}`,
  },
  run: async ([n], o) => {
    const files = await d.logFiles(n);
    const sources = [...files.map((f) => f.source), ...(inside ? [inside.source] : [])];
    const only = o.source === undefined ? undefined : oneOf(o.source as string, sources, '--source');
    const running = inside && (only === undefined || only === inside.source) && statusName(await d.status(n)) === 'RUNNING';
    // The syslog alone: exactly what is inside, and the exit status of reading it (as before).
    if (only === inside?.source && inside) return d.exec(n, o.follow ? ['tail', '-n', '+1', '-f', inside.path] : ['cat', inside.path]);
    const chosen = files.filter((f) => only === undefined || f.source === only);
    const many = chosen.length + (running ? 1 : 0) > 1;
    const offsets = new Map<string, number>();
    for (const f of chosen) {
      const text = readUntrustedFile(f.path, LOG_TAIL_BYTES, -LOG_TAIL_BYTES);
      offsets.set(f.path, text === undefined ? 0 : (statSize(f.path) ?? 0));
      if (text === undefined) continue;
      if (many) process.stdout.write(`==> ${f.source} (${f.path}) <==\n`);
      process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
    }
    if (running && inside) {
      if (many) process.stdout.write(`==> ${inside.source} (${inside.path} in the container) <==\n`);
      await d.exec(n, ['cat', inside.path]);
    }
    if (!o.follow) return;
    if (running && inside) void d.exec(n, ['tail', '-n', '0', '-f', inside.path]);
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      for (const f of chosen) {
        const at = offsets.get(f.path) ?? 0;
        const size = statSize(f.path);
        if (size === undefined || size === at) continue;
        const from = size < at ? 0 : at; // rotated or truncated: from its start
        const added = readUntrustedFile(f.path, LOG_TAIL_BYTES, from) ?? '';
        offsets.set(f.path, from + Buffer.byteLength(added));
        if (added) process.stdout.write(many ? `==> ${f.source} <==\n${added}` : added);
      }
    }
  },
});

function statSize(path: string): number | undefined {
  try {
    return lstatSync(path).size;
  } catch {
    return undefined;
  }
}

/**
 * `events [NAME]` (and `monitor`): the daemon's event stream, this kind's events (and operations), one
 * line each, as they come: `TIME NAME TYPE details`, or one JSON object a line with --format json.
 */
export const eventsCommands = (kind: Kind): CommandSpec[] =>
  ['events', 'monitor'].map((name): CommandSpec => ({
    name,
    args: '[NAME]',
    summary: `stream what happens to the containers (from dred's /1.0/events; needs a running dred)${name === 'monitor' ? ': the same as events' : ''}`,
    options: { '--type TYPE': 'only events of this type (started, stopped, died, snapshot-saved, ...)', '--count N': 'exit after N events' },
    output: true,
    run: async ([only], o, out) => {
      const { watchEvents } = await import('../daemon/client.js');
      const count = intArg(o.count, '--count');
      let seen = 0;
      await watchEvents((e) => {
        // Operations (long work's progress) carry no container: only the container events of this kind.
        if (!('kind' in e) || e.kind !== kind || (only !== undefined && e.name !== only) || (o.type !== undefined && e.type !== o.type)) return;
        const { time, kind: _, name: n, type, pid: __, ...detail } = e;
        if (out.quiet) process.stdout.write(`${n} ${type}\n`);
        else if (out.format === 'table') process.stdout.write(`${time}  ${n}  ${type}${Object.keys(detail).length ? `  ${JSON.stringify(detail)}` : ''}\n`);
        else process.stdout.write(`${JSON.stringify(e)}\n`); // json lines, whatever the format asked: a stream has no end to close a document
        return count === undefined || ++seen < count;
      });
    },
  }));

const SETTING_KEYS = ['memory', 'cpus', 'port', 'autostart'] as const;

/** A `config set` value as the driver takes it: sizes with units, "none" lifts a limit, true/false. */
function settingValue(key: (typeof SETTING_KEYS)[number], text: string): Partial<Settings> {
  if (key === 'autostart') return { autostart: oneOf(text, ['true', 'false'], 'autostart') === 'true' };
  if (text === 'none') return { [key]: null };
  return { [key]: key === 'memory' ? bytesArg(text, 'memory') : intArg(text, key) };
}

/** `config show NAME` and `config set NAME KEY VALUE` over the driver's settings and configure. */
export const configCommands = (d: Lazy<Configurable>, keys: string): CommandSpec[] => [
  {
    name: 'config show',
    args: 'NAME',
    summary: 'print the settings kept across starts: memory, cpus, port, autostart',
    output: true,
    run: async ([n], _, out) => {
      const s = await d.settings(n);
      await out.print(s, {
        key: () => n,
        text: () => `memory: ${s.memory === null ? 'none' : mib(s.memory)}\ncpus: ${s.cpus ?? 'none'}\nport: ${s.port ?? 'none'}\nautostart: ${s.autostart}\n`,
      });
    },
  },
  {
    name: 'config set',
    args: 'NAME KEY VALUE',
    summary: `change a setting: ${keys}`,
    run: async ([n, key, value]) => d.configure(n, settingValue(oneOf(key, SETTING_KEYS, 'KEY'), value)),
  },
];

/** `rename NAME NEW_NAME` (stopped containers). */
export const renameCommand = (d: Lazy<{ rename(name: string, to: string): Promise<void> }>, summary: string): CommandSpec => ({
  name: 'rename',
  args: 'NAME NEW_NAME',
  summary,
  run: async ([n, to]) => d.rename(n, to),
});

/** What `export` and `import` call, the same for both kinds. */
interface ArchiveOps {
  exportContainer(name: string, file: string, opts?: { compress?: boolean }): Promise<void>;
  importContainer(file: string, newName?: string): Promise<string>;
}

/** `export NAME FILE` and `import FILE [NEWNAME]`; `holds` says what the file carries besides the container. */
export const archiveCommands = (d: Lazy<ArchiveOps>, holds: string): CommandSpec[] => [
  {
    name: 'export',
    args: 'NAME FILE',
    summary: `write a stopped container, ${holds} into one file (docs/export-format.md)`,
    options: { '--zstd': 'compress with zstd (also for a .zst or .tzst FILE)' },
    run: async ([n, file], o) => {
      await d.exportContainer(n, file, { compress: o.zstd ? true : undefined });
    },
  },
  {
    name: 'import',
    args: 'FILE [NEWNAME]',
    summary: 'make a container from an exported file (every member checked against its sha256 first), under its own name or NEWNAME',
    run: async ([file, name]) => {
      process.stdout.write(`${await d.importContainer(file, name)}\n`);
    },
  },
];

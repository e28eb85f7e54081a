/** Subcommand builders shared by the CLIs: one container, container + tag, listings, resource words. */
import { RESOURCE, statusName, type Cgroups, type Lifecycle, type Resource, type ResourceType, type Snapshots } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { intArg, parse, printJson, type Command } from './common.js';
import type { Kind } from '../core/paths.js';
import type { Health, supervisionOps } from '../core/supervision.js';

export const one = (usage: string, summary: string, name: string, fn: (n: string) => Promise<void>): Command => ({
  name,
  usage,
  summary,
  run: async (args) => {
    const { positionals } = parse(args, {}, 1);
    await fn(positionals[0]);
  },
});

export const tagged = (name: string, summary: string, fn: (n: string, tag: string) => Promise<void>): Command => ({
  name,
  usage: 'NAME TAG',
  summary,
  run: async (args) => {
    const { positionals } = parse(args, {}, 2);
    await fn(positionals[0], positionals[1]);
  },
});

export const listing = (name: string, usage: string, summary: string, fn: (args: string[]) => Promise<string[]>): Command => ({
  name,
  usage: `${usage} [--json]`,
  summary,
  run: async (args) => {
    const { values, positionals } = parse(args, {}, usage ? 1 : 0);
    const items = await fn(positionals);
    if (values.json) printJson(items);
    else for (const i of items) process.stdout.write(`${i}\n`);
  },
});

const RESOURCE_NAMES: Record<string, ResourceType> = { cpu: RESOURCE.CPU, cores: RESOURCE.CPU_CORE, memory: RESOURCE.MEMORY, memsw: RESOURCE.MEMSW };

export function resourceType(word: string | undefined): ResourceType {
  const t = word === undefined ? undefined : RESOURCE_NAMES[word];
  if (t === undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', `resource must be one of ${Object.keys(RESOURCE_NAMES).join(', ')}, not ${JSON.stringify(word)}`);
  return t;
}

export function resource(word: string, value: string | undefined): Resource {
  const type = resourceType(word);
  if (type === RESOURCE.CPU_CORE) return { type, cores: value };
  const n = intArg(value, word);
  return type === RESOURCE.CPU ? { type, percent: n } : { type, bytes: n };
}

export const pidOf = (text: string, what = 'pid') => intArg(text, what)!;

/** Splits `NAME [--flags] -- CMD...` into the words before `--` and the command after it. */
export function splitCommand(args: string[]): { before: string[]; argv: string[] } {
  const cut = args.indexOf('--');
  return cut < 0 ? { before: args.slice(0, 1), argv: args.slice(1) } : { before: args.slice(0, cut), argv: args.slice(cut + 1) };
}

/** Every method of `T`, resolving after `T` is loaded. */
export type Lazy<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never };

/**
 * A module (or driver) loaded on first use: a CLI run loads only what its command needs, so
 * `status` pays for the state module and the core, not for every driver module.
 */
export function lazy<T extends object>(load: () => Promise<T>): Lazy<T> {
  let loaded: Promise<T> | undefined;
  return new Proxy({} as Lazy<T>, {
    get: (_, key) => async (...args: unknown[]) => {
      const target = await (loaded ??= load());
      return (target[key as keyof T] as (...a: unknown[]) => unknown)(...args);
    },
  });
}

type Ops<K extends keyof Lifecycle<unknown>> = Lazy<Pick<Lifecycle<unknown>, K>>;

/** `stop NAME [--timeout SECONDS]`. */
export const stopCommand = (d: Ops<'stop'>, summary: string): Command => ({
  name: 'stop',
  usage: 'NAME [--timeout SECONDS]',
  summary,
  run: async (args) => {
    const { values, positionals } = parse(args, { timeout: { type: 'string' } }, 1);
    const t = intArg(values.timeout, '--timeout');
    await d.stop(positionals[0], t === undefined ? {} : { timeoutMs: t * 1000 });
  },
});

/** One line on the supervisor's view of a container, e.g. "health: healthy; last recovery: rollback:good (exit) recovered in 412 ms". */
function healthLine(h: Health): string {
  const last = h.last ? `; last recovery: ${h.last.action} (${h.last.trigger}) ${h.last.result}${h.last.ms === null ? '' : ` in ${h.last.ms} ms`} at ${h.last.startedAt}` : '';
  return `health: ${h.state}${h.reason ? ` (${h.reason})` : ''}${last}`;
}

/** `status NAME [--json]` (with the supervisor's health when the container has a policy) and `pid NAME`. */
export const stateCommands = (d: Ops<'status' | 'pid'>, kind: Kind, pidSummary: string): Command[] => [
  {
    name: 'status',
    usage: 'NAME [--json]',
    summary: "print STOP, RUNNING, SUSPENDED or BUSY, and the supervisor's health of a supervised container",
    run: async (args) => {
      const { values, positionals } = parse(args, {}, 1);
      const s = statusName(await d.status(positionals[0]));
      const { readHealth } = await import('../core/supervision.js'); // loaded by status alone: no other command's start-up pays for it
      const health = readHealth(kind, positionals[0]);
      if (values.json) printJson({ name: positionals[0], status: s, ...(health ? { health } : {}) });
      else process.stdout.write(`${s}\n${health ? `${healthLine(health)}\n` : ''}`);
    },
  },
  {
    name: 'pid',
    usage: 'NAME',
    summary: pidSummary,
    run: async (args) => {
      const { positionals } = parse(args, {}, 1);
      process.stdout.write(`${await d.pid(positionals[0])}\n`);
    },
  },
];

/** `exec NAME -- CMD [ARGS...]`: the command's exit status becomes the CLI's. */
export const execCommand = (d: Ops<'exec'>, summary: string): Command => ({
  name: 'exec',
  usage: 'NAME -- CMD [ARGS...]',
  summary,
  run: async (args) => {
    const { before, argv } = splitCommand(args);
    const { positionals } = parse(before, {}, 1);
    return d.exec(positionals[0], argv);
  },
});

/** Snapshots, Base Images and checkpoints, the same words for both kinds; `what` fills in the summaries. */
export const snapshotCommands = (
  d: Lazy<Snapshots & Pick<SupervisionOps, 'markGood'>>,
  what: { snapshot: string; load: string; commit: string; checkpoint: string; restart: string },
): Command[] => [
  {
    name: 'snapshot',
    usage: 'NAME TAG [--good]',
    summary: `${what.snapshot}; --good marks it the target of rollback:last-good`,
    run: async (args) => {
      const { values, positionals } = parse(args, { good: { type: 'boolean' } }, 2);
      await d.saveSnapshot(positionals[0], positionals[1]);
      if (values.good) await d.markGood(positionals[0], positionals[1]);
    },
  },
  tagged('mark-good', 'mark a snapshot good: the target of rollback:last-good', d.markGood),
  tagged('load', what.load, d.loadSnapshot),
  tagged('rm-snapshot', 'remove a snapshot', d.removeSnapshot),
  listing('snapshots', 'NAME', 'list the snapshots of a container', ([n]) => d.listSnapshots(n)),
  {
    name: 'commit',
    usage: 'NAME TAG BASE',
    summary: what.commit,
    run: async (args) => {
      const { positionals } = parse(args, {}, 3);
      await d.commitSnapshot(positionals[0], positionals[1], positionals[2]);
    },
  },
  listing('bases', '', 'list the Base Images', () => d.listBases()),
  one('BASE', 'remove a Base Image no container uses', 'rm-base', d.removeBase),
  tagged('checkpoint', what.checkpoint, d.checkpoint),
  tagged('restart', what.restart, d.restart),
  tagged('rm-checkpoint', 'remove a checkpoint', d.removeCheckpoint),
  listing('checkpoints', 'NAME', 'list the checkpoints of a container', ([n]) => d.listCheckpoints(n)),
];

type SupervisionOps = ReturnType<typeof supervisionOps>;

/** `policy NAME [flags]`: sets the recovery policy the supervisor of dred follows; with no flag, prints it. */
export const policyCommand = (d: Lazy<SupervisionOps>, actions: string): Command => ({
  name: 'policy',
  usage: 'NAME [--probe tcp:PORT|http:PORT/PATH] [--interval MS] [--timeout MS] [--retries N] [--start-period MS] [--on-unhealthy ACTION] [--on-exit ACTION] [--max N] [--window SECONDS] [--autostart] [--clear] [--json]',
  summary: `recovery policy (dred's supervisor acts on it); ACTION: ${actions}`,
  run: async (args) => {
    const opts = {
      probe: { type: 'string' },
      interval: { type: 'string' },
      timeout: { type: 'string' },
      retries: { type: 'string' },
      'start-period': { type: 'string' },
      'on-unhealthy': { type: 'string' },
      'on-exit': { type: 'string' },
      max: { type: 'string' },
      window: { type: 'string' },
      autostart: { type: 'boolean' },
      clear: { type: 'boolean' },
    } as const;
    const { values: v, positionals: [n] } = parse(args, opts, 1);
    const setting = Object.keys(v).some((k) => k !== 'json');
    if (!setting) {
      const s = await d.supervision(n);
      if (v.json) printJson(s);
      else process.stdout.write(`${JSON.stringify(s.policy)}\ngood snapshots: ${s.good.join(' ') || '-'}\n${s.health ? healthLine(s.health) : 'health: unsupervised'}\n`);
      return;
    }
    if (v.clear) return d.setPolicy(n, null);
    const probe = v.probe === undefined ? null : probeArg(v.probe);
    const ms = (flag: keyof typeof opts, key: string) => (v[flag] === undefined ? {} : { [key]: intArg(v[flag] as string, `--${flag}`) });
    await d.setPolicy(n, {
      probe: probe && { ...probe, ...ms('interval', 'intervalMs'), ...ms('timeout', 'timeoutMs'), ...ms('retries', 'retries'), ...ms('start-period', 'startPeriodMs') },
      ...(v['on-unhealthy'] === undefined ? {} : { onUnhealthy: v['on-unhealthy'] }),
      ...(v['on-exit'] === undefined ? {} : { onExit: v['on-exit'] }),
      ...ms('max', 'max'),
      ...(v.window === undefined ? {} : { windowMs: intArg(v.window, '--window')! * 1000 }),
      autostart: v.autostart === true,
    } as Parameters<SupervisionOps['setPolicy']>[1]);
  },
});

/** `tcp:PORT` or `http:PORT/PATH` as a probe. */
function probeArg(text: string): { type: 'tcp' | 'http'; port: number; path?: string } {
  const m = /^(tcp|http):(\d{1,5})(\/.*)?$/.exec(text);
  if (!m || (m[1] === 'tcp' && m[3])) throw dreError('DRE_ERR_INVALID_ARGUMENT', `--probe ${JSON.stringify(text)}: give tcp:PORT or http:PORT/PATH`);
  return m[1] === 'tcp' ? { type: 'tcp', port: Number(m[2]) } : { type: 'http', port: Number(m[2]), path: m[3] ?? '/' };
}

/** PIDs as seen inside the container, for drivers that can translate them (application containers). */
export interface VpidOps {
  bindVpid(name: string, cgroup: string, vpid: number): Promise<void>;
  unbindVpid(name: string, cgroup: string, vpid: number): Promise<void>;
}

/** Control Groups and limits, the same words for both kinds; with `vpid`, bind and unbind take --vpid. */
export function cgroupCommands(d: Lazy<Cgroups>, texts: { create: string; bind: string }, vpid?: VpidOps): Command[] {
  const flag = vpid ? ' [--vpid]' : '';
  const moving = (name: string, summary: string, host: (n: string, cg: string, pid: number) => Promise<void>, inside?: (n: string, cg: string, vpid: number) => Promise<void>): Command => ({
    name,
    usage: `NAME CGROUP PID${flag}`,
    summary,
    run: async (args) => {
      const { values, positionals: [n, cg, p] } = parse(args, inside ? { vpid: { type: 'boolean' } } : {}, 3);
      await ((values as { vpid?: boolean }).vpid && inside ? inside(n, cg, pidOf(p, 'vpid')) : host(n, cg, pidOf(p)));
    },
  });
  return [
    {
      name: 'cgroup-create',
      usage: 'NAME CGROUP',
      summary: texts.create,
      run: async (args) => {
        const { positionals: [n, cg] } = parse(args, {}, 2);
        await d.createCgroup(n, cg);
      },
    },
    {
      name: 'cgroup-destroy',
      usage: 'NAME CGROUP',
      summary: 'remove a control group (its processes go back to the container)',
      run: async (args) => {
        const { positionals: [n, cg] } = parse(args, {}, 2);
        await d.destroyCgroup(n, cg);
      },
    },
    moving('bind', texts.bind, d.bindPid, vpid?.bindVpid),
    moving('unbind', "move a process back into the container's own group", d.unbindPid, vpid?.unbindVpid),
    {
      name: 'limit',
      usage: 'NAME CGROUP cpu|cores|memory|memsw VALUE',
      summary: 'set a limit: cpu PERCENT, cores LIST (e.g. 0-1), memory BYTES, memsw BYTES',
      run: async (args) => {
        const { positionals: [n, cg, r, v] } = parse(args, {}, 4);
        await d.setResource(n, cg, resource(r, v));
      },
    },
    {
      name: 'unlimit',
      usage: 'NAME CGROUP cpu|cores|memory|memsw',
      summary: 'lift a limit',
      run: async (args) => {
        const { positionals: [n, cg, r] } = parse(args, {}, 3);
        await d.unsetResource(n, cg, { type: resourceType(r) });
      },
    },
    {
      name: 'usage',
      usage: 'NAME PID cpu|cores|memory|memsw [--json]',
      summary: 'print the usage of the group holding PID',
      run: async (args) => {
        const { values, positionals: [n, p, r] } = parse(args, {}, 3);
        const u = await d.getResource(n, pidOf(p), resourceType(r));
        if (values.json) printJson(u);
        else process.stdout.write(`${u.percent ?? u.cores ?? u.bytes}\n`);
      },
    },
  ];
}

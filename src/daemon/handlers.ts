/**
 * What each route of api/openapi.json does, by operationId: a thin call of the idiomatic API (the same
 * drivers the library and the CLIs use, so the locks keep all of them consistent), and nothing else.
 */
import { STATUS, statusName, type Resource, type Status } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import type { Kind } from '../core/paths.js';
import { appDriver } from '../app/driver.js';
import { sysDriver, type SysDriver } from '../sys/driver.js';
import type { StreamEvent } from './events.js';
import type { Operation, Operations, Progress } from './operations.js';
import { startWhenReady } from './readiness.js';

export interface Request {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

/** A handler's answer: a JSON body (200), or an operation started in the background (202). */
export type Reply = { body: unknown } | { operation: Operation };

export interface Context {
  operations: Operations;
  server: Record<string, unknown>;
  /** The daemon's event hub (a start with waitReady waits for the container's `ready` or `healthy`). */
  events?: { subscribe(fn: (e: StreamEvent) => void): () => void };
  /** The system-container driver to call (the daemon's runs the calls that may wait on NFS in workers: offload.ts). */
  sys?: SysDriver;
}

type Handler = (req: Request, ctx: Context) => Promise<Reply> | Reply;

const DONE = { body: {} };

const sysOf = (ctx: Context) => ctx.sys ?? sysDriver;
const driverOf = (req: Request, ctx: Context) => (req.params.kind === 'sys' ? sysOf(ctx) : appDriver);
const kindOf = (req: Request): Kind => (req.params.kind === 'sys' ? 'sys' : 'app');

/** An integer from a path or query parameter ("12"); anything else is bad input. */
function intParam(text: string | null, what: string): number {
  const n = text !== null && /^-?\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be an integer, not ${JSON.stringify(text)}`);
  return n;
}

/** The state each action leaves a container in when it succeeds. */
const LEFT_IN = { start: STATUS.RUNNING, stop: STATUS.STOP, suspend: STATUS.SUSPENDED, resume: STATUS.RUNNING } as const;

const state = (s: Status) => ({ body: { status: s, statusName: statusName(s) } });

function background(ctx: Context, req: Request, name: string, description: string, work: (progress: Progress) => Promise<unknown>): Reply {
  return { operation: ctx.operations.start(kindOf(req), name, description, work) };
}

export const handlers: Record<string, Handler> = {
  getServer: (_req, ctx) => ({ body: ctx.server }),
  listOperations: (_req, ctx) => ({ body: { operations: ctx.operations.list() } }),
  getOperation: (req, ctx) => ({ body: requireOperation(ctx.operations.get(req.params.id), req.params.id) }),
  waitOperation: async (req, ctx) => {
    const t = req.query.get('timeout');
    const seconds = t === null ? 30 : intParam(t, 'timeout');
    if (seconds < 0 || seconds > 600) throw dreError('DRE_ERR_INVALID_ARGUMENT', `timeout ${seconds} must be 0..600 seconds`);
    return { body: requireOperation(await ctx.operations.wait(req.params.id, seconds * 1000), req.params.id) };
  },

  listContainers: async (req, ctx) => ({ body: { containers: await driverOf(req, ctx).list() } }),
  createContainer: (req, ctx) => {
    const name = req.body.name as string;
    const config = (req.body.config ?? {}) as object;
    return background(ctx, req, name, `create ${kindOf(req)} container ${name}`, () => driverOf(req, ctx).create(name, config));
  },
  getContainer: async (req, ctx) => {
    const d = driverOf(req, ctx);
    const s = await d.status(req.params.name);
    return { body: { name: req.params.name, kind: d.kind, status: s, statusName: statusName(s), info: d.info(req.params.name) } };
  },
  destroyContainer: async (req, ctx) => (await driverOf(req, ctx).destroy(req.params.name), DONE),
  getState: async (req, ctx) => state(await driverOf(req, ctx).status(req.params.name)),
  changeState: async (req, ctx) => {
    const d = driverOf(req, ctx);
    const n = req.params.name;
    const action = req.body.action as 'start' | 'stop' | 'suspend' | 'resume';
    if (req.body.waitReady !== undefined && action !== 'start') throw dreError('DRE_ERR_INVALID_ARGUMENT', `waitReady goes with action start, not ${action}`);
    if (action === 'start' && req.body.waitReady === true && ctx.events) {
      const hub = ctx.events;
      const ready = await startWhenReady(
        d.kind,
        n,
        () => d.start(n),
        async (fn) => hub.subscribe(fn),
        req.body.readyTimeoutMs as number | undefined,
      );
      return { body: { ...state(await d.status(n)).body, ready } };
    }
    if (action === 'stop') await d.stop(n, { timeoutMs: req.body.timeoutMs as number | undefined });
    else await d[action](n);
    return state(LEFT_IN[action]); // what the action left, not read again (a status read cost ≈ 0.5 ms of every start)
  },
  getSupervision: async (req, ctx) => ({ body: await driverOf(req, ctx).supervision(req.params.name) }),
  setPolicy: async (req, ctx) => (await driverOf(req, ctx).setPolicy(req.params.name, 'policy' in req.body ? null : req.body), DONE),
  markGood: async (req, ctx) => (await driverOf(req, ctx).markGood(req.params.name, req.params.tag), DONE),
  exec: async (req, ctx) => {
    const r = await driverOf(req, ctx).execCapture(req.params.name, req.body.argv as string[], req.body.timeoutMs as number | undefined);
    return { body: { status: r.status, stdout: r.stdout.toString('base64'), stderr: r.stderr.toString('base64') } };
  },
  getPid: async (req, ctx) => ({ body: { pid: await driverOf(req, ctx).pid(req.params.name) } }),

  listSnapshots: async (req, ctx) => ({ body: { snapshots: await driverOf(req, ctx).listSnapshots(req.params.name) } }),
  saveSnapshot: async (req, ctx) => (await driverOf(req, ctx).saveSnapshot(req.params.name, req.body.tag as string), DONE),
  removeSnapshot: async (req, ctx) => (await driverOf(req, ctx).removeSnapshot(req.params.name, req.params.tag), DONE),
  loadSnapshot: async (req, ctx) => (await driverOf(req, ctx).loadSnapshot(req.params.name, req.params.tag), DONE),
  listBases: async (req, ctx) => ({ body: { bases: await driverOf(req, ctx).listBases() } }),
  commitSnapshot: (req, ctx) => {
    const { name, container, snapshot } = req.body as { name: string; container: string; snapshot: string };
    return background(ctx, req, container, `commit snapshot ${snapshot} of ${container} as base ${name}`, () =>
      driverOf(req, ctx).commitSnapshot(container, snapshot, name),
    );
  },
  buildBase: (req, ctx) => {
    const { flavour, name, release, include } = req.body as { flavour: string; name?: string; release?: string; include?: string[] };
    if (req.params.kind === 'sys' && flavour !== 'debian') {
      if (flavour !== 'default' || name !== undefined)
        throw dreError(
          'DRE_ERR_INVALID_ARGUMENT',
          'build a system Base Image: flavour "default" (the built-in one, no name) or "debian", not ' + JSON.stringify(flavour),
        );
      return background(ctx, req, 'default', 'build the default system Base Image', (progress) => sysOf(ctx).rebuildDefaultBase((step) => progress(step)));
    }
    if (req.params.kind === 'sys') {
      const base = name ?? 'debian';
      return background(ctx, req, base, `build Debian VM base ${base}`, (progress) =>
        sysOf(ctx).buildDebianBase(base, { release, include, progress: (line) => progress(line) }),
      );
    }
    if (flavour !== 'debian')
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `build an application Base Image: flavour "debian" is the one there is, not ${JSON.stringify(flavour)}`);
    const base = name ?? 'debian';
    return background(ctx, req, base, `build Debian base ${base}`, (progress) =>
      appDriver.buildDebianBase(base, { release, include, progress: (line) => progress(line) }),
    );
  },
  removeBase: async (req, ctx) => (await driverOf(req, ctx).removeBase(req.params.base), DONE),

  listCheckpoints: async (req, ctx) => ({ body: { checkpoints: await driverOf(req, ctx).listCheckpoints(req.params.name) } }),
  checkpoint: (req, ctx) => {
    const n = req.params.name;
    const tag = req.body.tag as string;
    return background(ctx, req, n, `checkpoint ${n} as ${tag}`, () => driverOf(req, ctx).checkpoint(n, tag));
  },
  removeCheckpoint: async (req, ctx) => (await driverOf(req, ctx).removeCheckpoint(req.params.name, req.params.tag), DONE),
  restart: (req, ctx) => {
    const { name: n, tag } = req.params;
    return background(ctx, req, n, `restart ${n} from checkpoint ${tag}`, () => driverOf(req, ctx).restart(n, tag));
  },

  createCgroup: async (req, ctx) => (await driverOf(req, ctx).createCgroup(req.params.name, req.body.cgroup as string), DONE),
  destroyCgroup: async (req, ctx) => (await driverOf(req, ctx).destroyCgroup(req.params.name, req.params.cgroup), DONE),
  bindPid: async (req, ctx) => (await driverOf(req, ctx).bindPid(req.params.name, req.params.cgroup, req.body.pid as number), DONE),
  unbindPid: async (req, ctx) => (await driverOf(req, ctx).unbindPid(req.params.name, req.params.cgroup, intParam(req.params.pid, 'pid')), DONE),
  bindVpid: async (req) => (await appDriver.bindVpid(req.params.name, req.params.cgroup, req.body.vpid as number), DONE),
  unbindVpid: async (req) => (await appDriver.unbindVpid(req.params.name, req.params.cgroup, intParam(req.params.vpid, 'vpid')), DONE),
  setResource: async (req, ctx) => (await driverOf(req, ctx).setResource(req.params.name, req.params.cgroup, req.body as unknown as Resource), DONE),
  unsetResource: async (req, ctx) => {
    const type = intParam(req.params.type, 'resource type') as Resource['type'];
    await driverOf(req, ctx).unsetResource(req.params.name, req.params.cgroup, { type });
    return DONE;
  },
  getResource: async (req, ctx) => {
    const pid = intParam(req.query.get('pid'), 'pid');
    const type = intParam(req.query.get('type'), 'resource type') as Resource['type'];
    return { body: await driverOf(req, ctx).getResource(req.params.name, pid, type) };
  },

  registeredPids: async (req) => ({ body: { pids: await appDriver.registeredPids(req.params.name) } }),
  registerPid: async (req) => {
    if (req.body.vpid !== undefined) await appDriver.registerVpid(req.params.name, req.body.vpid as number);
    else await appDriver.registerPid(req.params.name, req.body.pid as number);
    return DONE;
  },
  unregisterPid: async (req) => (await appDriver.unregisterPid(req.params.name, intParam(req.params.pid, 'pid')), DONE),
  unregisterVpid: async (req) => (await appDriver.unregisterVpid(req.params.name, intParam(req.params.vpid, 'vpid')), DONE),

  share: async (req, ctx) => (await sysOf(ctx).share(req.params.name), DONE),
  unshare: async (req, ctx) => (await sysOf(ctx).unshare(req.params.name), DONE),
  leaseHolder: async (req, ctx) => ({ body: { holder: (await sysOf(ctx).leaseHolder(req.params.name)) ?? null } }),
  breakLease: async (req, ctx) => ({ body: { holder: (await sysOf(ctx).breakLease(req.params.name)) ?? null } }),
  setNfsConfig: async (req, ctx) => (await sysOf(ctx).setNfsConfig(req.body.url as string), DONE),
  migrate: (req, ctx) => {
    const n = req.params.name;
    const { target, port } = req.body as { target: string; port?: number };
    if (port === undefined) return background(ctx, req, n, `migrate ${n} to ${target}`, () => sysOf(ctx).migrateTo(n, target));
    return background(ctx, req, n, `migrate ${n} to ${target}:${port}`, () => sysOf(ctx).migrate(n, target, port));
  },
  immigrate: (req, ctx) => {
    const { name, port, address, mac } = req.body as { name: string; port: number; address?: string; mac?: string };
    return {
      operation: ctx.operations.start('sys', name, `immigrate ${name} on port ${port}`, () => sysOf(ctx).immigrate(name, port, { address, mac })),
    };
  },
};

function requireOperation(op: Operation | undefined, id: string): Operation {
  if (!op) throw dreError('DRE_ERR_INVALID_ARGUMENT', `no operation ${id} (finished operations are kept for 10 minutes)`);
  return op;
}

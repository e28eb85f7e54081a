/**
 * The system-container calls that may wait on the NFS server, run in worker threads: libnfs is bound
 * synchronously (src/sys/nfs.ts), and a silent server holds a call for seconds, which on the daemon's
 * event loop would stop every other request, the event stream and the supervisor meanwhile. A worker
 * runs the same driver on the same files and locks (the daemon keeps no state of its own), so the
 * call behaves as the library's; the loop only waits for its answer.
 */
import { Worker } from 'node:worker_threads';
import { DreError, type DreErrName } from '../core/errors.js';
import { currentCause } from '../core/journal.js';
import { checkName } from '../core/names.js';
import { sysDriver, type SysDriver } from '../sys/driver.js';
import { isShared, nfsConfig } from '../sys/lease.js';

/** Calls that go to a share whatever the container (the share and lease routes, NFS set-up, migration). */
const ALWAYS = ['share', 'unshare', 'leaseHolder', 'breakLease', 'setNfsConfig', 'migrate', 'migrateTo', 'immigrate'] as const;
/** Calls that reach the share when the container lives on one, or may (a host with a share finds containers on it). */
const WHEN_SHARED = [
  'create',
  'destroy',
  'start',
  'stop',
  'rename',
  'saveSnapshot',
  'loadSnapshot',
  'removeSnapshot',
  'listSnapshots',
  'snapshotDetails',
  'commitSnapshot',
  'checkpoint',
  'restart',
  'listCheckpoints',
  'removeCheckpoint',
] as const;
type Offloaded = (typeof ALWAYS)[number] | (typeof WHEN_SHARED)[number];

/** A worker left idle this long ends (the next call starts one again, ≈ 0.2 s). */
const IDLE_MS = 60_000;
/** At most this many calls run in workers at once; more wait for one to finish. */
const MAX_WORKERS = 8;

/** What the worker answers: the call's value, or its error as data (a DreError keeps its name). */
export type WorkerReply = { id: number; value: unknown } | { id: number; error: { errName?: DreErrName; message: string } };
export interface WorkerCall {
  id: number;
  method: string;
  args: unknown[];
  /** The caller's withCause (the supervisor's, the cluster's), so that the worker's events carry it too. */
  cause?: string;
}

interface Idle {
  worker: Worker;
  timer: NodeJS.Timeout;
}

export class DriverWorkers {
  private readonly idle: Idle[] = [];
  private readonly waiting: (() => void)[] = [];
  private busy = 0;
  private nextId = 0;

  /** Runs `sysDriver[method](...args)` in a worker thread; its arguments and result are copied (structured clone). */
  async call(method: string, args: unknown[]): Promise<unknown> {
    while (this.busy >= MAX_WORKERS) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.busy++;
    const worker = this.take();
    const id = ++this.nextId;
    let reply: WorkerReply;
    try {
      reply = await new Promise<WorkerReply>((resolve, reject) => {
        const onMessage = (m: WorkerReply) => {
          if (m.id !== id) return;
          worker.off('message', onMessage).off('error', reject).off('exit', onExit);
          resolve(m);
        };
        const onExit = (code: number) => reject(new Error(`the driver worker ended (status ${code}) during ${method}`));
        worker.on('message', onMessage).once('error', reject).once('exit', onExit);
        worker.postMessage({ id, method, args, cause: currentCause() } satisfies WorkerCall);
      });
      this.giveBack(worker);
    } catch (e) {
      void worker.terminate(); // a worker in an unknown state is not reused
      throw e;
    } finally {
      this.busy--;
      this.waiting.shift()?.();
    }
    if ('value' in reply) return reply.value;
    throw reply.error.errName ? new DreError(reply.error.errName, reply.error.message) : new Error(reply.error.message);
  }

  /** Ends every worker (the daemon's shutdown); a call under way fails. */
  stop(): void {
    for (const { worker, timer } of this.idle.splice(0)) {
      clearTimeout(timer);
      void worker.terminate();
    }
  }

  private take(): Worker {
    const idle = this.idle.pop();
    if (idle) {
      clearTimeout(idle.timer);
      return idle.worker;
    }
    const worker = new Worker(new URL('./driver-worker.js', import.meta.url));
    worker.unref(); // an idle worker never keeps the daemon alive
    worker.on('error', () => undefined); // reported to the call that was running, if any
    return worker;
  }

  private giveBack(worker: Worker): void {
    const entry: Idle = {
      worker,
      timer: setTimeout(() => {
        const i = this.idle.indexOf(entry);
        if (i >= 0) this.idle.splice(i, 1);
        void worker.terminate();
      }, IDLE_MS).unref(),
    };
    this.idle.push(entry);
  }
}

/** Whether a call may wait on the share: NFS calls always; a container's calls when it is shared or this host has a share. */
function reachesShare(method: Offloaded, args: unknown[]): boolean {
  if ((ALWAYS as readonly string[]).includes(method)) return true;
  if (nfsConfig() !== undefined) return true;
  try {
    return isShared(checkName(args[0], 'container name'));
  } catch {
    return false; // a bad name: the call itself refuses it, on this thread
  }
}

/**
 * The system-container driver as the daemon uses it: the calls that may wait on the share run in
 * `workers`, everything else (status, list, info: local files only) as it is.
 */
export function offloadedSysDriver(workers: DriverWorkers): SysDriver {
  const out = { ...sysDriver } as Record<string, unknown>;
  for (const method of [...ALWAYS, ...WHEN_SHARED]) {
    const local = sysDriver[method] as (...a: unknown[]) => unknown;
    out[method] = async (...args: unknown[]) => (reachesShare(method, args) ? workers.call(method, args) : local(...args));
  }
  return out as SysDriver;
}

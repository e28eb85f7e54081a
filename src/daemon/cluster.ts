/**
 * dred in a cluster (`dred --cluster etcd://...`): this host's membership and the failover of
 * shared containers whose host was lost.
 *
 * - The lease, the member key and self-fencing are a worker thread's (lease-keeper.ts), so that a
 *   busy event loop here never delays a renewal; a watchdog process (watchdog.ts) fences when the
 *   daemon itself is stopped or killed. Every ownership this host takes (by the daemon, the library
 *   or a CLI: cluster/claims.ts) lives under that lease and vanishes with it.
 * - Failover: each second, a healthy member looks for shared containers that should run, may fail
 *   over, and have no owner; the first host whose transaction takes the ownership starts it.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Etcd3 } from 'etcd3';
import { dreError, isDreError } from '../core/errors.js';
import { record, withCause } from '../core/journal.js';
import { sleep } from '../core/proc.js';
import { readSupervision, writeSupervision } from '../core/supervision.js';
import { clusterConfig, monotonicMs, readDeadline } from '../cluster/config.js';
import { openEtcd } from '../cluster/etcd.js';
import { allWanted, members, owners, wantedOf, type Member } from '../cluster/ownership.js';
import { importShared, thisHost } from '../sys/lease.js';
import { releaseIfEnded } from '../sys/fence.js';
import type { SysDriver } from '../sys/driver.js';
import type { KeeperMessage, KeeperOptions } from './lease-keeper.js';

export const CLUSTER_CAUSE = 'cluster';
const FAILOVER_TICK_MS = 1_000;
/** After a failover start failed here, this host leaves the container to the others for a while. */
const RETRY_HERE_MS = 10_000;
const watchdogScript = new URL('./watchdog.js', import.meta.url).pathname;
const keeperScript = new URL('./lease-keeper.js', import.meta.url);

export class ClusterMember {
  private etcd!: Etcd3;
  private keeper: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly starting = new Set<string>();
  private readonly failedHere = new Map<string, number>();
  private trusted = new Set<string>();

  constructor(
    private readonly opts: Omit<KeeperOptions, 'daemonPid'>,
    private readonly sys: SysDriver,
  ) {}

  /** Joins: the lease keeper granted a lease and announced this host; then the failover round and the watchdog start. */
  async join(): Promise<void> {
    this.etcd = await openEtcd(this.opts.endpoints, this.opts.tls);
    const keeper = new Worker(keeperScript, { workerData: { ...this.opts, daemonPid: process.pid } satisfies KeeperOptions });
    this.keeper = keeper;
    await new Promise<void>((resolve, reject) => {
      keeper.on('message', (m: KeeperMessage) => {
        if (m.type === 'joined') {
          process.stderr.write(`dred: joined the cluster as ${thisHost().host} (lease ${m.leaseId}, TTL ${this.opts.ttlMs} ms)\n`);
          resolve();
        } else if (m.type === 'fenced') {
          process.stderr.write(`dred: fenced (${m.reason}): killed the guests of ${m.killed.join(', ') || 'no shared container'}\n`);
        } else if (m.type === 'slow') {
          process.stderr.write(`dred: cluster lease renewal ${m.ms < 0 ? `failed: ${m.message}` : `took ${m.ms} ms`}\n`);
        } else reject(dreError('DRE_ERR_CONTAINER_BUSY', `dred: cannot join the cluster at ${this.opts.endpoints.join(',')}: ${m.message}`));
      });
      keeper.once('error', reject);
    });
    keeper.on('exit', (code) => {
      if (this.timer) process.stderr.write(`dred: the cluster's lease keeper ended (${code}); the watchdog fences this host's shared guests\n`);
    });
    spawn(process.execPath, [watchdogScript], { stdio: ['ignore', 'ignore', 'inherit'], detached: true }).unref();
    this.timer = setInterval(() => void this.failover(), FAILOVER_TICK_MS);
  }

  /** Leaves: the lease is revoked (its keys go at once) and the cluster file removed; guests keep running, this host's own now. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.keeper) {
      const ended = new Promise((resolve) => this.keeper!.once('exit', resolve));
      this.keeper.postMessage({ type: 'leave' });
      await Promise.race([ended, sleep(3_000)]);
    }
    this.etcd?.close();
  }

  /** Fingerprints of the members' daemon certificates (trusted by the TLS listener: etcd is the cluster's trust root). */
  trustedFingerprints(): Set<string> {
    return this.trusted;
  }

  /** Healthy: the lease keeper's deadline lies ahead (it renewed the lease in time). */
  private healthy(): boolean {
    return (readDeadline() ?? 0) > monotonicMs();
  }

  private async failover(): Promise<void> {
    if (!this.healthy()) return;
    let wanted, owned, ms: Member[];
    try {
      [wanted, owned, ms] = await Promise.all([allWanted(this.etcd), owners(this.etcd), members(this.etcd)]);
    } catch {
      return; // etcd unreachable: the lease keeper decides what that means
    }
    this.trusted = new Set(ms.flatMap((m) => (m.cert ? [new X509Certificate(m.cert).fingerprint256] : [])));
    // Only ownership under the current lease: one under a lease this host lost (it fenced, its guest is
    // dead) lapses with it, and the container fails over; it did not end by itself.
    const lease = clusterConfig()?.leaseId;
    for (const [n, o] of owned) if (o.lease === lease && !this.starting.has(n)) void releaseIfEnded(n);
    for (const [n, w] of wanted) {
      if (!w.running || !w.policy?.failover || owned.has(n) || this.starting.has(n)) continue;
      if ((this.failedHere.get(n) ?? 0) > Date.now()) continue;
      this.starting.add(n);
      void this.takeOver(n, w.host).finally(() => this.starting.delete(n));
    }
  }

  private async takeOver(n: string, from: string): Promise<void> {
    await sleep(Math.random() * 300); // spreads the hosts' attempts; the ownership transaction decides anyway
    const started = Date.now();
    try {
      if (!(await importShared(n, 'fail over'))) return;
      const done = await withCause(CLUSTER_CAUSE, async () => {
        const wanted = await wantedOf(this.etcd, n);
        if (!wanted?.running || !this.healthy()) return false;
        const s = readSupervision('sys', n);
        if (JSON.stringify(s.policy) !== JSON.stringify(wanted.policy)) writeSupervision('sys', n, { ...s, policy: wanted.policy });
        await this.sys.start(n);
        record('sys', n, 'failed-over', { from, to: thisHost().host, ms: Date.now() - started });
        return true;
      });
      if (done) process.stderr.write(`dred: ${n} failed over here from ${from} in ${Date.now() - started} ms\n`);
    } catch (e) {
      // Another host took it first (CONTAINER_BUSY), or it cannot start here: the others try, then this host again.
      if (isDreError(e) && e.errName === 'DRE_ERR_CONTAINER_BUSY') return;
      this.failedHere.set(n, Date.now() + RETRY_HERE_MS);
      process.stderr.write(`dred: fail over ${n}: ${(e as Error).message}\n`);
    }
  }
}

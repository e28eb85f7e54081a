/**
 * The daemon's lease in the cluster, kept by a worker thread of its own: the daemon's event loop
 * may be held up (a synchronous NFS call, a long start), and a late renewal would make the host
 * fence its own healthy guests. The worker grants the lease, announces the member and writes the
 * cluster file the library reads (cluster/config.ts), renews the lease a few times per TTL, writes
 * the deadline its watchdog reads, fences when the deadline passes and joins again with a new lease.
 *
 * The deadline: the send time of the last renewal etcd confirmed, plus the TTL etcd gave, less a
 * margin. etcd cannot expire the lease before then, so a host that kills its shared guests by then
 * never runs them alongside a host that took them over.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Etcd3, Lease } from 'etcd3';
import { deadlinePath, monotonicMs, removeClusterConfig, writeClusterConfig, type EtcdTls } from '../cluster/config.js';
import { isLeaseGone, openEtcd } from '../cluster/etcd.js';
import { announce } from '../cluster/ownership.js';
import { writeFileAtomic } from '../core/store.js';
import { killSharedGuests } from '../sys/fence.js';
import { thisHost } from '../sys/lease.js';

export interface KeeperOptions {
  endpoints: string[];
  tls?: EtcdTls;
  ttlMs: number;
  address: string | null;
  cert: string | null;
  tlsDir: string | null;
  daemonPid: number;
}

/** What the worker tells the daemon. */
export type KeeperMessage =
  | { type: 'joined'; leaseId: string }
  | { type: 'fenced'; reason: string; killed: string[] }
  /** A renewal that took longer than the renewal period (ms), or failed (ms -1, with the reason). */
  | { type: 'slow'; ms: number; message?: string }
  | { type: 'failed'; message: string };

class LeaseKeeper {
  private etcd!: Etcd3;
  private lease: Lease | undefined;
  private deadline = 0;
  private renewing = false;
  private fenced = false;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly opts: KeeperOptions,
    private readonly tell: (m: KeeperMessage) => void,
  ) {}

  /** A few renewals per TTL; fenced a second (or a fifth of the TTL) before etcd may expire the lease. */
  private get renewMs() {
    return Math.max(250, Math.floor(this.opts.ttlMs / 4));
  }
  private get marginMs() {
    return Math.max(1_000, Math.floor(this.opts.ttlMs / 5));
  }

  async start(): Promise<void> {
    this.etcd = await openEtcd(this.opts.endpoints, this.opts.tls);
    await this.grant();
    this.timers.push(setInterval(() => this.checkDeadline(), 100));
    this.timers.push(setInterval(() => void this.renew(), this.renewMs));
  }

  async leave(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    removeClusterConfig();
    await this.lease?.revoke().catch(() => undefined);
    this.etcd?.close();
  }

  private async grant(): Promise<void> {
    const sent = monotonicMs();
    const lease = this.etcd.lease(Math.ceil(this.opts.ttlMs / 1000), { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const me = thisHost();
    const { address, cert, tlsDir, endpoints, tls, ttlMs, daemonPid } = this.opts;
    await announce(this.etcd, { ...me, address, cert, leaseId, since: new Date().toISOString() });
    this.lease = lease;
    // The new lease is named before the deadline says healthy: the failover loop, seeing this host
    // healthy, must never take an ownership under the lease it lost for one of the current lease.
    writeClusterConfig({ endpoints, tls, ...me, address, tlsDir, leaseId, ttlMs, daemonPid });
    this.extend(sent, ttlMs);
    this.fenced = false;
    this.tell({ type: 'joined', leaseId });
  }

  private extend(sent: number, ttlMs: number): void {
    this.deadline = sent + ttlMs - this.marginMs;
    mkdirSync(dirname(deadlinePath()), { recursive: true, mode: 0o700 });
    writeFileAtomic(deadlinePath(), `${this.deadline}\n`); // renamed into place: the watchdog never reads it half-written
  }

  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      if (this.fenced || !this.lease) {
        // Rejoin: the old lease revoked (its ownerships go now, not at its expiry), a new one with none.
        await this.lease?.revoke().catch(() => undefined);
        return await this.grant();
      }
      const sent = monotonicMs();
      const r = await this.lease.keepaliveOnce();
      // Fenced while the renewal was on its way (its answer came late): the guests are dead and the
      // lease counts as lost; the next round rejoins. Extending it would call this host healthy under
      // the lease it gave up, and a dead guest's ownership would then read as a guest that ended by itself.
      if (this.fenced) return;
      const ttlMs = Number(r.TTL) * 1000;
      if (!(ttlMs > 0)) throw new Error('lease not found');
      this.extend(sent, ttlMs);
      const took = monotonicMs() - sent;
      if (took > this.renewMs) this.tell({ type: 'slow', ms: took });
    } catch (e) {
      if (isLeaseGone(e)) this.fence('etcd says its lease expired');
      else this.tell({ type: 'slow', ms: -1, message: (e as Error)?.message ?? String(e) });
    } finally {
      this.renewing = false;
    }
  }

  private checkDeadline(): void {
    if (monotonicMs() > this.deadline) this.fence('its lease was not renewed in time (etcd unreachable?)');
  }

  private fence(reason: string): void {
    const killed = killSharedGuests(`this host lost the cluster: ${reason}`);
    if (!this.fenced || killed.length) this.tell({ type: 'fenced', reason, killed });
    this.fenced = true;
  }
}

if (parentPort) {
  const port = parentPort;
  const keeper = new LeaseKeeper(workerData as KeeperOptions, (m) => port.postMessage(m));
  port.on('message', (m: { type: string }) => {
    if (m.type === 'leave') void keeper.leave().finally(() => process.exit(0));
  });
  keeper.start().catch((e) => {
    port.postMessage({ type: 'failed', message: (e as Error)?.message ?? String(e) } satisfies KeeperMessage);
    process.exit(1);
  });
}

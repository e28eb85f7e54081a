/**
 * dred in a cluster (`dred --cluster etcd://...`): this host's membership, its lease, its fencing
 * and the failover of shared containers whose host was lost.
 *
 * - The daemon holds one etcd lease with a short TTL and renews it a few times per TTL. Its member
 *   key and every ownership this host takes (by the daemon, the library or a CLI: cluster/claims.ts)
 *   live under that lease, so they vanish when the host stops renewing it.
 * - Self-fencing: the host may run shared guests only until `deadline`, the send time of the last
 *   renewal etcd confirmed plus the TTL etcd gave, less a margin: etcd cannot expire the lease before
 *   then. Past it (etcd cut off, the daemon paused) the daemon kills its shared guests; a separate
 *   watchdog process reads the same deadline and does the same when the daemon itself is stopped or
 *   killed. Then the lease is granted again and the host rejoins with no ownership.
 * - Failover: every healthy member looks each second for shared containers that should run, may
 *   fail over, and have no owner; the first host whose transaction takes the ownership starts it.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3, Lease } from 'etcd3';
import { isDreError } from '../core/errors.js';
import { record, withCause } from '../core/journal.js';
import { runRoot } from '../core/paths.js';
import { sleep } from '../core/proc.js';
import { readSupervision, writeSupervision } from '../core/supervision.js';
import { deadlinePath, monotonicMs, removeClusterConfig, writeClusterConfig, type ClusterConfig, type EtcdTls } from '../cluster/config.js';
import { isLeaseGone, openEtcd } from '../cluster/etcd.js';
import { allWanted, announce, members, owners, type Member } from '../cluster/ownership.js';
import { killSharedGuests } from '../sys/fence.js';
import { importShared, thisHost } from '../sys/lease.js';
import type { SysDriver } from '../sys/driver.js';

export const SUPERVISOR_CAUSE = 'cluster';

const watchdogScript = new URL('./watchdog.js', import.meta.url).pathname;

export interface ClusterOptions {
  endpoints: string[];
  tls?: EtcdTls;
  ttlMs: number;
  /** This daemon's HTTPS listener, as other hosts reach it (HOST:PORT), and its certificate (PEM). */
  address: string | null;
  cert: string | null;
  tlsDir: string | null;
}

export class ClusterMember {
  private etcd!: Etcd3;
  private lease: Lease | undefined;
  private config!: ClusterConfig;
  private deadline = 0;
  private renewing = false;
  private fenced = false;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly starting = new Set<string>();
  private trusted = new Set<string>();

  constructor(
    private readonly opts: ClusterOptions,
    private readonly sys: SysDriver,
  ) {}

  /** The renewal period and the fencing margin: a few renewals per TTL; fenced a second (or a fifth of the TTL) before etcd may expire the lease. */
  private get renewMs() {
    return Math.max(250, Math.floor(this.opts.ttlMs / 4));
  }
  private get marginMs() {
    return Math.max(1_000, Math.floor(this.opts.ttlMs / 5));
  }

  async join(): Promise<void> {
    this.etcd = await openEtcd(this.opts.endpoints, this.opts.tls);
    await this.grant();
    this.startWatchdog();
    this.timers.push(setInterval(() => this.checkDeadline(), 100));
    this.timers.push(setInterval(() => void this.renew(), this.renewMs));
    this.timers.push(setInterval(() => void this.failover(), 1_000));
  }

  /** Leaves: the lease is revoked (its keys go at once), the watchdog and the config file with it. Guests keep running; they are this host's own now. */
  async leave(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    removeClusterConfig();
    await this.lease?.revoke().catch(() => undefined);
    this.etcd?.close();
  }

  /** Fingerprints of the members' daemon certificates (trusted by the TLS listener: etcd is the cluster's trust root). */
  trustedFingerprints(): Set<string> {
    return this.trusted;
  }

  private async grant(): Promise<void> {
    const sent = monotonicMs();
    const lease = this.etcd.lease(Math.ceil(this.opts.ttlMs / 1000), { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const me = thisHost();
    const member: Member = { ...me, address: this.opts.address, cert: this.opts.cert, leaseId, since: new Date().toISOString() };
    await announce(this.etcd, member);
    this.lease = lease;
    this.config = {
      endpoints: this.opts.endpoints,
      tls: this.opts.tls,
      ...me,
      address: this.opts.address,
      tlsDir: this.opts.tlsDir,
      leaseId,
      ttlMs: this.opts.ttlMs,
      daemonPid: process.pid,
    };
    this.extend(sent, this.opts.ttlMs);
    writeClusterConfig(this.config);
    this.fenced = false;
    process.stderr.write(`dred: joined the cluster as ${me.host} (lease ${leaseId}, TTL ${this.opts.ttlMs} ms)\n`);
  }

  /** etcd confirmed the lease with `ttlMs` left as of `sent`: shared guests may run until then, less the margin. */
  private extend(sent: number, ttlMs: number): void {
    this.deadline = sent + ttlMs - this.marginMs;
    mkdirSync(join(runRoot(), 'cluster'), { recursive: true, mode: 0o700 });
    writeFileSync(deadlinePath(), `${this.deadline}\n`);
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.stopped) return;
    this.renewing = true;
    try {
      if (this.fenced || !this.lease) {
        // Rejoin: the old lease revoked (its ownerships go now, not at its expiry), a new one with none.
        await this.lease?.revoke().catch(() => undefined);
        return await this.grant();
      }
      const sent = monotonicMs();
      const r = await this.lease.keepaliveOnce();
      const ttlMs = Number(r.TTL) * 1000;
      if (!(ttlMs > 0)) throw new Error('lease not found');
      this.extend(sent, ttlMs);
    } catch (e) {
      if (isLeaseGone(e)) this.fence('etcd says its lease expired');
    } finally {
      this.renewing = false;
    }
  }

  private checkDeadline(): void {
    if (!this.stopped && monotonicMs() > this.deadline) this.fence(`its lease was not renewed in time (etcd unreachable or the daemon stalled)`);
  }

  /** Kills this host's shared guests (another host may take them over now) and rejoins with a new lease. */
  private fence(reason: string): void {
    const killed = killSharedGuests(`this host lost the cluster: ${reason}`);
    if (!this.fenced || killed.length) process.stderr.write(`dred: fenced (${reason}): killed the guests of ${killed.join(', ') || 'no shared container'}\n`);
    this.fenced = true;
  }

  /** Starts, on this host, each shared container that should run and fail over and has no owner; the ownership transaction picks one host. */
  private async failover(): Promise<void> {
    if (this.stopped || this.fenced || monotonicMs() > this.deadline) return;
    let wanted, owned, ms: Member[];
    try {
      [wanted, owned, ms] = await Promise.all([allWanted(this.etcd), owners(this.etcd), members(this.etcd)]);
    } catch {
      return; // etcd unreachable: the renewal decides what that means
    }
    this.trusted = new Set(ms.flatMap((m) => (m.cert ? [new X509Certificate(m.cert).fingerprint256] : [])));
    for (const [n, w] of wanted) {
      if (!w.running || !w.policy?.failover || owned.has(n) || this.starting.has(n)) continue;
      this.starting.add(n);
      void this.takeOver(n, w.host).finally(() => this.starting.delete(n));
    }
  }

  private async takeOver(n: string, from: string): Promise<void> {
    await sleep(Math.random() * 300); // spreads the hosts' attempts; the transaction decides anyway
    const started = Date.now();
    try {
      if (!(await importShared(n, 'fail over'))) return;
      await withCause(SUPERVISOR_CAUSE, async () => {
        const wanted = (await allWanted(this.etcd)).get(n);
        if (!wanted?.running) return;
        const s = readSupervision('sys', n);
        if (JSON.stringify(s.policy) !== JSON.stringify(wanted.policy)) writeSupervision('sys', n, { ...s, policy: wanted.policy });
        await this.sys.start(n);
        record('sys', n, 'failed-over', { from, to: this.config.host, ms: Date.now() - started });
      });
      process.stderr.write(`dred: ${n} failed over here from ${from} in ${Date.now() - started} ms\n`);
    } catch (e) {
      // Another host took it first (CONTAINER_BUSY), or it cannot start here: the next round looks again.
      if (!isDreError(e) || e.errName !== 'DRE_ERR_CONTAINER_BUSY') process.stderr.write(`dred: fail over ${n}: ${(e as Error).message}\n`);
    }
  }

  /** The watchdog: a process of its own that fences when the daemon stops renewing (stopped, killed). */
  private startWatchdog(): void {
    const child = spawn(process.execPath, [watchdogScript], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    child.unref();
  }
}

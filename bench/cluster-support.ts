/**
 * What the cluster benches share: three D-RE hosts on a three-member etcd and one NFS share
 * (test/support/cluster.ts), their daemons with a given lease TTL, one shared VM with the failover
 * policy, and the faults a host can suffer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../src/core/proc.js';
import { cut, etcdGet, heal, hostCli, setUpCluster, signalDred, startDred, type Cluster, type ClusterHost } from '../test/support/cluster.js';

export type Fault = 'kill' | 'cut' | 'pause';
export const FAULTS: Fault[] = ['kill', 'cut', 'pause'];

export class BenchCluster {
  readonly dreds = new Map<string, number>();
  private constructor(
    readonly c: Cluster,
    readonly vm: string,
    private readonly ttlS: number,
  ) {}

  static async make(tmp: string, vm: string, ttlS: number): Promise<BenchCluster> {
    const b = new BenchCluster(await setUpCluster(tmp), vm, ttlS);
    await Promise.all(b.c.hosts.map((h) => b.startHost(h)));
    const h1 = b.c.hosts[0];
    for (const args of [
      ['create', vm, '--accel', 'tcg'],
      ['share', vm],
      ['policy', vm, '--failover'],
      ['start', vm],
    ])
      b.must(h1, args);
    return b;
  }

  must(h: ClusterHost, args: string[]): string {
    const r = hostCli(h, args);
    if (r.code !== 0) throw new Error(`${h.name}: dre-sys ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** Starts h's daemon; a join etcd did not answer in time (a loaded machine) is tried again, as systemd's Restart= would. */
  async startHost(h: ClusterHost): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const args = ['--cluster', this.c.etcdUrl, '--lease-ttl', String(this.ttlS), '--listen', `${h.addr}:8443`, '--tls', h.tlsDir];
        this.dreds.set(h.name, await startDred(h, args));
        return;
      } catch (e) {
        if (attempt === 5 || !/cannot join the cluster/.test(String(e))) throw e;
        console.log(`${h.name}: dred could not join (attempt ${attempt}), again in 1 s`);
        await sleep(1000);
      }
    }
  }

  hostId(h: ClusterHost): string {
    return readFileSync(join(h.root, 'sys', 'host-id'), 'utf8').trim();
  }

  async owner(): Promise<ClusterHost | undefined> {
    const [kv] = await etcdGet(this.c, `dre/owners/${this.vm}`).catch(() => []);
    if (!kv) return undefined;
    const id = (JSON.parse(kv.value) as { hostId: string }).hostId;
    return this.c.hosts.find((h) => this.hostId(h) === id);
  }

  /** The guest answers its agent on host h (the service is back). */
  answers(h: ClusterHost): boolean {
    return hostCli(h, ['exec', this.vm, '--', 'true'], 10_000).code === 0;
  }

  /** Inflicts `fault` on h; returns what ends it (a killed daemon is started again). */
  inflict(h: ClusterHost, fault: Fault): () => Promise<void> {
    const pid = this.dreds.get(h.name)!;
    if (fault === 'kill') {
      signalDred(pid, 'SIGKILL');
      return () => this.startHost(h);
    }
    if (fault === 'cut') {
      cut(this.c, h);
      return async () => heal(this.c, h);
    }
    signalDred(pid, 'SIGSTOP');
    return async () => signalDred(pid, 'SIGCONT');
  }

  /** Waits until a host other than `from` owns the VM and the guest answers there; returns it. */
  async movedFrom(from: ClusterHost, timeoutMs: number): Promise<ClusterHost | undefined> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
      const o = await this.owner();
      if (o && o !== from && this.answers(o)) return o;
    }
    return undefined;
  }
}

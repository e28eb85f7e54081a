/**
 * Host-loss failover in a three-host cluster with a 5 s lease TTL: from the fault (the owner's
 * daemon SIGKILLed, its link cut, or the daemon paused) to the guest answering its agent on the
 * host that took it over. Beside it, in the same run, a plain `dre-sys start` of the same VM to
 * the same point (the boot a failover cannot avoid): the difference is detection and hand-over.
 * Goal: p95 ≤ 15 s (Proxmox's HA manager: about 2 min; sanlock declares a host dead after ~140 s).
 */
import '../test/support/env.js';
import { performance } from 'node:perf_hooks';
import { tearDownCluster } from '../test/support/cluster.js';
import { BenchCluster, FAULTS } from './cluster-support.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.DRE_BENCH_ROUNDS || 9);
const TTL_S = 5;

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];

export async function bench(): Promise<void> {
  const b = await BenchCluster.make(process.env.DRE_TEST_TMP!, `bfo-${process.pid}`, TTL_S);
  const failover: number[] = [];
  const plainStart: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const fault = FAULTS[round % FAULTS.length];
      const from = (await b.owner())!;
      const t0 = performance.now();
      const end = b.inflict(from, fault);
      const to = await b.movedFrom(from, 120_000);
      const ms = performance.now() - t0;
      await end();
      if (!to) throw new Error(`round ${round}: ${b.vm} did not fail over from ${from.name} (${fault})`);
      failover.push(ms);
      console.log(`round ${round}: ${fault.padEnd(5)} ${from.name} → ${to.name} in ${(ms / 1000).toFixed(2)} s`);
      // The same container started plainly on the same host, to the same point.
      b.must(to, ['stop', b.vm]);
      const s0 = performance.now();
      b.must(to, ['start', b.vm]);
      while (!b.answers(to));
      plainStart.push(performance.now() - s0);
      await new Promise((r) => setTimeout(r, (TTL_S + 1) * 1000)); // the faulted host is back as a member
    }
  } finally {
    tearDownCluster();
  }
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  console.log(
    `failover, fault → answering elsewhere   median ${s(median(failover))}   p95 ${s(p95(failover))}   (${failover.length} rounds, TTL ${TTL_S} s)   goal p95 ≤ 15 s`,
  );
  console.log(`plain dre-sys start → answering         median ${s(median(plainStart))}`);
  console.log(`detection and hand-over (difference)    median ${s(median(failover) - median(plainStart))}`);
}

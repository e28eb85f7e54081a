/**
 * Safety of the cluster under randomized faults (`npm run bench -- fencing`; DRE_BENCH_TRIALS, default
 * 200): each trial picks a host (the owner of the shared VM more often than not), a fault (its daemon
 * SIGKILLed, its link cut, its daemon paused) and a duration from half the TTL to three TTLs, ends
 * the fault, and waits until the guest answers somewhere. A separate process samples every 20 ms
 * which hosts have a live QEMU of the VM. Counted: trials where two hosts ran it at once (0 allowed),
 * where it was lost (no host runs it within 90 s of the fault's end; 0 allowed), and where the
 * fencing token in the guard went backwards (0 allowed).
 */
import '../test/support/env.js';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../src/core/proc.js';
import { tearDownCluster } from '../test/support/cluster.js';
import { BenchCluster, FAULTS } from './cluster-support.js';

const TRIALS = Number(process.env.DRE_BENCH_TRIALS || 200);
const TTL_S = 3;

/** The sampler: prints a JSON line whenever QEMUs of `vm` are alive in more than one host's run dir. */
const SAMPLER = `
const fs = require('fs');
const [vm, runs] = [process.argv[1], JSON.parse(process.argv[2])];
let samples = 0;
setInterval(() => {
  const live = new Set();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync('/proc/' + p + '/cmdline', 'utf8');
      if (!cmd.startsWith('qemu-system') && !cmd.includes('/qemu-system')) continue;
      const stat = fs.readFileSync('/proc/' + p + '/stat', 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
      if (state === 'Z' || state === 'X') continue;
      for (const [name, run] of Object.entries(runs)) if (cmd.includes(run + '/') && cmd.includes(vm)) live.add(name);
    } catch {}
  }
  samples++;
  if (live.size > 1) console.log(JSON.stringify({ time: new Date().toISOString(), hosts: [...live] }));
}, 20);
process.on('SIGTERM', () => { console.error(samples); process.exit(0); });
`;

export async function bench(): Promise<void> {
  // Stopped by a signal (an hour-long run), it still tears its cluster down: the exit handler does.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  const vm = `bft-${process.pid}`;
  const b = await BenchCluster.make(process.env.DRE_TEST_TMP!, vm, TTL_S);
  const runs = Object.fromEntries(b.c.hosts.map((h) => [h.name, h.run]));
  const overlaps = join(process.env.DRE_TEST_TMP!, 'overlaps.jsonl');
  writeFileSync(overlaps, '');
  const sampler = spawn(process.execPath, ['-e', SAMPLER, vm, JSON.stringify(runs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let samples = '';
  sampler.stdout.on('data', (d: Buffer) => {
    writeFileSync(overlaps, d, { flag: 'a' });
    process.stdout.write(`two hosts run it: ${d}`); // in the log too: a run that dies early keeps its evidence
  });
  sampler.stderr.on('data', (d: Buffer) => (samples += d.toString()));
  let lost = 0;
  let backwards = 0;
  let lastToken = 0;
  const byFault: Record<string, number> = {};
  try {
    for (let trial = 0; trial < TRIALS; trial++) {
      const owner = await b.owner();
      const h = owner && Math.random() < 0.7 ? owner : b.c.hosts[Math.floor(Math.random() * b.c.hosts.length)];
      const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
      const holdMs = Math.round((0.5 + Math.random() * 2.5) * TTL_S * 1000);
      byFault[fault] = (byFault[fault] ?? 0) + 1;
      const end = b.inflict(h, fault);
      await sleep(holdMs);
      await end();
      let back = false;
      for (const deadline = Date.now() + 90_000; !back && Date.now() < deadline; await sleep(200)) {
        const o = await b.owner();
        back = o !== undefined && b.answers(o);
      }
      if (!back) lost++;
      const token = (JSON.parse(readFileSync(join(b.c.exportDir, `${vm}.guard`), 'utf8')) as { token: number }).token;
      if (token < lastToken) backwards++;
      lastToken = token;
      console.log(
        `trial ${trial}: ${fault.padEnd(5)} ${h.name}${h === owner ? ' (owner)' : ''} for ${holdMs} ms: ${back ? 'running' : 'LOST'} on ${(await b.owner())?.name ?? '-'}, token ${token}`,
      );
      await sleep(TTL_S * 1000); // the faulted host is a member again
    }
  } finally {
    sampler.kill('SIGTERM');
    await new Promise((r) => sampler.once('exit', r));
    tearDownCluster();
  }
  const twice = readFileSync(overlaps, 'utf8').split('\n').filter(Boolean);
  console.log(
    `trials ${TRIALS} (${Object.entries(byFault)
      .map(([f, n]) => `${f} ${n}`)
      .join(', ')}), TTL ${TTL_S} s, ${samples.trim()} samples of 20 ms`,
  );
  console.log(
    `two hosts running it at once: ${twice.length} samples${twice.length ? ` (first: ${twice[0]})` : ''}   lost: ${lost}   token backwards: ${backwards}   goal 0 / 0 / 0`,
  );
}

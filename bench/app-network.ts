/**
 * Application container networking: what a veth on the bridge and the SSH port (an nftables DNAT
 * element) add to start, and what the DNAT costs an SSH session and a TCP banner compared with going to
 * the container's address directly. Its own bridge and subnet (never the default one); medians and ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { report, timeIt } from './stats.js';
import { sshArgs } from '../test/support/ssh.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const PORT = 42_000 + (process.pid % 1000);

/** Connects, waits for the first bytes (the SSH banner), closes. */
function banner(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    s.once('data', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-net-');
  chmodSync(tmp, 0o711); // passable for the containers' mapped root
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  mkdirSync(join(tmp, 'root', 'app'), { recursive: true });
  writeFileSync(join(tmp, 'root', 'app', 'network.json'), JSON.stringify({ bridge: 'drb0', subnet: '10.252.0.0/24' }));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'key')]);
  const sshKey = readFileSync(join(tmp, 'key.pub'), 'utf8');
  const { app } = await import('../src/index.js');
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  const kinds = { ssh: { port: PORT, sshKey }, veth: {}, loopback: { network: false } } as const;
  const ssh = (host: string, port: number) => spawnSync('ssh', sshArgs(join(tmp, 'key'), port, ['LogLevel=ERROR'], `root@${host}`, 'true'));
  try {
    for (const [k, config] of Object.entries(kinds)) await app.create(k, config);
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of Object.keys(kinds).map((_, i, ks) => ks[(i + round) % ks.length])) {
        add(`start (${k})`, await timeIt(() => app.start(k)));
      }
      const address = app.info('ssh').address!;
      for (let i = 0; i < 100 && ssh('127.0.0.1', PORT).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
      add('ssh true via 127.0.0.1:PORT', await timeIt(() => ssh('127.0.0.1', PORT)));
      add('ssh true to the address', await timeIt(() => ssh(address, 22)));
      add('banner via 127.0.0.1:PORT', await timeIt(() => banner('127.0.0.1', PORT)));
      add('banner from the address', await timeIt(() => banner(address, 22)));
      // Rotated per round, so that no kind always goes first.
      const order = Object.keys(kinds).map((_, i, ks) => ks[(i + round) % ks.length]);
      for (const k of order) add(`stop -k (${k})`, await timeIt(() => app.stop(k, { timeoutMs: 0 })));
    }
  } finally {
    for (const k of Object.keys(kinds)) {
      await app.stop(k, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(k).catch(() => {});
    }
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp); // engines, mounts, cgroups and the root's id reservation
    rmSync(tmp, { recursive: true, force: true });
  }
  report('start, veth on the bridge', times['start (veth)'], times['start (loopback)']);
  report('start, veth + SSH port (DNAT)', times['start (ssh)'], times['start (loopback)']);
  report('stop -k, veth on the bridge', times['stop -k (veth)'], times['stop -k (loopback)']);
  report('stop -k, veth + SSH port (DNAT)', times['stop -k (ssh)'], times['stop -k (loopback)']);
  report('ssh true, DNAT vs direct', times['ssh true via 127.0.0.1:PORT'], times['ssh true to the address']);
  report('TCP banner, DNAT vs direct', times['banner via 127.0.0.1:PORT'], times['banner from the address']);
}

/**
 * Live migration of a 256 MiB guest between two D-RE hosts (network namespaces joined by a veth pair,
 * disk on nfs-ganesha in a third), idle and with 96 MiB of dirty RAM: D-RE's migrate (dre-sys in each
 * host's namespace) against raw QMP `migrate` between two QEMUs with the same command line and a disk
 * on the same share, interleaved in one run, both directions. Times are QEMU's own (query-migrate
 * total-time, downtime); "ours, whole call" is D-RE's migrate from call to return (checks, source
 * QEMU ended, lease handed over).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../test/support/env.js';
import { hostCli, setUpTwoHosts, tearDownTwoHosts, type Host } from '../test/support/twohosts.js';
import { run } from '../src/core/run.js';
import { isAlive, sleep } from '../src/core/proc.js';
import { execInGuest, ping } from '../src/sys/agent.js';
import { baseDiskPath, baseInitrdPath, baseKernelPath } from '../src/sys/layout.js';
import { enterCgroups } from '../src/sys/hostgroup.js';
import { qemuArgs } from '../src/sys/machine.js';
import { Qmp } from '../src/sys/qmp/monitor.js';
import { median, pair } from './stats.js';

const ROUNDS = Number(process.env.DRE_BENCH_ROUNDS || 4);
const MEMORY_MIB = 256;

interface Sample {
  total: number;
  downtime: number;
  bytes: number;
  wall?: number;
}

function must(h: Host, args: string[]): string {
  const r = hostCli(h, args);
  if (r.code !== 0) throw new Error(`${h.ns}: dre-sys ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A raw QEMU in host h's namespace, by the same command line as D-RE's, on an image on the share. */
async function rawQemu(h: Host, dir: string, disk: string, incomingPort?: number): Promise<{ pid: number; qmp: string; agent: string }> {
  const f = (x: string) => join(dir, `${h.ns}-${x}`);
  const args = qemuArgs({
    name: 'raw-mig',
    accel: 'tcg',
    memoryMiB: MEMORY_MIB,
    kernel: baseKernelPath('default'),
    initrd: baseInitrdPath('default'),
    disk,
    diskFormat: 'qcow2',
    qmpSocket: f('qmp.sock'),
    agentSocket: f('agent.sock'),
    consoleSocket: f('console.sock'),
    consoleLog: f('console.log'),
    pidFile: f('qemu.pid'),
    incoming: incomingPort !== undefined,
  }).filter((a) => a !== '-S');
  const r = await run('ip', ['netns', 'exec', h.ns, 'qemu-system-x86_64', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  const pid = Number(readFileSync(f('qemu.pid'), 'utf8'));
  enterCgroups(`raw-mig-${h.ns}`, pid); // a cgroup of its own, as D-RE's QEMU has
  if (incomingPort !== undefined) {
    const q = await Qmp.connect(f('qmp.sock'));
    await q.execute('migrate-incoming', { uri: `tcp:0.0.0.0:${incomingPort}` });
    q.close();
  } else while (!(await ping(f('agent.sock'), 2_000))) if (!isAlive(pid)) throw new Error('raw QEMU died');
  return { pid, qmp: f('qmp.sock'), agent: f('agent.sock') };
}

/** Raw QMP migrate from `from` to a fresh incoming QEMU on host `to`; the old QEMU is ended after. */
async function rawMigrate(from: { pid: number; qmp: string; agent: string }, to: Host, dir: string, disk: string, port: number) {
  const dest = await rawQemu(to, dir, disk, port);
  const q = await Qmp.connect(from.qmp);
  const t0 = performance.now();
  await q.execute('migrate', { uri: `tcp:${to.addr}:${port}` });
  let info: { status: string; 'total-time'?: number; downtime?: number; ram?: { transferred: number } };
  for (;;) {
    info = await q.execute('query-migrate');
    if (info.status === 'completed') break;
    if (info.status === 'failed') throw new Error('raw migration failed');
    await sleep(50);
  }
  const wall = performance.now() - t0;
  await q.execute('quit').catch(() => undefined);
  q.close();
  while (isAlive(from.pid)) await sleep(5);
  return { next: dest, sample: { total: info['total-time']!, downtime: info.downtime!, bytes: info.ram!.transferred, wall } };
}

function line(what: string, ours: Sample[], raw: Sample[]): void {
  const m = (xs: Sample[], k: keyof Sample) => median(xs.map((x) => x[k]!));
  const r = (a: number, b: number) => (a / b).toFixed(2);
  console.log(
    `${what.padEnd(22)} total ours ${m(ours, 'total').toFixed(0)} ms raw ${m(raw, 'total').toFixed(0)} ms ratio ${r(m(ours, 'total'), m(raw, 'total'))} (goal <= 1.2)` +
      ` | downtime ours ${m(ours, 'downtime')} ms raw ${m(raw, 'downtime')} ms ratio ${r(m(ours, 'downtime'), m(raw, 'downtime'))} (goal <= 1.1)` +
      ` | MiB ours ${(m(ours, 'bytes') / 2 ** 20).toFixed(1)} raw ${(m(raw, 'bytes') / 2 ** 20).toFixed(1)}` +
      ` | whole call ours ${m(ours, 'wall').toFixed(0)} ms, raw client ${m(raw, 'wall').toFixed(0)} ms`,
  );
  console.log(`${''.padEnd(22)} downtimes (ms) ours ${ours.map((x) => x.downtime).join(' ')} | raw ${raw.map((x) => x.downtime).join(' ')}`);
}

export async function bench(): Promise<void> {
  const tmp = process.env.DRE_TEST_TMP!;
  const net = await setUpTwoHosts(tmp);
  const [A, B] = [net.a, net.b];
  const name = `benchmig-${process.pid}`;
  try {
    must(A, ['create', name, '--memory', String(MEMORY_MIB), '--accel', 'tcg']);
    must(A, ['share', name]);
    must(A, ['start', name]);
    process.env.DRE_ROOT = A.root; // the raw QEMUs boot host A's default base (built by the create above)
    const rawDisk = `${net.nfsUrl}/raw-mig.qcow2`;
    const conv = await run('ip', ['netns', 'exec', A.ns, 'qemu-img', 'convert', '-q', '-O', 'qcow2', baseDiskPath('default'), rawDisk]);
    if (conv.code !== 0) throw new Error(conv.stderr);
    let rawGuest = await rawQemu(A, tmp, rawDisk);
    console.log(`two hosts in network namespaces, disk on NFS (ganesha); ${MEMORY_MIB} MiB guests, tcg; ${ROUNDS} rounds each way`);
    let ourHost = A;
    let rawHost = A;
    let port = 5700;
    for (const dirty of [false, true]) {
      if (dirty) {
        const fill = ['sh', '-c', 'dd if=/dev/urandom of=/tmp/dirty bs=1M count=96 2>/dev/null && sync'];
        must(ourHost, ['exec', name, '--', ...fill]);
        await execInGuest(rawGuest.agent, fill, 120_000);
      }
      const ours: Sample[] = [];
      const raw: Sample[] = [];
      for (let i = 0; i < 2 * ROUNDS; i++) {
        const ourTarget = ourHost === A ? B : A;
        const rawTarget = rawHost === A ? B : A;
        const doOurs = () => {
          const p = port++;
          must(ourTarget, ['immigrate', name, String(p)]);
          const r = JSON.parse(must(ourHost, ['migrate', name, ourTarget.addr, String(p), '--json'])) as {
            totalTimeMs: number;
            downtimeMs: number;
            transferredBytes: number;
            elapsedMs: number;
          };
          ours.push({ total: r.totalTimeMs, downtime: r.downtimeMs, bytes: r.transferredBytes, wall: r.elapsedMs });
          ourHost = ourTarget;
        };
        const doRaw = async () => {
          const r = await rawMigrate(rawGuest, rawTarget, tmp, rawDisk, port++);
          raw.push(r.sample);
          rawGuest = r.next;
          rawHost = rawTarget;
        };
        await pair(i, doOurs, doRaw);
      }
      line(dirty ? 'migrate, 96 MiB dirty' : 'migrate, idle', ours, raw);
    }
  } finally {
    tearDownTwoHosts();
  }
}

if (process.argv[1]?.endsWith('sys-migration.js')) await bench();

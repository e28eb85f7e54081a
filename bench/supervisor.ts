/**
 * The recovery supervisor. (1) Detect and recover, through a real dred with a 200 ms HTTP probe: from
 * the moment the service hangs (SIGSTOP) to its page answering again after a rollback to the snapshot
 * marked good, in parts (detection, recovery, ready). (2) Rollback to running (stop -k, load, start) in
 * process against the same steps with the raw lxc tools on a dir-backed container with the same data
 * (+64 MiB and +1 GiB), interleaved; with our parts, and the first exec probe after each (the supervisor's readiness).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, linkSync, chmodSync } from 'node:fs';
import { get, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, pair, report, timeIt } from './stats.js';

const HANGS = 15;
/** Rollback to running with this much changed data (MiB), this many rounds each (the raw tools copy it every time). */
const ROLLBACK_SIZES: [number, number][] = [
  [64, 9],
  [1024, 5],
];

/** Our rollback's parts, and the first exec probe after it (what the supervisor runs to call it healthy). */
const newParts = () => ({ 'stop -k': [] as number[], load: [] as number[], start: [] as number[], 'first exec probe': [] as number[] });
type Parts = ReturnType<typeof newParts>;
const here = dirname(fileURLToPath(import.meta.url));

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];

function page(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get({ host, port: 80, path: '/', timeout: 300, agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(res.statusCode === 200 ? b.trim() : undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** Reads dred's event stream; `next(pred)` resolves at the first matching event from now on. */
export function events(sock: string) {
  const waiters: { pred: (e: any) => boolean; resolve: (t: number) => void }[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  let buf = '';
  const req = request({ socketPath: sock, path: '/1.0/events' }, (res) =>
    res.on('data', (c: Buffer) => {
      buf += c.toString();
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const data = buf
          .slice(0, cut)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        buf = buf.slice(cut + 2);
        if (!data) continue;
        const e = JSON.parse(data.slice(6));
        const now = performance.now();
        for (const w of waiters.splice(0)) w.pred(e) ? w.resolve(now) : waiters.push(w);
      }
    }),
  );
  req.end();
  const next = (pred: (e: any) => boolean) =>
    // eslint-disable-line @typescript-eslint/no-explicit-any
    new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no such event from dred in 30 s')), 30_000);
      waiters.push({ pred, resolve: (t) => (clearTimeout(timer), resolve(t)) });
    });
  return { next, close: () => req.destroy() };
}

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-sup-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { sweep, useTestNetwork } = await import('../test/support/sweep.js');
  useTestNetwork(tmp); // a bridge of its own, which the sweep removes
  const { appDriver: app } = await import('../src/app/driver.js');
  const { upperDir } = await import('../src/app/layout.js');
  const { baseRootfs, DEFAULT_BASE } = await import('../src/app/base.js');
  const { run } = await import('../src/core/run.js');
  const { sleep } = await import('../src/core/proc.js');
  const sh = async (name: string, script: string) => {
    const r = await run('lxc-attach', ['-n', name, '-P', join(tmp, 'root', 'app', 'containers'), '--', 'sh', '-c', script]);
    if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
  };
  let dred: ChildProcess | undefined;
  const rawPath = join(tmp, 'lxc');
  const made: string[] = [];
  const detect: number[] = [];
  const recover: number[] = [];
  const ready: number[] = [];
  const total: number[] = [];
  const rawMade: string[] = [];
  const rollbacks: [number, { ours: number[]; raw: number[]; parts: Parts }][] = [];
  try {
    // (1) detect and recover through dred
    await app.create('web', {});
    made.push('web');
    await app.start('web');
    await sh(
      'web',
      "mkdir -p /www && echo good > /www/index.html && printf '#!/bin/sh\\nhttpd -p 80 -h /www\\n' > /etc/init.d/rc.local && chmod +x /etc/init.d/rc.local",
    );
    await app.stop('web', { timeoutMs: 0 });
    await app.saveSnapshot('web', 'good');
    await app.markGood('web', 'good');
    await app.setPolicy('web', {
      probe: { type: 'http', port: 80, path: '/', intervalMs: 200, timeoutMs: 150, retries: 2, startPeriodMs: 0 },
      onUnhealthy: 'rollback:last-good',
      max: 1000,
      windowMs: 1000,
    }); // no back-off between rounds
    await app.start('web');
    const address = app.info('web').address!;
    dred = spawn(process.execPath, [join(here, '..', 'src', 'cli', 'dred.js')], { env: process.env, stdio: ['ignore', 'ignore', 'inherit'] });
    const sock = join(tmp, 'run', 'dred.sock');
    while (!existsSync(sock)) await sleep(50);
    await sleep(500);
    const ev = events(sock);
    for (let i = 0; i < HANGS; i++) {
      while ((await page(address)) !== 'good') await sleep(20);
      await sleep(1200); // healthy for a while, and the last recovery out of the window
      const failed = ev.next((e) => e.name === 'web' && e.type === 'health-failed');
      const recovering = ev.next((e) => e.name === 'web' && e.type === 'recovering');
      const recovered = ev.next((e) => e.name === 'web' && e.type === 'recovered');
      const t0 = performance.now();
      await sh('web', 'kill -STOP $(pidof httpd)');
      const [tFailed, tRecovering, tRecovered] = await Promise.all([failed, recovering, recovered]);
      while ((await page(address)) !== 'good') await sleep(5);
      const tReady = performance.now();
      detect.push(tFailed - t0);
      recover.push(tRecovered - tRecovering);
      ready.push(tReady - tRecovered);
      total.push(tReady - t0);
    }
    ev.close();
    dred.kill('SIGTERM');
    dred = undefined;
    await app.setPolicy('web', null);

    // (2) rollback to running, ours in process against the raw lxc tools, both with the same changed data
    const lxc = async (name: string, tool: string, args: string[]) => {
      const r = await run(tool, ['-n', name, '-P', rawPath, ...args], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr.trim()}`);
    };
    for (const [mib, rounds] of ROLLBACK_SIZES) {
      const name = `rb${mib}`;
      const raw = `raw${mib}`;
      const blob = join(tmp, `blob${mib}`);
      const fd = openSync(blob, 'w');
      for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20));
      closeSync(fd);
      await app.create(name, { network: false });
      made.push(name);
      linkSync(blob, join(upperDir(name), 'blob'));
      await app.saveSnapshot(name, 'good');
      mkdirSync(join(rawPath, raw), { recursive: true });
      rawMade.push(raw);
      await run('cp', ['-a', baseRootfs(DEFAULT_BASE), join(rawPath, raw, 'rootfs')]);
      await run('cp', [blob, join(rawPath, raw, 'rootfs', 'blob')]);
      rmSync(blob);
      writeFileSync(
        join(rawPath, raw, 'config'),
        `lxc.uts.name = ${raw}\nlxc.rootfs.path = dir:${join(rawPath, raw, 'rootfs')}\nlxc.net.0.type = empty\nlxc.include = /usr/share/lxc/config/common.conf\n`,
      );
      await lxc(raw, 'lxc-snapshot', []);
      await app.start(name);
      await lxc(raw, 'lxc-start', []);
      const result = { ours: [] as number[], raw: [] as number[], parts: newParts() };
      const part = async (what: keyof Parts, fn: () => Promise<unknown>) => result.parts[what].push(await timeIt(fn));
      for (let i = 0; i < rounds; i++) {
        await pair(
          i,
          async () => {
            await run('sync', []); // the other side's copy written back first: an fsync here would wait for it
            result.ours.push(
              await timeIt(async () => {
                await part('stop -k', () => app.stop(name, { timeoutMs: 0 }));
                await part('load', () => app.loadSnapshot(name, 'good'));
                await part('start', () => app.start(name));
              }),
            );
            await part('first exec probe', () => app.execCapture(name, ['/bin/sh', '-c', 'true'], 5000));
          },
          async () => {
            await run('sync', []);
            result.raw.push(
              await timeIt(async () => {
                await lxc(raw, 'lxc-stop', ['-k']);
                await lxc(raw, 'lxc-snapshot', ['-r', 'snap0', '-N', raw]);
                await lxc(raw, 'lxc-start', []);
              }),
            );
          },
        );
      }
      await lxc(raw, 'lxc-stop', ['-k']);
      await app.stop(name, { timeoutMs: 0 });
      await app.destroy(name);
      made.splice(made.indexOf(name), 1);
      rmSync(join(rawPath, raw), { recursive: true, force: true });
      rollbacks.push([mib, result]);
    }
  } finally {
    dred?.kill('SIGKILL');
    for (const n of made) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(n).catch(() => {});
    }
    for (const raw of rawMade) await run('lxc-stop', ['-n', raw, '-P', rawPath, '-k']).catch(() => {});
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
  const line = (what: string, xs: number[]) =>
    console.log(`${what.padEnd(34)} p50 ${median(xs).toFixed(1).padStart(8)} ms   p95 ${p95(xs).toFixed(1).padStart(8)} ms`);
  line('hang -> health-failed (detection)', detect);
  line('recovering -> recovered (rollback)', recover);
  line('recovered -> page answers (ready)', ready);
  line('hang -> page answers (total)', total);
  console.log(`detect-and-recover total p95 ${p95(total).toFixed(0)} ms (goal <= 1500 ms with a 200 ms probe)`);
  for (const [mib, r] of rollbacks) {
    report(`rollback to running +${mib}MiB vs lxc`, r.ours, r.raw, '<= 50 ms p50');
    for (const [what, xs] of Object.entries(r.parts)) line(`  ${what}`, xs);
  }
}

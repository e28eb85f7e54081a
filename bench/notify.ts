/**
 * `npm run bench -- notify`: the supervisor's newer probes on a busybox app container.
 * (1) an exec probe's command (`true` through execCapture, what the probe runs) against a raw
 *     `lxc-attach -- true`, interleaved; (2) a heartbeat client (Debian's systemd-notify WATCHDOG=1
 *     every 100 ms, through dred's notify relay) killed: to `health-failed` with a 500 ms heartbeat
 *     timeout checked every 100 ms, and the restart that follows; (3) `start` with readiness: from the
 *     start call to dred's `ready` event (READY=1 sent by the init's rc.local at once), against the
 *     start alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, pair, report, timeIt } from './stats.js';
import { events } from './supervisor.js';

const ROUNDS = 10;
const here = dirname(fileURLToPath(import.meta.url));
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const NOTIFY = '/opt/dre/lib/ld-linux-x86-64.so.2 --library-path /opt/dre/lib:/opt/dre/lib/systemd /root/systemd-notify';

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-ntf-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { sweep } = await import('../test/support/sweep.js');
  const { appDriver: app } = await import('../src/app/driver.js');
  const { run } = await import('../src/core/run.js');
  const { sleep } = await import('../src/core/proc.js');
  const lxcPath = join(tmp, 'root', 'app', 'containers');
  const sh = async (script: string, input?: string) => {
    const r = await run('lxc-attach', ['-n', 'hb', '-P', lxcPath, '--', 'sh', '-c', script], { input });
    if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
  };
  let dred: ChildProcess | undefined;
  const exec = { ours: [] as number[], raw: [] as number[] };
  const detect: number[] = [];
  const restart: number[] = [];
  const ready = { ours: [] as number[], raw: [] as number[] };
  try {
    await app.create('hb', { network: false });
    await app.start('hb');
    await sh('base64 -d > /root/systemd-notify && chmod +x /root/systemd-notify', readFileSync('/usr/bin/systemd-notify').toString('base64'));
    await sh(`printf '#!/bin/sh\\n[ -e /root/quiet ] || ${NOTIFY} --ready\\n' > /etc/init.d/rc.local && chmod +x /etc/init.d/rc.local && touch /root/quiet`);

    // (1) an exec probe's command against the raw tool
    for (let i = 0; i < 3 * ROUNDS; i++) {
      await pair(
        i,
        async () => exec.ours.push(await timeIt(() => app.execCapture('hb', ['/bin/sh', '-c', 'true'], 5000))),
        async () => exec.raw.push(await timeIt(() => run('lxc-attach', ['-n', 'hb', '-P', lxcPath, '--', '/bin/sh', '-c', 'true']))),
      );
    }

    dred = spawn(process.execPath, [join(here, '..', 'src', 'cli', 'dred.js')], { env: process.env, stdio: ['ignore', 'ignore', 'inherit'] });
    const sock = join(tmp, 'run', 'dred.sock');
    while (!existsSync(sock)) await sleep(50);
    await sleep(500);
    const ev = events(sock);

    // (2) heartbeats stop
    await app.setPolicy('hb', {
      probe: { type: 'heartbeat', intervalMs: 100, timeoutMs: 500, retries: 1, startPeriodMs: 1000 },
      onUnhealthy: 'restart',
      max: 1000,
      windowMs: 1000,
    });
    for (let i = 0; i < ROUNDS; i++) {
      await sh(
        `(while true; do NOTIFY_SOCKET=/run/dre-notify/notify ${NOTIFY} WATCHDOG=1; sleep 0.1; done) </dev/null >/dev/null 2>&1 & echo $! > /root/hb.pid`,
      );
      await sleep(1500); // past the start period, healthy on heartbeats
      const failed = ev.next((e) => e.name === 'hb' && e.type === 'health-failed');
      const recovered = ev.next((e) => e.name === 'hb' && e.type === 'recovered');
      const t0 = performance.now();
      await sh('kill $(cat /root/hb.pid)');
      const [tFailed, tRecovered] = await Promise.all([failed, recovered]);
      detect.push(tFailed - t0);
      restart.push(tRecovered - tFailed);
    }
    await app.setPolicy('hb', null);

    // (3) start to READY=1 (rc.local sends it at once) against the start alone
    await sh('rm -f /root/quiet');
    for (let i = 0; i < ROUNDS; i++) {
      await app.stop('hb', { timeoutMs: 0 });
      const t0 = performance.now();
      const got = ev.next((e) => e.name === 'hb' && e.type === 'ready');
      await app.start('hb');
      ready.raw.push(performance.now() - t0);
      ready.ours.push((await got) - t0);
    }
    ev.close();
  } finally {
    dred?.kill('SIGTERM');
    await app.stop('hb', { timeoutMs: 0 }).catch(() => {});
    await app.destroy('hb').catch(() => {});
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
  report('exec probe (true) vs lxc-attach', exec.ours, exec.raw);
  const line = (what: string, xs: number[]) =>
    console.log(`${what.padEnd(34)} p50 ${median(xs).toFixed(1).padStart(8)} ms   p95 ${p95(xs).toFixed(1).padStart(8)} ms`);
  line('heartbeat stops -> health-failed', detect);
  line('health-failed -> recovered (restart)', restart);
  report('start -> READY=1 event vs start', ready.ours, ready.raw);
}

/**
 * D-Aware: the cost of a DLOG call and of our printf against libc's own, and of the stop hook's
 * D-Aware phase against a bare kill-and-wait of the same process.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { report } from './stats.js';

const BATCH = 2000;

async function logging(): Promise<void> {
  const { DLOG_INFO, daware_log_open, LOG_USER, LOG_INFO, sprintf } = await import('../src/daware/index.js');
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const syslog = libc.func('void syslog(int, const char *, ...)');
  const snprintf = libc.func('int snprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, ...)');
  daware_log_open('bench', 0, LOG_USER);
  const buf = Buffer.alloc(256);
  const ours: number[] = [];
  const raw: number[] = [];
  const oursFmt: number[] = [];
  const rawFmt: number[] = [];
  for (let round = 0; round < 15; round++) {
    let t = performance.now();
    for (let i = 0; i < BATCH; i++) DLOG_INFO('request %d took %.3f ms from %s', i, 1.5, 'client');
    ours.push(((performance.now() - t) / BATCH) * 1000);
    t = performance.now();
    for (let i = 0; i < BATCH; i++) syslog(LOG_INFO, '%s', 'str', `request ${i} took 1.500 ms from client`);
    raw.push(((performance.now() - t) / BATCH) * 1000);
    t = performance.now();
    for (let i = 0; i < BATCH; i++) sprintf('%5d|%-8s|%.3f|%e|%x', i, 'abc', 1.5, 12345.678, i);
    oursFmt.push(((performance.now() - t) / BATCH) * 1000);
    t = performance.now();
    for (let i = 0; i < BATCH; i++) snprintf(buf, 256, '%5d|%-8s|%.3f|%e|%x', 'int', i, 'str', 'abc', 'double', 1.5, 'double', 12345.678, 'int', i);
    rawFmt.push(((performance.now() - t) / BATCH) * 1000);
  }
  console.log('(the next two lines are µs per call, not ms; no daemon on /dev/log: both sides pay the same failed connect)');
  report('DLOG_INFO vs libc syslog (µs)', ours, raw);
  report('sprintf vs libc snprintf (µs)', oursFmt, rawFmt);
}

async function stopHook(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-daware-');
  process.env.DRE_ROOT = `${tmp}/root`;
  process.env.DRE_RUNDIR = `${tmp}/run`;
  const { appDriver: app } = await import('../src/app/driver.js');
  const { runningInit } = await import('../src/app/state.js');
  const { terminateRegistered } = await import('../src/app/registrydir.js');
  const { isAlive, waitFor } = await import('../src/core/proc.js');
  const name = 'bench-daware';
  const sh = (script: string) => spawnSync('lxc-attach', ['-n', name, '-P', `${tmp}/root/app/containers`, '--', 'sh', '-c', script], { encoding: 'utf8' });
  const program = `import { daware_termination_register_callback as r } from '/opt/dre/daware.js';
r(15, () => 0, null); console.log(process.pid); setInterval(() => {}, 1e9);`;
  try {
    await app.create(name, {});
    await app.start(name);
    spawnSync('lxc-attach', ['-n', name, '-P', `${tmp}/root/app/containers`, '--', 'sh', '-c', 'cat > /root/b.mjs'], { input: program });
    const launch = async (): Promise<number> => {
      sh('rm -f /root/pid; /opt/dre/bin/node /root/b.mjs > /root/pid 2>/dev/null &');
      const vpid = await waitFor(() => Number(sh('cat /root/pid').stdout.trim()) || undefined, 10_000, 50);
      if (vpid === undefined) throw new Error(`the D-Aware program did not start: ${sh('cat /root/pid').stdout}`);
      const list = await waitFor(async () => (await app.registeredPids(name)).find((p) => p.vpid === vpid), 10_000, 20);
      return list!.pid;
    };
    const ours: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < 7; round++) {
      await launch();
      let t = performance.now();
      await terminateRegistered(name, runningInit(name), 10_000);
      ours.push(performance.now() - t);
      const pid = await launch();
      t = performance.now();
      process.kill(pid, 'SIGTERM');
      await waitFor(() => (isAlive(pid) ? undefined : true), 10_000, 20);
      raw.push(performance.now() - t);
      sh(`rm -f /run/daware/*`);
    }
    report('stop hook, 1 process vs kill+wait', ours, raw);
  } finally {
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  await logging();
  await stopHook();
}

/**
 * D-Aware: the cost of a DLOG call and of our printf against libc's own (Node, and C's libdaware),
 * and of the stop hook's D-Aware phase against a bare kill-and-wait of the same process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  chmodSync(tmp, 0o711); // an unprivileged container's mapped root passes through it
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
    // The runtime tree's binds outlive the container (shared by a root's containers): the tests' sweep removes them.
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The C side: bench/daware-clib.c, static against libdaware.a, with busybox syslogd on a private /dev/log. */
function clibLogging(): void {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const lib = join(repo, 'c', 'daware');
  execFileSync('make', ['-s', '-C', lib], { stdio: 'inherit' });
  const tmp = mkdtempSync('/tmp/dre-bench-clib-');
  try {
    const exe = join(tmp, 'bench');
    execFileSync('gcc', [
      '-O2',
      '-I',
      join(lib, 'build', 'root', 'include'),
      '-static',
      '-o',
      exe,
      join(repo, 'bench', 'daware-clib.c'),
      join(lib, 'build', 'root', 'lib', 'libdaware.a'),
    ]);
    // A private mount namespace: a fresh /dev with only syslogd's socket, the host's /dev untouched.
    const script = `mount -t tmpfs -o mode=0755 tmpfs /dev && mknod -m 666 /dev/null c 1 3 || exit 1
busybox syslogd -n -O ${tmp}/messages & pid=$!
for i in $(seq 100); do [ -S /dev/log ] && break; sleep 0.05; done
${exe} 15 2000; kill $pid; wait $pid 2>/dev/null; exit 0`;
    writeFileSync(join(tmp, 'run.sh'), script);
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', join(tmp, 'run.sh')], { encoding: 'utf8', timeout: 300_000 });
    const rows = out
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number));
    console.log('(µs per call, not ms; C program, busybox syslogd listening on /dev/log)');
    report(
      'C DLOG_INFO vs syslog(3) (µs)',
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      '≤ 1.10',
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  clibLogging();
  await logging();
  await stopHook();
}

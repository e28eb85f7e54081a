/**
 * Many running application containers in one root (`npm run bench -- scale`): grows to 10, 100 and 500
 * running containers (BENCH_SCALE_SIZES) and at each size measures, against the raw lxc-* tools on a
 * container with the same config: start and stop -k of one more container (with and without an SSH
 * port), status of one, the full listing (names, status, base, address, port of every container) in
 * process and through `dre-app list`, and the memory per container: LXC's own (monitor + init PSS, and
 * the container's memory cgroup) beside what D-RE adds (its processes per container: none).
 * Every fifth container has an SSH port. Raises the host limits a few hundred containers need for the
 * run (kernel keys of the one mapped uid they share, inotify instances) and restores them.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, pair, report, timeIt } from './stats.js';

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10,100,500').split(',').map(Number);
const PARALLEL = 10;
const SAMPLES = Number(process.env.BENCH_ROUNDS ?? 7);
// The CLI users run: the bundle (scripts/bundle-cli.mjs) from its code cache.
const cliPath = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bin', 'dre-app.js');
const sh = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => execFileSync(cmd, args, { stdio: 'pipe', env: env ?? process.env, maxBuffer: 64 << 20 });

/** sysctl values for a few hundred containers: every unprivileged container's root is one host uid. */
const LIMITS: Record<string, string> = {
  'kernel/keys/maxkeys': '20000',
  'kernel/keys/maxbytes': '2000000',
  'fs/inotify/max_user_instances': '8192',
};

function raiseLimits(): () => void {
  const old = Object.fromEntries(Object.keys(LIMITS).map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
  for (const [k, v] of Object.entries(LIMITS)) if (Number(old[k]) < Number(v)) writeFileSync(`/proc/sys/${k}`, v);
  return () => {
    for (const [k, v] of Object.entries(old)) writeFileSync(`/proc/sys/${k}`, v);
  };
}

/** Runs `fn` on every item, PARALLEL at a time. */
async function each<T>(items: T[], fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const pssKiB = (pid: number) => {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** Host processes, by pid, whose command line or cgroup mentions `text`. */
function processesWith(text: string, where: 'cmdline' | 'cgroup'): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/${where}`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-scale-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  mkdirSync(join(tmp, 'root', 'app'), { recursive: true });
  // A subnet of the default's size (a /22), its own bridge.
  writeFileSync(join(tmp, 'root', 'app', 'network.json'), JSON.stringify({ bridge: 'drs0', subnet: '10.253.0.0/22' }));
  const restore = raiseLimits();
  const { app } = await import('../src/index.js');
  const { lxcPath, monitorPidPath } = await import('../src/app/layout.js');
  const { cgroupRoot } = await import('../src/core/paths.js');
  const { groupDir } = await import('../src/core/cgroup.js');
  const { lxcStartEnv } = await import('../src/app/lifecycle.js');
  const { makeRawContainer } = await import('./rawlxc.js');
  const { STATUS } = await import('../src/core/driver.js');
  const rawPath = join(tmp, 'raw');
  const raw = ['-n', 'raw', '-P', rawPath];
  const names: string[] = [];
  const rows: string[] = [];
  const t = (k: string) => (times[k] ??= []);
  let times: Record<string, number[]> = {};
  try {
    await app.create('probe', {});
    await app.create('probe-port', { port: 43_000 + (process.pid % 1000) });
    const template = join(tmp, 'probe.config');
    copyFileSync(join(lxcPath(), 'probe', 'config'), template);
    makeRawContainer(rawPath, 'raw', 'probe', template);
    // The raw container's veth must not take the probe's name or address: it gets the last address of the subnet.
    writeFileSync(
      join(rawPath, 'raw', 'config'),
      readFileSync(join(rawPath, 'raw', 'config'), 'utf8')
        .replace(/lxc\.net\.0\.veth\.pair = .*/, 'lxc.net.0.veth.pair = drs0-raw')
        .replace(/lxc\.net\.0\.hwaddr = .*/, 'lxc.net.0.hwaddr = 02:de:0a:fd:03:fe')
        .replace(/lxc\.net\.0\.ipv4\.address = \S+/, 'lxc.net.0.ipv4.address = 10.253.3.254/22'),
    );

    for (const size of SIZES) {
      const grow = Array.from({ length: size - names.length }, (_, i) => `s${names.length + i}`);
      const created = await timeIt(() =>
        each(grow, (n) => app.create(n, { port: (names.length + grow.indexOf(n)) % 5 === 0 ? 44_000 + names.length + grow.indexOf(n) : null })),
      );
      const started = await timeIt(() => each(grow, (n) => app.start(n)));
      names.push(...grow);
      const running = (await Promise.all(names.map((n) => app.status(n)))).filter((s) => s === STATUS.RUNNING).length;
      if (running !== size) throw new Error(`${size - running} of ${size} containers are not running`);
      times = {};
      for (let round = 0; round < SAMPLES; round++) {
        await pair(
          round,
          async () => t('start').push(await timeIt(() => app.start('probe'))),
          async () => t('raw start').push(await timeIt(() => sh('/usr/bin/lxc-start', [...raw, '-d'], lxcStartEnv()))),
        );
        t('start, port').push(await timeIt(() => app.start('probe-port')));
        await pair(
          round,
          async () => t('status').push(await timeIt(() => app.status('probe'))),
          async () => t('raw status').push(await timeIt(() => sh('lxc-info', [...raw, '-s']))),
        );
        await pair(
          round,
          async () => t('stop -k').push(await timeIt(() => app.stop('probe', { timeoutMs: 0 }))),
          async () => t('raw stop -k').push(await timeIt(() => sh('lxc-stop', [...raw, '-k']))),
        );
        t('stop -k, port').push(await timeIt(() => app.stop('probe-port', { timeoutMs: 0 })));
        t('list').push(await timeIt(() => app.list()));
        t('list rows').push(await timeIt(async () => Promise.all((await app.list()).map((n) => app.summary(n)))));
        t('dre-app list').push(await timeIt(() => sh(process.execPath, [cliPath, 'list'])));
        t('node -e ""').push(await timeIt(() => sh(process.execPath, ['-e', ''])));
        if (round < 3) t('lxc-ls -f').push(await timeIt(() => sh('lxc-ls', ['-f', '-P', lxcPath()])));
      }
      // Memory: LXC's monitor and init of every container; the root's app memory cgroup; D-RE's own processes.
      const monitors = names.map((n) => Number(readFileSync(monitorPidPath(n), 'utf8')));
      const inits = await Promise.all(names.map((n) => app.pid(n)));
      const monitorPss = monitors.reduce((a, p) => a + pssKiB(p), 0) / size;
      const initPss = inits.reduce((a, p) => a + pssKiB(p), 0) / size;
      const memGroup = readFileSync(join(groupDir('memory', `${cgroupRoot()}/app`)!, 'memory.usage_in_bytes'), 'utf8');
      const inContainers = new Set(processesWith(`/${cgroupRoot()}/app/`, 'cgroup'));
      const lxcMonitors = new Set(processesWith('[lxc monitor]', 'cmdline'));
      const dreExtra = processesWith(tmp, 'cmdline').filter((p) => p !== process.pid && !inContainers.has(p) && !lxcMonitors.has(p));
      console.log(
        `\n-- ${size} running containers (${size / 5} with SSH ports): grown by ${grow.length} in ${(created / 1000).toFixed(1)} s create + ${(started / 1000).toFixed(1)} s start, ${PARALLEL} at a time`,
      );
      report(`start of one more`, t('start'), t('raw start'), '<= 1.0x');
      report(`start of one more, with a port`, t('start, port'), t('start'), '<= 1.1x');
      report(`stop -k`, t('stop -k'), t('raw stop -k'), '<= 1.2x');
      report(`stop -k, with a port`, t('stop -k, port'), t('stop -k'));
      report(`status of one`, t('status'), t('raw status'));
      report(`list (names)`, t('list'), undefined);
      report(`list rows (name status base address port)`, t('list rows'), undefined, '<= 50 ms');
      report(`dre-app list vs node -e ""`, t('dre-app list'), t('node -e ""'), '<= 1.2x');
      report(`dre-app list vs lxc-ls -f`, t('dre-app list'), t('lxc-ls -f'));
      console.log(
        `memory per container: LXC monitor ${(monitorPss / 1024).toFixed(2)} MiB + init ${(initPss / 1024).toFixed(2)} MiB PSS; memory cgroup ${(Number(memGroup) / size / 2 ** 20).toFixed(2)} MiB; D-RE processes beside them: ${dreExtra.length} (${(dreExtra.reduce((a, p) => a + pssKiB(p), 0) / 1024).toFixed(1)} MiB PSS in all)`,
      );
      rows.push(
        `| ${size} | ${median(t('start')).toFixed(1)} / ${median(t('raw start')).toFixed(1)} | ${median(t('start, port')).toFixed(1)} | ${median(t('stop -k')).toFixed(1)} / ${median(t('raw stop -k')).toFixed(1)} | ${median(t('status')).toFixed(2)} | ${median(t('list rows')).toFixed(1)} | ${median(t('dre-app list')).toFixed(0)} / ${median(t('node -e ""')).toFixed(0)} / ${median(t('lxc-ls -f')).toFixed(0)} | ${(monitorPss / 1024).toFixed(2)} + ${(initPss / 1024).toFixed(2)} | ${dreExtra.length} |`,
      );
    }
    console.log(
      '\n| running | start ms (ours / lxc-start) | start with port | stop -k (ours / lxc-stop -k) | status | list rows in process | dre-app list / node -e "" / lxc-ls -f | LXC MiB PSS per container (monitor + init) | D-RE processes |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    const teardown = {
      stop: await timeIt(() => each(names, (n) => app.stop(n, { timeoutMs: 0 }))),
      destroy: await timeIt(() => each([...names, 'probe', 'probe-port'], (n) => app.destroy(n))),
    };
    console.log(`teardown of ${names.length}: stop -k ${(teardown.stop / 1000).toFixed(1)} s, destroy ${(teardown.destroy / 1000).toFixed(1)} s`);
  } finally {
    try {
      sh('lxc-stop', [...raw, '-k']);
    } catch {
      /* not running */
    }
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    restore();
    rmSync(tmp, { recursive: true, force: true });
  }
}

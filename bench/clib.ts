/**
 * The C interface: dre_app_status through libdreapp (a C program, one handle, over dred's socket)
 * against the in-process spec call (dre/app) and `lxc-info -s`, interleaved per round; and dre_app_start
 * through C against in-process (25 pairs: a start varies more than a status). Goals: at most 1 ms added
 * per status call, start within 1.1x.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, pair, report, timeIt } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
// A start varies by tens of ms on a shared machine (lxc-start alone): 7 pairs gave ratios from 0.8 to 1.4.
const START_ROUNDS = Number(process.env.BENCH_START_ROUNDS ?? 25);
const CALLS = 20; // status calls per round and side
const here = dirname(fileURLToPath(import.meta.url));
const sourceOf = (f: string) => join(here, '..', '..', 'bench', f);

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-');
  chmodSync(tmp, 0o711); // passable for the containers' mapped root
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  // The spec's create has no network switch: give this root a bridge and subnet of its own, as the tests do.
  (await import('../test/support/sweep.js')).useTestNetwork(tmp);
  const A = await import('../src/spec/app.js'); // what the package exports as dre/app
  const { appDriver } = await import('../src/app/driver.js');
  const { lxcPath } = await import('../src/app/layout.js');
  const program = join(tmp, 'clib');
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'dreapp'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('cc', ['-O2', '-o', program, sourceOf('clib.c'), ...flags]);
  const dred = spawn(process.execPath, [join(here, '..', 'src', 'cli', 'dred.js')], { env: process.env, stdio: 'ignore' });
  const name = 'bench';
  const c = (args: string[]) =>
    execFileSync(program, [args[0], name, ...args.slice(1)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  try {
    for (let i = 0; i < 200 && !existsSync(join(process.env.DRE_RUNDIR, 'dred.sock')); i++) await new Promise((r) => setTimeout(r, 50));
    if ((await A.dre_app_create_container(name, { type: A.DRE_APP_CONTAINER_TYPE_LXC, udata: { lxc: {} } })) !== 0) throw new Error('create failed');
    const h = (await A.dre_app_open(name))!;
    const times = { c: [] as number[], api: [] as number[], raw: [] as number[], cStart: [] as number[], apiStart: [] as number[] };

    // Status of a running container.
    const started = await A.dre_app_start(h);
    if (started !== 0) throw new Error(`dre_app_start: ${started}`);
    c(['status', '3']); // the first call pays for loading and connecting
    for (let round = 0; round < ROUNDS; round++) {
      await pair(
        round,
        async () => {
          times.c.push(...c(['status', String(CALLS)]));
          for (let i = 0; i < CALLS; i++) times.api.push(await timeIt(() => A.dre_app_status(h)));
        },
        () => {
          for (let i = 0; i < 5; i++) times.raw.push(execTime(['lxc-info', '-n', name, '-P', lxcPath(), '-s']));
        },
      );
    }
    report('dre_app_status via libdreapp', times.c, times.api, `≤ 1 ms added (added ${(median(times.c) - median(times.api)).toFixed(2)} ms)`);
    report('dre_app_status via libdreapp', times.c, times.raw, 'vs lxc-info -s');
    report('dre_app_status in-process', times.api, times.raw, 'vs lxc-info -s');

    // Start from stopped: C through dred against in-process.
    await appDriver.stop(name);
    for (let round = 0; round < START_ROUNDS; round++) {
      await pair(
        round,
        async () => {
          times.cStart.push(c(['start'])[0]);
          await appDriver.stop(name);
        },
        async () => {
          times.apiStart.push(await timeIt(() => A.dre_app_start(h)));
          await appDriver.stop(name);
        },
      );
    }
    const added = median(times.cStart.map((t, i) => t - times.apiStart[i]));
    report('dre_app_start via libdreapp', times.cStart, times.apiStart, `≤ 1.1x in-process (paired median added ${added.toFixed(2)} ms)`);
  } finally {
    await appDriver.stop(name, { timeoutMs: 0 }).catch(() => {});
    await appDriver.destroy(name).catch(() => {});
    dred.kill('SIGKILL');
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Milliseconds of one run of a command (spawned synchronously, as a user's shell would). */
function execTime(argv: string[]): number {
  const t = performance.now();
  execFileSync(argv[0], argv.slice(1), { stdio: 'ignore' });
  return performance.now() - t;
}

/**
 * CLI start-up: `dre-app status NAME` (and `--version`, `list`) against `node -e ''`, interleaved per round;
 * medians and the ratio to bare Node (issue 17's goal: status within 1.2x of `node -e ''`); the same status
 * through tsc's separate modules shows what the bundle saves.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRoot, median, timeIt } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
const here = dirname(fileURLToPath(import.meta.url));
/** The bundle users run (scripts/bundle-cli.mjs) and tsc's modules it is made of. */
const bundled = join(here, '..', 'src', 'bin', 'dre-app.js');
const modules = join(here, '..', 'src', 'cli', 'dre-app.js');

export async function bench(): Promise<void> {
  const tmp = benchRoot();
  const { app } = await import('../src/index.js');
  const runs: Record<string, string[]> = {
    "node -e ''": ['-e', ''],
    'dre-app status NAME': [bundled, 'status', 'c1'],
    'dre-app --version': [bundled, '--version'],
    'dre-app list': [bundled, 'list'],
    'dre-app status NAME (unbundled)': [modules, 'status', 'c1'],
    // BENCH_CLI_BEFORE=path/to/an/older/dist/src/cli/dre-app.js: the same status through another build, e.g. main's
    ...(process.env.BENCH_CLI_BEFORE ? { 'dre-app status NAME (BENCH_CLI_BEFORE)': [process.env.BENCH_CLI_BEFORE, 'status', 'c1'] } : {}),
  };
  const times: Record<string, number[]> = {};
  try {
    await app.create('c1', { network: false });
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.keys(runs);
      if (round % 2) order.reverse();
      for (const k of order) (times[k] ??= []).push(await timeIt(() => spawnSync(process.execPath, runs[k], { stdio: 'pipe' })));
    }
    const bare = median(times["node -e ''"]);
    for (const [k, t] of Object.entries(times))
      console.log(`${k.padEnd(34)} ${median(t).toFixed(1).padStart(7)} ms   ratio to node ${(median(t) / bare).toFixed(2)}`);
  } finally {
    await app.destroy('c1').catch(() => undefined);
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

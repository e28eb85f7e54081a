/**
 * What containment costs: start, stop, snapshot save and load, and create from a base of an
 * unprivileged container against the same operations on a privileged one, through the in-process
 * API, interleaved per round; start and stop also against lxc-start/lxc-stop of an unprivileged LXC
 * container with the same config. Goal: unprivileged <= 1.05x privileged.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pair, report, timeIt } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const sh = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => execFileSync(cmd, args, { stdio: 'pipe', env: env ?? process.env });

type Op = 'create' | 'start' | 'stop' | 'save' | 'load' | 'destroy';
const OPS: Op[] = ['create', 'start', 'stop', 'save', 'load', 'destroy'];

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { app } = await import('../src/index.js');
  const { lxcPath } = await import('../src/app/layout.js');
  const { lxcStartEnv } = await import('../src/app/lifecycle.js'); // the raw lxc-start runs as ours does (no newuidmap on its PATH)
  const { makeRawContainer } = await import('./rawlxc.js');
  const rawPath = join(tmp, 'raw');
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  const raw = (name: string) => ['-n', name, '-P', rawPath];
  try {
    // Each kind gets a committed base (one layer over the default), so create is create-from-base.
    for (const privileged of [false, true]) {
      const seed = privileged ? 'seedp' : 'seedu';
      await app.create(seed, { network: false, privileged });
      await app.start(seed);
      sh(process.execPath, [
        join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'bin', 'dre-app.js'),
        'exec',
        seed,
        '--',
        'sh',
        '-c',
        'echo data > /root/seeded',
      ]);
      await app.stop(seed, { timeoutMs: 0 });
      await app.saveSnapshot(seed, 's');
      await app.commitSnapshot(seed, 's', `${seed}-base`);
    }
    // The raw LXC container: the config of an unprivileged container on the same base, under another lxcpath.
    await app.create('tmplu', { network: false, base: 'seedu-base' });
    const template = join(tmp, 'template.config');
    copyFileSync(join(lxcPath(), 'tmplu', 'config'), template);
    const makeRaw = (name: string) => makeRawContainer(rawPath, name, 'tmplu', template);

    for (let round = 0; round < ROUNDS; round++) {
      const u = `u${round}`;
      const p = `p${round}`;
      for (const op of OPS) {
        const step = (name: string, privileged: boolean) => async () =>
          add(
            `${privileged ? 'priv' : 'unpriv'} ${op}`,
            await timeIt(() => {
              if (op === 'create') return app.create(name, { network: false, privileged, base: privileged ? 'seedp-base' : 'seedu-base' });
              if (op === 'start') return app.start(name);
              if (op === 'stop') return app.stop(name, { timeoutMs: 0 });
              if (op === 'save') return app.saveSnapshot(name, 'b');
              if (op === 'load') return app.loadSnapshot(name, 'b');
              return app.destroy(name);
            }),
          );
        await pair(round, step(u, false), step(p, true));
        if (op === 'start' || op === 'stop' || op === 'create') {
          const r = `r${round}`;
          add(
            `raw ${op}`,
            await timeIt(() =>
              op === 'create' ? makeRaw(r) : op === 'start' ? sh('/usr/bin/lxc-start', [...raw(r), '-d'], lxcStartEnv()) : sh('lxc-stop', [...raw(r), '-k']),
            ),
          );
        }
        // A change after the stop, so that save has a layer to freeze.
        if (op === 'stop') for (const n of [u, p]) writeFileSync(join(lxcPath(), n, 'upper', `round${round}`), 'x');
      }
    }
    console.log(`${ROUNDS} rounds; unprivileged (ours) against privileged (raw column); stop is lxc-stop -k (timeout 0)`);
    for (const op of OPS) report(`unprivileged vs privileged ${op}`, times[`unpriv ${op}`], times[`priv ${op}`], '<= 1.05x');
    for (const op of ['start', 'stop'] as const) report(`unprivileged ${op} vs lxc-${op}`, times[`unpriv ${op}`], times[`raw ${op}`]);
    report('privileged start vs lxc-start (unpriv)', times['priv start'], times['raw start']);
  } finally {
    for (let round = 0; round < ROUNDS; round++) {
      try {
        sh('lxc-stop', [...raw(`r${round}`), '-k']);
      } catch {
        /* not running */
      }
    }
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

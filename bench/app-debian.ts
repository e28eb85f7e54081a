/**
 * Debian application containers: the base build (mmdebstrap) with a cold package cache (a fresh
 * DRE_CACHE_DIR: everything downloaded) and a warm one, against raw mmdebstrap with the same cache;
 * start-to-ready (systemd says `running`) against raw lxc-start of a container with the same config;
 * export and import of a container on that base against plain tar of the same directories.
 * Interleaved per round, medians and ratios, under a temporary root removed after.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pair, report, timeCold, timeIt } from './stats.js';

const BUILD_ROUNDS = Number(process.env.BENCH_DEBIAN_BUILDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', timeout: 1_200_000 });

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-debian-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { app } = await import('../src/index.js');
  const { lxcPath } = await import('../src/app/layout.js');
  const { debCacheDir, debianBuildPlan, mmdebstrapArgs } = await import('../src/app/debian.js');
  const { baseDir } = await import('../src/core/paths.js');
  const { makeRawContainer } = await import('./rawlxc.js');
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  const rawPath = join(tmp, 'raw');
  try {
    // Cold: an empty cache of its own, once (a download of the whole package set).
    add('build cold', await timeCold(join(tmp, 'cold-cache'), () => app.buildDebianBase('cold', {})));
    await app.removeBase('cold');
    await app.buildDebianBase('debian', {}); // fills the machine's cache if it was empty
    const plan = debianBuildPlan({});
    for (let i = 0; i < BUILD_ROUNDS; i++) {
      const out = join(tmp, `raw-build-${i}`);
      await pair(
        i,
        async () => {
          add('build warm', await timeIt(() => app.buildDebianBase(`warm${i}`, {})));
          await app.removeBase(`warm${i}`);
        },
        async () => add('raw build warm', await timeIt(() => sh('mmdebstrap', mmdebstrapArgs(plan, out, debCacheDir())))),
      );
      rmSync(out, { recursive: true, force: true });
    }

    // Start to ready: systemd inside says running.
    await app.create('tmpl', { base: 'debian', network: false });
    const template = join(tmp, 'template.config');
    copyFileSync(join(lxcPath(), 'tmpl', 'config'), template);
    makeRawContainer(rawPath, 'raw', 'tmpl', template);
    const raw = ['-n', 'raw', '-P', rawPath];
    const ready = (args: string[]) => {
      for (let i = 0; i < 3000; i++) {
        try {
          if (
            execFileSync('lxc-attach', [...args, '--', 'systemctl', 'is-system-running'], { stdio: 'pipe' })
              .toString()
              .trim() === 'running'
          )
            return;
        } catch {
          /* booting (is-system-running exits non-zero until running) */
        }
      }
      throw new Error('never ready');
    };
    for (let i = 0; i < ROUNDS; i++) {
      await pair(
        i,
        async () => {
          add(
            'start to ready',
            await timeIt(async () => {
              await app.start('tmpl');
              ready(['-n', 'tmpl', '-P', lxcPath()]);
            }),
          );
          await app.stop('tmpl', { timeoutMs: 0 });
        },
        async () => {
          add(
            'raw start to ready',
            await timeIt(() => {
              sh('lxc-start', [...raw, '-d']);
              ready(raw);
            }),
          );
          sh('lxc-stop', [...raw, '-k']);
        },
      );
    }
    for (let i = 0; i < ROUNDS; i++) {
      await app.start('tmpl');
      ready(['-n', 'tmpl', '-P', lxcPath()]);
      add('graceful stop', await timeIt(() => app.stop('tmpl')));
    }

    // Export and import (the file carries the 250 MiB base) against tar of the same directories.
    const file = join(tmp, 'export.tar');
    const tarFile = join(tmp, 'plain.tar');
    const base = join(baseDir('app', 'debian'), 'rootfs');
    const upper = join(lxcPath(), 'tmpl', 'upper');
    const other = { DRE_ROOT: join(tmp, 'other'), DRE_RUNDIR: join(tmp, 'other-run') };
    for (let i = 0; i < ROUNDS; i++) {
      await pair(
        i,
        async () => {
          add('export', await timeIt(() => app.exportContainer('tmpl', file)));
          const env = { ...process.env };
          Object.assign(process.env, other);
          try {
            add('import', await timeIt(() => app.importContainer(file, `imp${i}`)));
            await app.destroy(`imp${i}`);
            await app.removeBase('debian');
          } finally {
            process.env.DRE_ROOT = env.DRE_ROOT;
            process.env.DRE_RUNDIR = env.DRE_RUNDIR;
          }
          rmSync(file, { force: true });
        },
        async () => {
          add('raw tar -c', await timeIt(() => sh('tar', ['-c', '--numeric-owner', '--xattrs', '-f', tarFile, '-C', '/', base.slice(1), upper.slice(1)])));
          const dir = join(tmp, `untar${i}`);
          mkdirSync(dir);
          add('raw tar -x', await timeIt(() => sh('tar', ['-x', '--numeric-owner', '--xattrs', '-f', tarFile, '-C', dir])));
          rmSync(dir, { recursive: true, force: true });
          rmSync(tarFile, { force: true });
        },
      );
    }
    console.log(`build: 1 cold (empty cache), ${BUILD_ROUNDS} warm; ${ROUNDS} rounds of the rest; minbase + systemd-sysv + openssh-server`);
    report('Debian base build, cold cache', times['build cold'], undefined);
    report('Debian base build, warm cache', times['build warm'], times['raw build warm']);
    report('start to systemd running', times['start to ready'], times['raw start to ready'], '<= 1.2x raw');
    report('graceful stop (systemd shutdown)', times['graceful stop'], undefined);
    report('export (with its base)', times['export'], times['raw tar -c']);
    report('import (checked, base made)', times['import'], times['raw tar -x']);
  } finally {
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
}

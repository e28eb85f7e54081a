/**
 * Control groups of an application container: setting a memory limit and binding a process through
 * the API, against `lxc-cgroup` (LXC's own tool, on the container's group) and against bare writes of
 * the same cgroup files, interleaved per round; medians and ratios.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { report, timeIt } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const MiB = 1024 * 1024;

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-');
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { app } = await import('../src/index.js');
  const { containerCgroup, containerProcsCgroup, lxcPath } = await import('../src/app/layout.js');
  const { allHierarchyMounts, groupDir } = await import('../src/core/cgroup.js');
  const { RESOURCE } = await import('../src/core/driver.js');
  const name = 'bench';
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  try {
    await app.create(name, {});
    await app.start(name);
    await app.createCgroup(name, 'g');
    const init = await app.pid(name);
    const memDir = groupDir('memory', `${containerCgroup(name)}/g`)!;
    for (let round = 0; round < ROUNDS; round++) {
      const bytes = (64 + (round % 2)) * MiB;
      add('api set MEMORY', await timeIt(() => app.setResource(name, 'g', { type: RESOURCE.MEMORY, bytes })));
      add('lxc-cgroup memory', await timeIt(() => execFileSync('lxc-cgroup', ['-n', name, '-P', lxcPath(), 'memory.limit_in_bytes', `${bytes}`])));
      add('write memory', await timeIt(() => writeFileSync(join(memDir, 'memory.limit_in_bytes'), `${bytes}`)));
      add(
        'api bind+unbind',
        await timeIt(async () => {
          await app.bindPid(name, 'g', init);
          await app.unbindPid(name, 'g', init);
        }),
      );
      add(
        'write bind+unbind',
        await timeIt(() => {
          for (const rel of [`${containerCgroup(name)}/g`, containerProcsCgroup(name)]) {
            for (const m of allHierarchyMounts()) writeFileSync(join(m, rel, 'cgroup.procs'), `${init}`);
          }
        }),
      );
      add('api get MEMORY', await timeIt(() => app.getResource(name, init, RESOURCE.MEMORY)));
    }
    report('set MEMORY (vs lxc-cgroup)', times['api set MEMORY'], times['lxc-cgroup memory']);
    report('set MEMORY (vs bare write)', times['api set MEMORY'], times['write memory']);
    report('bind+unbind (vs bare writes)', times['api bind+unbind'], times['write bind+unbind']);
    report('get MEMORY', times['api get MEMORY'], undefined);
  } finally {
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp); // engines, mounts, cgroups and the root's id reservation
    rmSync(tmp, { recursive: true, force: true });
  }
}

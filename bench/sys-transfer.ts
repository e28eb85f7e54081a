/**
 * Export and import of a system container (a VM on the default base with 64 MiB of random data
 * written by its guest, a checkpoint of its 256 MiB of RAM and two snapshots) against plain tar of
 * the same files (its disk and its base's four files): `dre-sys export` (hashing every member, then
 * one tar) against `tar -c`, and `import` into a second root (unpack, check every sha256, qemu-img
 * info and rebase, the base made) against `tar -x`. Interleaved per round, medians and ratios, under
 * a temporary root removed after.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { benchRoot, pair, removeBenchRoot, report, timeIt } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', timeout: 1_200_000 });

export async function bench(): Promise<void> {
  const tmp = benchRoot();
  process.env.DRE_SYS_ACCEL ??= 'tcg'; // these hosts have no usable KVM (ENGINE-FACTS.md)
  const { sys } = await import('../src/index.js');
  const { baseDir } = await import('../src/core/paths.js');
  const { localDiskPath } = await import('../src/sys/layout.js');
  const times: Record<string, number[]> = {};
  const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
  const vm = 'benchvm';
  try {
    await sys.create(vm, { network: false });
    await sys.start(vm);
    const r = await sys.execCapture(vm, ['sh', '-c', 'head -c 67108864 /dev/urandom > /root/data; sync'], 600_000);
    if (r.status !== 0) throw new Error(`guest: ${r.stderr.toString()}`);
    await sys.checkpoint(vm, 'c1');
    await sys.stop(vm);
    await sys.saveSnapshot(vm, 's1');
    await sys.saveSnapshot(vm, 's2');

    const file = join(tmp, 'export.tar');
    const tarFile = join(tmp, 'plain.tar');
    const base = baseDir('sys', 'default');
    const files = [localDiskPath(vm), ...['disk.qcow2', 'vmlinuz', 'initrd.img', 'base.json'].map((f) => join(base, f))];
    const other = { DRE_ROOT: join(tmp, 'other'), DRE_RUNDIR: join(tmp, 'other-run') };
    let bytes = 0;
    for (let i = 0; i < ROUNDS; i++) {
      await pair(
        i,
        async () => {
          add('export', await timeIt(() => sys.exportContainer(vm, file)));
          bytes = statSync(file).size;
          const own = { DRE_ROOT: process.env.DRE_ROOT, DRE_RUNDIR: process.env.DRE_RUNDIR };
          Object.assign(process.env, other);
          try {
            add('import', await timeIt(() => sys.importContainer(file, `imp${i}`)));
            const [imported] = await sys.listBases();
            await sys.destroy(`imp${i}`);
            await sys.removeBase(imported);
          } finally {
            Object.assign(process.env, own);
          }
          rmSync(file, { force: true });
        },
        async () => {
          add('raw tar -c', await timeIt(() => sh('tar', ['-c', '-f', tarFile, '-C', '/', ...files.map((f) => f.slice(1))])));
          const dir = join(tmp, `untar${i}`);
          mkdirSync(dir);
          add('raw tar -x', await timeIt(() => sh('tar', ['-x', '-f', tarFile, '-C', dir])));
          rmSync(dir, { recursive: true, force: true });
          rmSync(tarFile, { force: true });
        },
      );
    }
    report('sys export (with its base)', times['export'], times['raw tar -c']);
    report('sys import (checked, base made)', times['import'], times['raw tar -x']);
    console.log(`${ROUNDS} rounds; the file: ${(bytes / 2 ** 20).toFixed(0)} MiB (disk with 2 snapshots and a checkpoint, default base)`);
  } finally {
    await removeBenchRoot(tmp);
  }
}

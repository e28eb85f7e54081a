/**
 * Snapshots and bases of application containers against LXC's own tools on a dir-backed container
 * holding the same extra data (64 MiB and 1 GiB), interleaved, under a temporary DRE_ROOT removed after.
 * Ours: save, load, commit, create-from-base. Raw: lxc-snapshot, lxc-snapshot -r, lxc-copy (image), lxc-copy (clone).
 */
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { median, report, timeIt } from './stats.js';

const ROUNDS = 9;
const GROWTH_ROUNDS = 15;
const SIZES = [
  { label: '+64MiB', mib: 64 },
  { label: '+1GiB', mib: 1024 },
];

/** A file of `mib` MiB of incompressible data (not sparse, so copies really copy). */
function writeBlob(path: string, mib: number): void {
  const chunk = randomBytes(1 << 20);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

export async function bench(): Promise<void> {
  const tmp = mkdtempSync('/tmp/dre-bench-snap-');
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  const { appDriver: app } = await import('../src/app/driver.js');
  const { upperDir } = await import('../src/app/layout.js');
  const { baseRootfs, DEFAULT_BASE } = await import('../src/app/base.js');
  const { run } = await import('../src/core/run.js');
  const rawPath = join(tmp, 'lxc');
  const blobPath = (mib: number) => join(tmp, `blob${mib}`);
  const lxc = async (tool: string, args: string[]) => {
    const r = await run(tool, [...args, '-P', rawPath], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  // Dirty data the raw copies left would be flushed by our next fsync: settle it first, on both sides.
  const timed = async (fn: () => Promise<unknown>) => {
    await run('sync', []);
    return timeIt(fn);
  };
  const ours: string[] = [];
  const ourBases: string[] = [];
  type Times = Record<'save' | 'load' | 'commit' | 'create', { ours: number[]; raw: number[] }>;
  const results: Record<string, Times> = {};
  const growth: Record<string, { save: number[]; create: number[] }> = Object.fromEntries(SIZES.map((s) => [s.label, { save: [], create: [] }]));
  try {
    await app.create('seed', {});
    ours.push('seed');
    mkdirSync(rawPath, { mode: 0o700 });
    // Both sizes in every round, side by side, so that both see the same load on this shared machine.
    for (const size of SIZES) {
      writeBlob(blobPath(size.mib), size.mib);
      // The raw engine's dir-backed container: the same busybox rootfs plus the same data.
      const raw = `raw${size.mib}`;
      mkdirSync(join(rawPath, raw));
      await run('cp', ['-a', baseRootfs(DEFAULT_BASE), join(rawPath, raw, 'rootfs')]);
      await run('cp', [blobPath(size.mib), join(rawPath, raw, 'rootfs', 'blob')]);
      writeFileSync(join(rawPath, raw, 'config'), `lxc.uts.name = ${raw}\nlxc.rootfs.path = dir:${join(rawPath, raw, 'rootfs')}\nlxc.net.0.type = empty\n`);
      results[size.label] = { save: { ours: [], raw: [] }, load: { ours: [], raw: [] }, commit: { ours: [], raw: [] }, create: { ours: [], raw: [] } };
    }
    for (let i = 0; i < ROUNDS; i++) {
      for (const size of SIZES) {
        const r = results[size.label];
        const raw = `raw${size.mib}`;
        const blob = blobPath(size.mib);
        const c = `o${size.mib}-${i}`;
        const base = `b${size.mib}-${i}`;
        const clone = `f${size.mib}-${i}`;
        await app.create(c, {});
        ours.push(c);
        linkSync(blob, join(upperDir(c), 'blob'));
        r.save.ours.push(await timed(() => app.saveSnapshot(c, 's')));
        r.save.raw.push(await timed(() => lxc('lxc-snapshot', ['-n', raw])));
        linkSync(blob, join(upperDir(c), 'unsaved')); // something for load to discard
        r.load.ours.push(await timed(() => app.loadSnapshot(c, 's')));
        r.load.raw.push(await timed(() => lxc('lxc-snapshot', ['-n', raw, '-r', 'snap0', '-N', raw])));
        r.commit.ours.push(await timed(() => app.commitSnapshot(c, 's', base)));
        ourBases.push(base);
        r.commit.raw.push(await timed(() => lxc('lxc-copy', ['-n', raw, '-N', `rb${size.mib}`])));
        r.create.ours.push(await timed(() => app.create(clone, { base })));
        ours.push(clone);
        r.create.raw.push(await timed(() => lxc('lxc-copy', ['-n', `rb${size.mib}`, '-N', `rf${size.mib}`])));
        await lxc('lxc-snapshot', ['-n', raw, '-d', 'snap0']);
        for (const n of [`rf${size.mib}`, `rb${size.mib}`]) await lxc('lxc-destroy', ['-n', n]);
      }
    }
    // Ours alone, sizes alternating with no raw copy in between: whether our cost follows the data size.
    for (let i = 0; i < GROWTH_ROUNDS; i++) {
      for (const size of SIZES) {
        const c = `g${size.mib}-${i}`;
        await app.create(c, {});
        ours.push(c);
        linkSync(blobPath(size.mib), join(upperDir(c), 'blob'));
        growth[size.label].save.push(await timed(() => app.saveSnapshot(c, 's')));
        growth[size.label].create.push(await timed(() => app.create(`${c}-f`, { base: `b${size.mib}-0` })));
        ours.push(`${c}-f`);
      }
    }
  } finally {
    for (const n of ours.reverse()) await app.destroy(n).catch(() => {});
    for (const b of ourBases.reverse()) await app.removeBase(b).catch(() => {});
    const { sweep } = await import('../test/support/sweep.js');
    sweep(tmp); // engines, mounts, cgroups and the root's id reservation
    rmSync(tmp, { recursive: true, force: true });
  }
  const names = {
    save: 'save_snapshot vs lxc-snapshot',
    load: 'load_snapshot vs lxc-snapshot -r',
    commit: 'commit vs lxc-copy',
    create: 'create from base vs lxc-copy',
  };
  for (const size of SIZES) {
    for (const [op, title] of Object.entries(names)) {
      const r = results[size.label][op as keyof Times];
      report(`${title} ${size.label}`, r.ours, r.raw);
    }
  }
  for (const op of ['save', 'create'] as const) {
    const [small, big] = SIZES.map((s) => median(growth[s.label][op]));
    console.log(`${op} alone: ours +1GiB ${big.toFixed(2)} ms, +64MiB ${small.toFixed(2)} ms, ratio ${(big / small).toFixed(2)} (goal <= 1.2)`);
  }
  const [small, big] = SIZES.map((s) => results[s.label]);
  for (const op of ['save', 'create'] as const) {
    const mixed = median(big[op].ours) / median(small[op].ours);
    const speedup = median(big[op].raw) / median(big[op].ours);
    console.log(`${op}: raw / ours at 1 GiB = ${speedup.toFixed(1)}x (goal >= 10x); ours 1 GiB / 64 MiB among the raw copies = ${mixed.toFixed(2)}`);
  }
}

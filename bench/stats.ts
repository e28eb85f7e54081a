/** Shared benchmark helpers: interleaved timing of our call against the raw engine, medians and ratios. */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Runs both in turn, ours first on even rounds and raw first on odd ones, so that order effects cancel. */
export async function pair(round: number, ours: () => unknown, raw: () => unknown): Promise<void> {
  if (round % 2 === 0) {
    await ours();
    await raw();
  } else {
    await raw();
    await ours();
  }
}

/** One line: operation, our median, the raw engine's median, and the ratio. */
export function report(op: string, ours: number[], raw: number[] | undefined, goal?: string): void {
  const o = median(ours);
  if (!raw) {
    console.log(`${op.padEnd(34)} ours ${o.toFixed(2).padStart(9)} ms${goal ? `   goal ${goal}` : ''}`);
    return;
  }
  const r = median(raw);
  console.log(
    `${op.padEnd(34)} ours ${o.toFixed(2).padStart(9)} ms   raw ${r.toFixed(2).padStart(9)} ms   ratio ${(o / r).toFixed(2)}${goal ? `   goal ${goal}` : ''}`,
  );
}

/** A private D-RE root for a bench under /tmp/dre-bench-*, passable for the containers' mapped root; sets DRE_ROOT and DRE_RUNDIR. */
export function benchRoot(): string {
  const tmp = mkdtempSync('/tmp/dre-bench-');
  chmodSync(tmp, 0o711);
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  return tmp;
}

/** Ends what a bench left under its root (processes, mounts, network) and removes it. */
export async function removeBenchRoot(tmp: string): Promise<void> {
  const { sweep } = await import('../test/support/sweep.js');
  sweep(tmp);
  rmSync(tmp, { recursive: true, force: true });
}

/** Times `build` with an empty package cache of its own (`dir`, through DRE_CACHE_DIR): a cold build, everything downloaded. */
export async function timeCold(dir: string, build: () => Promise<unknown>): Promise<number> {
  const warm = process.env.DRE_CACHE_DIR;
  process.env.DRE_CACHE_DIR = dir;
  try {
    return await timeIt(build);
  } finally {
    if (warm === undefined) delete process.env.DRE_CACHE_DIR;
    else process.env.DRE_CACHE_DIR = warm;
  }
}

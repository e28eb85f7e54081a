/** The C side of D-Aware for tests: libdaware built from this tree's c/daware (make: quick when up to date). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { distDir } from './env.js';

/** c/daware of this tree, and the installed layout its build stages (include, lib, lib/pkgconfig, bin). */
export const C_DAWARE = join(distDir, '..', 'c', 'daware');
export const C_STAGED = join(C_DAWARE, 'build', 'root');

let built = false;
/** Builds libdaware once per test process; throws (the test fails) when gcc or make is missing. */
export function buildLibdaware(): string {
  if (!built) execFileSync('make', ['-s', '-C', C_DAWARE], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  built = true;
  return C_STAGED;
}

/** Compiles C source `file` to `out`, static against libdaware.a (the busybox base has no C library). */
export function compileStatic(file: string, out: string, extra: string[] = []): void {
  const root = buildLibdaware();
  execFileSync('gcc', ['-std=c11', '-Wall', '-Wextra', ...extra, '-I', join(root, 'include'), '-static', '-o', out, file, join(root, 'lib', 'libdaware.a')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
}

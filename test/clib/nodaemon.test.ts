import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sourceDir } from './vectors.js';

/** Builds test/clib/nodaemon.c against both libraries at once; returns the program. */
function build(): string {
  const out = join(mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-')), 'nodaemon');
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'dreapp', 'dresys'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-o', out, join(sourceDir, 'nodaemon.c'), ...flags]);
  return out;
}

/** Runs it with DRE_RUNDIR=RUNDIR: [calls that did not give NO_SOCKET_AVAILABLE, calls, milliseconds]. */
function run(program: string, rundir: string): [number, number, number] {
  const t = Date.now();
  const r = spawnSync(program, { env: { ...process.env, DRE_RUNDIR: rundir }, encoding: 'utf8', timeout: 30_000 });
  const [wrong, calls] = r.stdout.trim().split(' ').map(Number);
  assert.equal(r.status, wrong === 0 ? 0 : 1, r.stderr);
  return [wrong, calls, Date.now() - t];
}

describe('libdreapp and libdresys without a daemon', () => {
  const program = build();

  it('every call returns DRE_ERR_NO_SOCKET_AVAILABLE at once when there is no socket', () => {
    const [wrong, calls, ms] = run(program, mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-nosock-')));
    assert.equal(wrong, 0);
    assert.equal(calls, 67);
    assert.ok(ms < 2000, `${calls} calls took ${ms} ms`);
  });

  it('every call returns DRE_ERR_NO_SOCKET_AVAILABLE at once when the socket refuses (a daemon that died)', () => {
    const rundir = mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-stale-'));
    // A socket file nobody listens on: bound, never listening, its process gone.
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(rundir, 'dred.sock'))})`]);
    const [wrong, , ms] = run(program, rundir);
    assert.equal(wrong, 0);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('a DRE_RUNDIR too long for a unix socket address is no daemon either, not an overflow', () => {
    const [wrong] = run(program, `/tmp/${'x'.repeat(200)}`);
    assert.equal(wrong, 0);
  });
});

/** Damaged copies of an export file, as both kinds' transfer tests refuse them. */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './env.js';

/**
 * Imports two damaged copies of the export `plain` (made in `dir`) under the name `broken`: one with
 * the byte in its middle flipped (inside the bulk of the file, a member's data), one cut to a third.
 * Each must be refused with DRE_ERR_INVALID_ARGUMENT saying why.
 */
export function assertDamagedRefused(prog: 'dre-app' | 'dre-sys', plain: string, dir: string, env: NodeJS.ProcessEnv): void {
  const size = statSync(plain).size;
  const flipped = join(dir, 'flipped.tar');
  copyFileSync(plain, flipped);
  const at = Math.floor(size / 2);
  const fd = openSync(flipped, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, at);
  closeSync(fd);
  const truncated = join(dir, 'truncated.tar');
  copyFileSync(plain, truncated);
  truncateSync(truncated, Math.floor(size / 3));
  for (const [f, why] of [
    [flipped, /does not match its sha256/],
    [truncated, /damaged|truncated/],
  ] as const) {
    const r = cli(prog, ['import', f, 'broken'], { env });
    assert.equal(r.code, 101, r.stderr);
    assert.match(r.stderr, /DRE_ERR_INVALID_ARGUMENT/);
    assert.match(r.stderr, why);
  }
}

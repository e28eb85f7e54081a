import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appDriver as app } from '../../src/app/driver.js';
import { Daemon } from '../support/dred.js';
import { uniqueName } from '../support/env.js';
import { sourceDir } from './vectors.js';

describe('libdreapp from several threads at once', () => {
  const name = uniqueName('clthr');
  let daemon: Daemon;
  before(async () => {
    await app.create(name, {});
    daemon = await Daemon.start();
  });
  after(async () => {
    await daemon?.kill();
    await app.destroy(name).catch(() => {});
  });

  it('8 threads of lists, opens, statuses and closes all get the right answers', () => {
    const program = join(mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-')), 'threads');
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'dreapp'], { encoding: 'utf8' }).trim().split(/\s+/);
    execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-pthread', '-o', program, join(sourceDir, 'threads.c'), ...flags]);
    const r = spawnSync(program, [name, '8', '25'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.stdout.trim(), '0', r.stderr);
    assert.equal(r.status, 0);
  });
});

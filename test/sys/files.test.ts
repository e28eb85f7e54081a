/**
 * Files in and out of a running guest through its agent: exec with stdin (binary, and through the
 * CLI), push and pull of a 100 MiB file checked by sha256 on both sides with its mode kept, and
 * refusals that leave nothing behind.
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync, chmodSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sys } from '../../src/index.js';
import { isDreError } from '../../src/core/errors.js';
import { cli, uniqueName } from '../support/env.js';

const tmp = process.env.DRE_TEST_TMP!;
const MiB = 2 ** 20;

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('files into and out of a system container', { timeout: 1_200_000 }, () => {
  const vm = uniqueName('vmfiles');
  const big = join(tmp, `${vm}.big`);
  const back = join(tmp, `${vm}.back`);

  before(async () => {
    requireQemu();
    // 100 MiB of random bytes (every byte value, no line structure), mode 0750.
    const fd = openSync(big, 'w', 0o600);
    for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(MiB));
    closeSync(fd);
    chmodSync(big, 0o750);
    await sys.create(vm, { network: false });
    await sys.start(vm);
  });

  after(async () => {
    await removeGuest(vm);
  });

  it('gives exec binary stdin, in process and through the CLI', async () => {
    const input = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(70_000)]);
    const r = await sys.execCapture(vm, ['sh', '-c', 'sha256sum | cut -d" " -f1; echo next; cat /dev/stdin | wc -c'], 60_000, input);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString().trim().split('\n'), [createHash('sha256').update(input).digest('hex'), 'next', '0']);
    const c = cli('dre-sys', ['exec', vm, '--', 'sh', '-c', 'tr a-z A-Z; exit 4'], { input: 'from the host\n' });
    assert.equal(c.code, 4, c.stderr);
    assert.equal(c.stdout, 'FROM THE HOST\n');
    // No stdin: the command reads end-of-file at once.
    assert.equal(await sh(vm, 'wc -c'), '0');
  });

  it('pushes a 100 MiB file whole, with its mode', async () => {
    const r = cli('dre-sys', ['push', vm, big, '/root/big.bin'], { timeoutMs: 900_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sh(vm, "sha256sum /root/big.bin | cut -d' ' -f1"), sha256File(big));
    assert.equal(await sh(vm, 'stat -c "%a %s" /root/big.bin'), `750 ${100 * MiB}`);
    assert.equal(await sh(vm, 'ls /root'), 'big.bin', 'no part file left');
  });

  it('pulls it back bit-identical, with its mode', async () => {
    await sh(vm, 'chmod 640 /root/big.bin');
    await sys.pull(vm, '/root/big.bin', back);
    assert.equal(sha256File(back), sha256File(big));
    assert.equal(statSync(back).mode & 0o7777, 0o640);
    assert.equal(existsSync(`${back}.dre-part`), false);
  });

  it('pushes and pulls an empty file', async () => {
    const empty = join(tmp, `${vm}.empty`);
    closeSync(openSync(empty, 'w', 0o644));
    await sys.push(vm, empty, '/root/empty');
    assert.equal(await sh(vm, 'stat -c "%a %s" /root/empty'), '644 0');
    await sys.pull(vm, '/root/empty', `${empty}.back`);
    assert.equal(statSync(`${empty}.back`).size, 0);
  });

  it('refuses a missing source or a destination that cannot be written, leaving nothing', async () => {
    const invalid = (e: unknown) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT';
    await assert.rejects(sys.pull(vm, '/root/nonesuch', join(tmp, 'nonesuch')), invalid);
    assert.equal(existsSync(join(tmp, 'nonesuch')), false);
    assert.equal(existsSync(join(tmp, 'nonesuch.dre-part')), false);
    await assert.rejects(sys.push(vm, join(tmp, 'nonesuch'), '/root/x'), invalid);
    await assert.rejects(sys.push(vm, big, '/nonesuch-dir/x'), invalid);
    assert.equal(await sh(vm, 'ls /root | sort | tr "\\n" " "'), 'big.bin empty');
  });
});

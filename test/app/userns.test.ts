import '../support/env.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeStart, ID_COUNT, shiftOwners } from '../../src/app/userns.js';

describe('subordinate id ranges and owners of unprivileged layers', () => {
  it("picks the lowest aligned free range above the users' ranges, clear of every entry", () => {
    const first = 16 * ID_COUNT;
    assert.equal(freeStart([]), first);
    assert.equal(freeStart([{ start: 100000, count: 65536 }]), first); // useradd's ranges lie below
    assert.equal(freeStart([{ start: first, count: ID_COUNT }]), first + ID_COUNT);
    // An unaligned range takes every aligned block it touches.
    assert.equal(freeStart([{ start: first + 10, count: ID_COUNT }]), first + 2 * ID_COUNT);
    // Incus's usual root:1000000:1000000000 covers almost everything above it.
    assert.equal(freeStart([{ start: 1_000_000, count: 1_000_000_000 }]), Math.ceil(1_001_000_000 / ID_COUNT) * ID_COUNT);
    assert.equal(freeStart([{ start: 0, count: 2 ** 32 }]), undefined);
  });

  it('shifts owners into the range, keeps set-uid bits, never follows a link, leaves shifted ids alone', () => {
    assert.equal(process.getuid?.(), 0, 'chown needs root');
    const dir = mkdtempSync('/tmp/dre-shift-');
    const outside = join(dir, 'outside');
    try {
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'bin'), { recursive: true });
      writeFileSync(join(tree, 'bin', 'su'), '');
      chownSync(join(tree, 'bin', 'su'), 0, 0);
      chmodSync(join(tree, 'bin', 'su'), 0o4755);
      writeFileSync(join(tree, 'owned'), '');
      chownSync(join(tree, 'owned'), 1000, 100);
      writeFileSync(join(tree, 'already'), '');
      chownSync(join(tree, 'already'), 2_000_000, 2_000_000);
      writeFileSync(outside, '');
      symlinkSync(outside, join(tree, 'link'));
      const range = { uid: 1_048_576, gid: 1_048_576, count: ID_COUNT };
      shiftOwners(tree, range);
      const ids = (p: string) => [lstatSync(p).uid, lstatSync(p).gid];
      assert.deepEqual(ids(tree), [1_048_576, 1_048_576]);
      assert.deepEqual(ids(join(tree, 'bin', 'su')), [1_048_576, 1_048_576]);
      assert.equal(lstatSync(join(tree, 'bin', 'su')).mode & 0o7777, 0o4755);
      assert.deepEqual(ids(join(tree, 'owned')), [1_049_576, 1_048_676]);
      assert.deepEqual(ids(join(tree, 'already')), [2_000_000, 2_000_000]);
      assert.deepEqual(ids(join(tree, 'link')), [1_048_576, 1_048_576]);
      assert.deepEqual(ids(outside), [0, 0], 'the link was followed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

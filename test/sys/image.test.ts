// Pure: the checks over qemu-img info's JSON, without root or qemu-img.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DreError } from '../../src/core/errors.js';
import { requireOwnBacking, type ImageInfo } from '../../src/sys/image.js';

const base = '/var/lib/dre/sys/bases/default/disk.qcow2';

/** The error name requireOwnBacking throws for `info`, or 'ok'. */
function verdict(info: ImageInfo, expected: string | undefined): string {
  try {
    requireOwnBacking(info, expected, 'share c1', 'DRE_ERR_INVALID_ARGUMENT');
  } catch (e) {
    return (e as DreError).errName;
  }
  return 'ok';
}

describe("a disk's header is checked before root reads through its chain", () => {
  it('accepts the backing file D-RE gave it, however qemu-img spells the path', () => {
    assert.equal(verdict({ 'full-backing-filename': base }, base), 'ok');
    assert.equal(verdict({ 'backing-filename': '/var/lib/dre/sys/bases/default/../default/disk.qcow2' }, base), 'ok');
  });

  it('accepts a standalone disk (back from a share) and one expected to have no backing file', () => {
    assert.equal(verdict({}, base), 'ok');
    assert.equal(verdict({}, undefined), 'ok');
  });

  it('refuses a backing file QEMU may have written there, with the code the caller gives', () => {
    assert.equal(verdict({ 'full-backing-filename': '/etc/shadow', 'backing-filename': base }, base), 'DRE_ERR_INVALID_ARGUMENT');
    assert.equal(verdict({ 'backing-filename': base }, undefined), 'DRE_ERR_INVALID_ARGUMENT');
    assert.throws(
      () => requireOwnBacking({ 'backing-filename': '/root/x' }, base, 'commit snapshot of c1', 'DRE_ERR_COMMIT_SNAPSHOT_FAILED'),
      (e: DreError) => {
        assert.equal(e.errName, 'DRE_ERR_COMMIT_SNAPSHOT_FAILED');
        assert.match(e.message, /^commit snapshot of c1: .*backing file \/root\/x.*refused/);
        return true;
      },
    );
  });

  it('refuses any external data file, even with the right backing file', () => {
    const info: ImageInfo = { 'full-backing-filename': base, 'format-specific': { data: { 'data-file': '/dev/sda' } } };
    assert.equal(verdict(info, base), 'DRE_ERR_INVALID_ARGUMENT');
  });
});

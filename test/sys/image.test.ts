// Pure: the checks over qemu-img info's JSON, without root or qemu-img.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DreError } from '../../src/core/errors.js';
import { parseQcow2Header, requireOwnBacking, type ImageInfo } from '../../src/sys/image.js';

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

/** A qcow2 header of `version`, with a backing file offset and incompatible feature bits as given. */
function header(version: number, backingOffset = 0n, incompatible = 0n): Buffer {
  const h = Buffer.alloc(104);
  h.writeUInt32BE(0x514649fb, 0);
  h.writeUInt32BE(version, 4);
  h.writeBigUInt64BE(backingOffset, 8);
  if (version === 3) h.writeBigUInt64BE(incompatible, 72);
  return h;
}

describe('a qcow2 header read by D-RE itself, before any qemu-img opens what it names', () => {
  it('tells a standalone disk, a backing file and an external data file apart', () => {
    assert.deepEqual(parseQcow2Header(header(3)), { version: 3, backing: false, externalData: false });
    assert.deepEqual(parseQcow2Header(header(3, 0x200n)), { version: 3, backing: true, externalData: false });
    assert.deepEqual(parseQcow2Header(header(3, 0n, 1n << 2n)), { version: 3, backing: false, externalData: true });
    // Other incompatible bits (dirty, corrupt, compression type) are not a data file.
    assert.equal(parseQcow2Header(header(3, 0n, 0b11011n))?.externalData, false);
    // Version 2 has no feature bits: whatever follows its 72 bytes is not read as them.
    const v2 = header(2);
    v2.writeBigUInt64BE(1n << 2n, 72);
    assert.deepEqual(parseQcow2Header(v2), { version: 2, backing: false, externalData: false });
  });

  it('finds no header in a raw file, an unknown version or a short read', () => {
    assert.equal(parseQcow2Header(Buffer.alloc(104)), undefined);
    assert.equal(parseQcow2Header(header(4)), undefined);
    assert.equal(parseQcow2Header(header(3).subarray(0, 79)), undefined);
    assert.equal(parseQcow2Header(header(2).subarray(0, 71)), undefined);
  });
});

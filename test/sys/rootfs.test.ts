import '../support/env.js';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run } from '../../src/core/run.js';
import { ensureDefaultBase } from '../../src/sys/base.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { baseDiskPath } from '../../src/sys/layout.js';
import { uniqueName } from '../support/env.js';
import { removeGuest, requireQemu, sh } from './helpers.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (e: { code?: number }) => e.code,
  );

describe('a system container on a rootfs image instead of a Base Image', () => {
  const name = uniqueName('sys-rootfs');
  const image = join(process.env.DRE_TEST_TMP!, `${name}.img`);

  before(async () => {
    requireQemu();
    await ensureDefaultBase();
    // A raw ext4 image holding a bootable root (the default base's, flattened).
    const r = await run('qemu-img', ['convert', '-O', 'raw', baseDiskPath('default'), image]);
    assert.equal(r.code, 0, r.stderr);
    await sys.create(name, { rootfs: image, memorySize: 128 });
  });
  after(async () => {
    await removeGuest(name);
  });

  it("hands the user's image to the unprivileged QEMU as open files: its owner and mode stay as they were (root's, 0600)", async () => {
    chmodSync(image, 0o600);
    const before = statSync(image);
    await sys.start(name);
    const pid = await sys.pid(name);
    assert.notEqual(statSync(`/proc/${pid}`).uid, 0, 'QEMU runs unprivileged');
    const open = readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === image;
      } catch {
        return false;
      }
    });
    assert.ok(open.length >= 1, 'QEMU holds the image open');
    await sys.stop(name);
    const after = statSync(image);
    assert.deepEqual([after.uid, after.gid, after.mode], [before.uid, before.gid, before.mode]);
  });

  it('boots from the image and writes into it, as seen on the image itself after stop', async () => {
    await sys.start(name);
    await sh(name, 'echo written-in-guest > /root/proof; sync');
    await sys.stop(name);
    const r = await run('debugfs', ['-R', 'cat /root/proof', image]);
    assert.equal(r.stdout.trim(), 'written-in-guest', r.stderr);
  });

  it('refuses snapshots and checkpoints of a rootfs container, and keeps the default kernel base in use', async () => {
    assert.equal(await code(sys.saveSnapshot(name, 's')), -133);
    assert.deepEqual(await sys.listSnapshots(name), []);
    assert.equal(await code(sys.removeBase('default')), -123);
  });
});

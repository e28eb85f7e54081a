/**
 * A VM image without the D-RE guest agent (`create --rootfs own.img`): start returns once the guest
 * has booted and says that exec and graceful stop need the agent; exec refuses at once; stop presses
 * the power button and ends QEMU after the timeout. The image: the default base's root, flattened to
 * raw, whose inittab (changed with debugfs, nothing mounted) runs a shell on the console with
 * busybox's askfirst and neither the agent nor the power-button reader.
 */
import { requireQemu, removeGuest } from './helpers.js';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sys } from '../../src/index.js';
import { STATUS } from '../../src/core/driver.js';
import { isDreError } from '../../src/core/errors.js';
import { run } from '../../src/core/run.js';
import { ensureDefaultBase } from '../../src/sys/base.js';
import { baseDiskPath } from '../../src/sys/layout.js';
import { threadsGone } from '../../src/sys/qemu.js';
import { qemuPid } from '../../src/sys/state.js';
import { cli, uniqueName } from '../support/env.js';

const tmp = process.env.DRE_TEST_TMP!;

describe('a VM image without the D-RE agent', { timeout: 600_000 }, () => {
  const name = uniqueName('vmnoagent');
  const image = join(tmp, `${name}.img`);

  before(async () => {
    requireQemu();
    await ensureDefaultBase();
    const r = await run('qemu-img', ['convert', '-O', 'raw', baseDiskPath('default'), image]);
    assert.equal(r.code, 0, r.stderr);
    const inittab = join(tmp, `${name}.inittab`);
    writeFileSync(inittab, '::sysinit:/etc/init.d/rcS.noagent\nttyS0::askfirst:-/bin/sh\n');
    const rcs = join(tmp, `${name}.rcS`);
    writeFileSync(rcs, '#!/bin/sh\nmount -t proc proc /proc\nmount -o remount,rw /\n');
    for (const cmd of [
      'rm /etc/inittab',
      `write ${inittab} /etc/inittab`,
      `write ${rcs} /etc/init.d/rcS.noagent`,
      'sif /etc/init.d/rcS.noagent mode 0100755',
      'rm /sbin/dre-agent',
    ]) {
      const d = await run('debugfs', ['-w', '-R', cmd, image]);
      assert.equal(d.code, 0, `debugfs ${cmd}: ${d.stderr}`);
    }
    await sys.create(name, { rootfs: image, memorySize: 128, network: false });
  });

  after(async () => {
    await removeGuest(name);
  });

  it('start returns once the guest has booted, saying exec and graceful stop need the agent', async () => {
    const r = cli('dre-sys', ['start', name], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /D-RE notice: start .*: the guest booted, but the guest runs no D-RE agent.*exec needs the agent/);
    assert.equal(await sys.status(name), STATUS.RUNNING);
  });

  it('exec refuses at once with the reason', async () => {
    const began = Date.now();
    await assert.rejects(sys.execCapture(name, ['true']), (e) => isDreError(e) && e.errName === 'DRE_ERR_DEVICE_BUSY' && /no D-RE agent/.test(e.message));
    assert.ok(Date.now() - began < 30_000, 'not the whole exec timeout');
  });

  it('stop presses the power button, then ends QEMU after the timeout', async () => {
    const pid = qemuPid(name)!;
    await sys.stop(name, { timeoutMs: 2_000 });
    assert.equal(qemuPid(name), undefined);
    assert.equal(await sys.status(name), STATUS.STOP);
    assert.ok(threadsGone(pid), 'QEMU is gone (or a zombie)');
  });
});

/**
 * create --cpus and --disk-size: the guest sees its vCPUs and a root file system grown to the larger
 * disk; bad sizes are refused and change nothing; records made before these fields still load.
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sys } from '../../src/index.js';
import { isDreError } from '../../src/core/errors.js';
import { recordPath } from '../../src/sys/layout.js';
import { uniqueName } from '../support/env.js';

const invalid = (pattern: RegExp) => (e: unknown) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT' && pattern.test(e.message);

describe('vCPUs and disk size of a system container', { timeout: 900_000 }, () => {
  const big = uniqueName('vmbig');
  const old = uniqueName('vmold');

  before(async () => {
    requireQemu();
    await sys.create(big, { cpus: 2, diskSize: 1024, network: false });
  });

  after(async () => {
    await removeGuest(big);
    await removeGuest(old);
  });

  it('runs the guest with 2 vCPUs and its root ext4 grown to the 1 GiB disk', async () => {
    assert.equal((await sys.info(big)).cpus, 2);
    await sys.start(big);
    assert.equal(await sh(big, 'nproc'), '2');
    assert.equal(await sh(big, 'grep -c ^processor /proc/cpuinfo'), '2');
    const diskBytes = Number(await sh(big, 'cat /sys/block/vda/size')) * 512;
    assert.equal(diskBytes, 1024 * 2 ** 20);
    // df -k: 1K blocks of the root file system; a 256 MiB base grown to 1 GiB holds over 900 MiB.
    const kib = Number(await sh(big, "df -k / | tail -1 | awk '{print $2}'"));
    assert.ok(kib > 900 * 1024 && kib <= 1024 * 1024, `root file system of ${kib} KiB`);
    await sh(big, 'dd if=/dev/zero of=/root/fill bs=1M count=400 2>/dev/null && sync && rm /root/fill');
    await sys.stop(big);
  });

  it('refuses a disk smaller than its base, a disk size with a rootfs, and bad vCPU counts, making nothing', async () => {
    const n = uniqueName('vmbad');
    await assert.rejects(sys.create(n, { diskSize: 100 }), invalid(/smaller than base default's disk \(256 MiB\)/));
    await assert.rejects(sys.create(n, { rootfs: '/dev/null', diskSize: 2048 }), invalid(/not to a rootfs/));
    await assert.rejects(sys.create(n, { cpus: 65 }), invalid(/cpus 65 is not an integer in 1\.\.64/));
    await assert.rejects(sys.create(n, { cpus: 1.5 }), invalid(/cpus/));
    assert.equal(sys.exists(n), false);
  });

  it('loads a record made before vCPUs, disk size and network were recorded: 1 vCPU, no NIC', async () => {
    await sys.create(old, {});
    const rec = JSON.parse(readFileSync(recordPath(old), 'utf8')) as Record<string, unknown>;
    for (const field of ['cpus', 'diskMiB', 'address', 'port', 'mac']) delete rec[field];
    writeFileSync(recordPath(old), JSON.stringify(rec));
    const info = await sys.info(old);
    assert.equal(info.cpus, 1);
    assert.equal(info.address, null);
    await sys.start(old);
    assert.equal(await sh(old, 'nproc'), '1');
    assert.equal(await sh(old, 'ls /sys/class/net'), 'lo');
    await sys.stop(old);
  });
});

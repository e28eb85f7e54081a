/**
 * Base Images imported from a disk the user has (`dre-sys base import NAME DISK`): a raw or qcow2
 * disk with ext4 on the whole disk (the default base's own root, flattened) boots with D-RE's kernel,
 * takes snapshots and rolls back; a partitioned disk (a hand-made MBR whose boot code writes a login
 * prompt to the serial port and halts) is booted by the firmware, with no kernel of D-RE's, and start
 * returns once it booted. Bad disks are refused with nothing left in the bases directory.
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sys } from '../../src/index.js';
import { STATUS } from '../../src/core/driver.js';
import { isDreError } from '../../src/core/errors.js';
import { basesDir, baseDir } from '../../src/core/paths.js';
import { run } from '../../src/core/run.js';
import { ensureDefaultBase } from '../../src/sys/base.js';
import { baseDiskPath, consoleLogPath } from '../../src/sys/layout.js';
import { qemuPid } from '../../src/sys/state.js';
import { cli, uniqueName } from '../support/env.js';

const tmp = process.env.DRE_TEST_TMP!;

/** A 1 MiB raw disk whose MBR boot code prints `dre-mbr login: ` on COM1 (0x3f8) and halts: a boot loader in 23 bytes. */
function mbrDisk(path: string): void {
  const code = [
    [0xfa], // cli
    [0x31, 0xc0, 0x8e, 0xd8], // xor ax,ax; mov ds,ax
    [0xfc], // cld
    [0xbe, 0x17, 0x7c], // mov si,0x7c17 (the message, after these 23 bytes)
    [0xba, 0xf8, 0x03], // mov dx,0x3f8
    [0xac], // next: lodsb
    [0x84, 0xc0, 0x74, 0x03], // test al,al; jz halt
    [0xee], // out dx,al
    [0xeb, 0xf8], // jmp next
    [0xf4, 0xeb, 0xfd], // halt: hlt; jmp halt
  ].flat();
  const disk = Buffer.alloc(1 << 20);
  Buffer.from(code).copy(disk, 0);
  Buffer.from('\r\ndre-mbr login: \0', 'latin1').copy(disk, code.length);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  writeFileSync(path, disk);
}

const baseJson = (b: string) => JSON.parse(readFileSync(join(baseDir('sys', b), 'base.json'), 'utf8')) as { boot: string; agent: boolean };
const noStaging = () =>
  assert.deepEqual(
    readdirSync(basesDir('sys')).filter((e) => e.startsWith('.')),
    [],
    'no staging entry left in the bases directory',
  );
const rejectsWith = (p: Promise<unknown>, code: string, re?: RegExp) =>
  assert.rejects(p, (e) => isDreError(e) && e.errName === code && (re === undefined || re.test(e.message)));

describe('a Base Image imported from a disk', { timeout: 900_000 }, () => {
  const made: string[] = [];
  const bases: string[] = [];
  const raw = join(tmp, 'import-root.raw');
  const mbr = join(tmp, 'import-mbr.raw');

  before(async () => {
    requireQemu();
    await ensureDefaultBase();
    const r = await run('qemu-img', ['convert', '-O', 'raw', baseDiskPath('default'), raw]);
    assert.equal(r.code, 0, r.stderr);
    mbrDisk(mbr);
  });

  after(async () => {
    for (const n of made) await removeGuest(n);
    for (const b of bases) await sys.removeBase(b).catch(() => {});
  });

  it('copies a raw and a qcow2 disk with ext4 on the whole disk into a base booted by D-RE kernel, where snapshots roll back', async () => {
    const fromRaw = uniqueName('imp-raw');
    const fromQcow2 = uniqueName('imp-qcow2');
    const r = cli('dre-sys', ['base', 'import', fromRaw, raw], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    bases.push(fromRaw);
    await sys.importBase(fromQcow2, baseDiskPath('default'));
    bases.push(fromQcow2);
    for (const b of [fromRaw, fromQcow2]) {
      assert.deepEqual({ boot: baseJson(b).boot, agent: baseJson(b).agent }, { boot: 'kernel', agent: false });
      assert.ok(existsSync(join(baseDir('sys', b), 'vmlinuz')), "the default base's kernel is beside the disk");
      // The same guest-visible bytes as the source, in a stand-alone qcow2.
      const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, baseDiskPath(b)]);
      assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
      const info = JSON.parse((await run('qemu-img', ['info', '--output=json', baseDiskPath(b)])).stdout) as { format: string; 'backing-filename'?: string };
      assert.equal(info.format, 'qcow2');
      assert.equal(info['backing-filename'], undefined);
    }
    assert.ok((await sys.listBases()).includes(fromRaw));
    const name = uniqueName('vmimp');
    await sys.create(name, { base: fromRaw, memorySize: 128, network: false });
    made.push(name);
    await sys.start(name); // this root runs D-RE's agent, which start still finds
    await sh(name, 'echo before > /root/mark && sync');
    await sys.stop(name, { timeoutMs: 30_000 });
    await sys.saveSnapshot(name, 's1');
    await sys.start(name);
    await sh(name, 'echo after > /root/mark && sync');
    await sys.stop(name, { timeoutMs: 30_000 });
    await sys.loadSnapshot(name, 's1');
    await sys.start(name);
    assert.equal(await sh(name, 'cat /root/mark'), 'before');
    await sys.stop(name, { timeoutMs: 30_000 });
  });

  it('boots a partitioned disk through the firmware and its own boot loader: start returns once it booted, exec refuses, stop ends it', async () => {
    const b = uniqueName('imp-mbr');
    await sys.importBase(b, mbr);
    bases.push(b);
    assert.deepEqual({ boot: baseJson(b).boot, agent: baseJson(b).agent }, { boot: 'firmware', agent: false });
    assert.ok(!existsSync(join(baseDir('sys', b), 'vmlinuz')), 'no kernel of D-RE boots it');
    const name = uniqueName('vmmbr');
    await sys.create(name, { base: b, memorySize: 64, network: false });
    made.push(name);
    const began = Date.now();
    const r = cli('dre-sys', ['start', name], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the guest booted, but the guest runs no D-RE agent/);
    // On the prompt (login: , its trailing space included), not after the 60 s bound for a silent guest.
    assert.ok(Date.now() - began < 50_000, `start took ${Date.now() - began} ms`);
    assert.equal(await sys.status(name), STATUS.RUNNING);
    assert.match(readFileSync(consoleLogPath(name), 'latin1'), /dre-mbr login: /, "the disk's own boot code ran");
    const argv = readFileSync(`/proc/${qemuPid(name)}/cmdline`, 'latin1').split('\0');
    assert.ok(!argv.includes('-kernel'), 'QEMU boots no kernel of its own');
    await rejectsWith(sys.execCapture(name, ['true']), 'DRE_ERR_DEVICE_BUSY', /no D-RE agent/);
    await sys.stop(name, { timeoutMs: 1_000 });
    assert.equal(await sys.status(name), STATUS.STOP);
    // A base committed from it boots the same way.
    await sys.saveSnapshot(name, 's1');
    const committed = uniqueName('imp-mbr-c');
    await sys.commitSnapshot(name, 's1', committed);
    bases.push(committed);
    assert.equal(baseJson(committed).boot, 'firmware');
    assert.ok((await sys.listBases()).includes(committed));
    // Exported and imported with its base, which carries no kernel: it comes back as it was, and boots.
    const file = join(tmp, 'import-mbr-export.tar');
    await sys.exportContainer(name, file);
    await sys.destroy(name);
    await sys.removeBase(committed);
    await sys.removeBase(b);
    assert.equal(await sys.importContainer(file), name);
    assert.deepEqual({ boot: baseJson(b).boot, agent: baseJson(b).agent }, { boot: 'firmware', agent: false });
    assert.ok(!existsSync(join(baseDir('sys', b), 'vmlinuz')));
    await sys.start(name);
    assert.match(readFileSync(consoleLogPath(name), 'latin1'), /dre-mbr login: /);
    await sys.stop(name, { timeoutMs: 0 });
  });

  it('refuses a missing file, another format, a backing file, a disk that boots neither way and a taken name, leaving nothing', async () => {
    const b = uniqueName('imp-bad');
    await rejectsWith(sys.importBase(b, join(tmp, 'no-such.img')), 'DRE_ERR_INVALID_ARGUMENT', /not a disk image/);
    const text = join(tmp, 'import-text.img');
    writeFileSync(text, 'not a disk\n'.repeat(1000));
    await rejectsWith(sys.importBase(b, text), 'DRE_ERR_INVALID_ARGUMENT', /neither an ext4 file system .* nor a partition table/);
    const vmdk = join(tmp, 'import.vmdk');
    assert.equal((await run('qemu-img', ['create', '-q', '-f', 'vmdk', vmdk, '1M'])).code, 0);
    await rejectsWith(sys.importBase(b, vmdk), 'DRE_ERR_INVALID_ARGUMENT', /is a vmdk image/);
    // A qcow2 whose header names a host file as its backing: root's copy would read that file into the base.
    const backed = join(tmp, 'import-backed.qcow2');
    assert.equal((await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/shadow', backed])).code, 0);
    await rejectsWith(sys.importBase(b, backed), 'DRE_ERR_INVALID_ARGUMENT', /backing file \/etc\/shadow/);
    await rejectsWith(sys.importBase(b, mbr, { boot: 'bios' as 'firmware' }), 'DRE_ERR_INVALID_ARGUMENT', /boot is "kernel" or "firmware"/);
    await rejectsWith(sys.importBase('default', mbr), 'DRE_ERR_BASE_EXISTENCE');
    await rejectsWith(sys.importBase('../x', mbr), 'DRE_ERR_INVALID_ARGUMENT');
    assert.ok(!existsSync(baseDir('sys', b)), 'no base made');
    noStaging();
    const taken = bases[0];
    await rejectsWith(sys.importBase(taken, mbr), 'DRE_ERR_BASE_EXISTENCE');
    assert.equal(baseJson(taken).boot, 'kernel', 'the existing base is unchanged');
  });
});

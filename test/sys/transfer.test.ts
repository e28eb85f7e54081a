/**
 * Export and import of a system container: a VM with two snapshots and a checkpoint moved into a
 * second D-RE root, where each snapshot's disk content is bit-identical (qemu-img convert of both
 * sides), a snapshot boots with its file, and the checkpoint restarts; a committed base travels by
 * name; a damaged file, a different base of the same name and a running container are refused, and
 * nothing is left behind.
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sys } from '../../src/index.js';
import { cli, uniqueName } from '../support/env.js';
import { assertDamagedRefused } from '../support/archives.js';
import { useTestNetwork } from '../support/sweep.js';

const tmp = process.env.DRE_TEST_TMP!;

/** The guest-visible content of the disk at snapshot `tag` (its whole chain, as raw bytes), by sha256. */
function snapshotContent(disk: string, tag: string): string {
  const raw = join(tmp, `content-${process.pid}.raw`);
  try {
    execFileSync('qemu-img', ['convert', '-U', '-l', `snapshot.name=dre-snap-${tag}`, '-O', 'raw', disk, raw]);
    const hash = createHash('sha256');
    const fd = openSync(raw, 'r');
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
    closeSync(fd);
    return hash.digest('hex');
  } finally {
    rmSync(raw, { force: true });
  }
}

describe('export and import of a system container', { timeout: 1_200_000 }, () => {
  // A second D-RE host's root and run dir (host*: swept at the end of the run), with a test bridge of its own.
  const hostB = join(tmp, 'host-sysimport');
  const other = { DRE_ROOT: join(hostB, 'root'), DRE_RUNDIR: join(hostB, 'run') };
  const work = join(tmp, 'systransfer');
  const vm = uniqueName('vmexp');
  const file = join(work, 'vm.tar.zst');
  const imported: string[] = [];
  const ok = (args: string[], env?: NodeJS.ProcessEnv) => {
    const r = cli('dre-sys', args, { env, timeoutMs: 600_000 });
    assert.equal(r.code, 0, `dre-sys ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const shB = async (n: string, command: string) => ok(['exec', n, '--', 'sh', '-c', command], other).trim();
  const recordIn = (root: string, n: string) => JSON.parse(readFileSync(join(root, 'sys/containers', n, 'dre.json'), 'utf8'));

  before(async () => {
    requireQemu();
    mkdirSync(work, { recursive: true });
    mkdirSync(hostB, { recursive: true });
    useTestNetwork(hostB);
    chmodSync(hostB, 0o711); // passable for dre-qemu, as the run's own tmp is
    await sys.create(vm);
    await sys.start(vm);
    await sh(vm, 'echo one > /root/f1; sync');
    await sys.stop(vm);
    await sys.saveSnapshot(vm, 's1');
    await sys.start(vm);
    await sh(vm, 'echo two > /root/f2; rm /root/f1; echo before > /run/state; sync');
    await sys.checkpoint(vm, 'c1');
    await sys.stop(vm);
    await sys.saveSnapshot(vm, 's2');
  });

  after(async () => {
    for (const n of imported) {
      cli('dre-sys', ['stop', n, '--timeout', '0'], { env: other });
      cli('dre-sys', ['destroy', n], { env: other });
    }
    await removeGuest(vm);
  });

  it('moves a VM with two snapshots and a checkpoint to another root, where each snapshot is bit-identical and boots', async () => {
    ok(['export', vm, file]);
    assert.equal(readFileSync(file).subarray(0, 4).toString('hex'), '28b52ffd', 'a .zst name gives a zstd file');
    assert.equal(ok(['import', file], other).trim(), vm);
    imported.push(vm);
    assert.deepEqual(JSON.parse(ok(['snapshots', vm, '--json'], other)), ['s1', 's2']);
    assert.deepEqual(JSON.parse(ok(['checkpoints', vm, '--json'], other)), ['c1']);
    const srcDisk = join(process.env.DRE_ROOT!, 'sys/containers', vm, 'disk.qcow2');
    const dstDisk = join(other.DRE_ROOT, 'sys/containers', vm, 'disk.qcow2');
    for (const tag of ['s1', 's2']) assert.equal(snapshotContent(dstDisk, tag), snapshotContent(srcDisk, tag), `snapshot ${tag}`);
    assert.notEqual(snapshotContent(srcDisk, 's1'), snapshotContent(srcDisk, 's2'));
    // Its overlay stands on this root's copy of the very default base it was made on, and it has this root's address and MAC.
    const rec = recordIn(other.DRE_ROOT, vm);
    const mine = recordIn(process.env.DRE_ROOT!, vm);
    const srcBase = join(process.env.DRE_ROOT!, 'sys/bases/default/disk.qcow2');
    const srcBaseSha = createHash('sha256').update(readFileSync(srcBase)).digest('hex');
    // That root has no default of its own: the exported one comes in under its hash.
    assert.equal(rec.base, `default-${srcBaseSha.slice(0, 12)}`);
    const baseDisk = join(other.DRE_ROOT, 'sys/bases', rec.base, 'disk.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', dstDisk], { encoding: 'utf8' }));
    assert.equal(info['full-backing-filename'], baseDisk);
    assert.equal(createHash('sha256').update(readFileSync(baseDisk)).digest('hex'), srcBaseSha);
    assert.notEqual(rec.address, mine.address);
    assert.notEqual(rec.mac, mine.mac);
    // The snapshot boots there with its file (read by the guest itself).
    ok(['load', vm, 's1'], other);
    ok(['start', vm], other);
    try {
      assert.equal(await shB(vm, 'cat /root/f1; ls /root'), 'one\nf1');
    } finally {
      ok(['stop', vm], other);
    }
  });

  it('restarts the travelled checkpoint there, and refuses to export it while it runs', async () => {
    ok(['restart', vm, 'c1'], other);
    try {
      assert.equal(await shB(vm, 'cat /run/state /root/f2'), 'before\ntwo');
      const r = cli('dre-sys', ['export', vm, join(work, 'running.tar')], { env: other });
      assert.equal(r.code, 113, r.stderr);
      assert.match(r.stderr, /DRE_ERR_CONTAINER_RUNNING/);
      assert.deepEqual(
        readdirSync(work).filter((f) => f.startsWith('running')),
        [],
      );
    } finally {
      ok(['stop', vm], other);
    }
  });

  it('imports under a new name on the same base (the default itself where it is identical), and carries a committed base by name, found identical on a second import', async () => {
    ok(['import', file, 'copy1'], other);
    imported.push('copy1');
    assert.equal(recordIn(other.DRE_ROOT, 'copy1').base, recordIn(other.DRE_ROOT, vm).base);
    assert.notEqual(recordIn(other.DRE_ROOT, 'copy1').address, recordIn(other.DRE_ROOT, vm).address);
    // Back in the root it came from, its default is the same one: used as it is, no second base.
    const here = uniqueName('vmexphere');
    try {
      assert.equal(await sys.importContainer(file, here), here);
      assert.equal(JSON.parse(readFileSync(join(process.env.DRE_ROOT!, 'sys/containers', here, 'dre.json'), 'utf8')).base, 'default');
      assert.deepEqual(
        (await sys.listBases()).filter((b) => b.startsWith('default')),
        ['default'],
      );
    } finally {
      await removeGuest(here);
    }
    const committed = uniqueName('vmexpbase');
    await sys.commitSnapshot(vm, 's2', committed);
    const child = uniqueName('vmexpchild');
    try {
      await sys.create(child, { base: committed, network: false });
      const f = join(work, 'child.tar');
      ok(['export', child, f]);
      for (const copy of ['child1', 'child2']) {
        ok(['import', f, copy], other);
        imported.push(copy);
      }
      assert.equal(recordIn(other.DRE_ROOT, 'child2').base, committed);
      assert.equal(recordIn(other.DRE_ROOT, 'child2').address, null);
      const disk = join(other.DRE_ROOT, 'sys/containers/child2/disk.qcow2');
      assert.equal(
        JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' }))['full-backing-filename'],
        join(other.DRE_ROOT, 'sys/bases', committed, 'disk.qcow2'),
      );
      assert.deepEqual(
        JSON.parse(ok(['bases', '--json'], other)).filter((b: string) => b === committed),
        [committed],
      );
    } finally {
      await removeGuest(child);
      await sys.removeBase(committed);
    }
  });

  it('refuses a corrupt or truncated file and a different base of the same name, leaving nothing behind', () => {
    const plain = join(work, 'plain.tar');
    ok(['export', vm, plain]);
    const entries = () => ({
      containers: readdirSync(join(other.DRE_ROOT, 'sys/containers')),
      bases: readdirSync(join(other.DRE_ROOT, 'sys/bases')),
    });
    const was = entries();
    assertDamagedRefused('dre-sys', plain, work, other);
    assert.deepEqual(entries(), was, 'no container, base or staging entry');
    const leases = JSON.parse(readFileSync(join(other.DRE_ROOT, 'app/leases.json'), 'utf8'));
    assert.deepEqual(
      Object.keys(leases).filter((k) => k.includes('broken')),
      [],
    );
    assert.equal(cli('dre-sys', ['import', plain], { env: other }).code, 112, 'its own name is taken there');
    // A third root holding another base under the name the exported default comes in as.
    const manifest = JSON.parse(execFileSync('tar', ['-x', '-O', '-f', plain, 'manifest.json'], { encoding: 'utf8' }));
    const name = `default-${manifest.members['bases/default/disk.qcow2'].sha256.slice(0, 12)}`;
    const rootC = join(tmp, 'host-sysimport-c', 'root');
    const fake = join(rootC, 'sys/bases', name);
    mkdirSync(fake, { recursive: true });
    for (const f of ['disk.qcow2', 'vmlinuz', 'initrd.img', 'base.json']) writeFileSync(join(fake, f), 'not that base\n');
    const r = cli('dre-sys', ['import', plain], { env: { DRE_ROOT: rootC, DRE_RUNDIR: join(tmp, 'host-sysimport-c', 'run') } });
    assert.equal(r.code, 122, r.stderr);
    assert.match(r.stderr, /DRE_ERR_BASE_EXISTENCE/);
    assert.deepEqual(readdirSync(join(rootC, 'sys/containers')), []);
    assert.deepEqual(readdirSync(join(rootC, 'sys/bases')), [name]);
    assert.equal(readFileSync(join(fake, 'disk.qcow2'), 'utf8'), 'not that base\n');
    assert.equal(cli('dre-sys', ['export', vm, join(work, 'nope', 'x.tar')]).code, 101);
    assert.deepEqual(
      readdirSync(work).filter((f) => f.includes('dre-export') || f.includes('.tmp-')),
      [],
    );
  });
  it('refuses a file whose hashes agree but whose disk is not as D-RE makes it (an external data file, other snapshots)', () => {
    const dir = join(work, 'crafted');
    mkdirSync(dir, { recursive: true });
    ok(['export', vm, join(work, 'good.tar')]);
    execFileSync('tar', ['-x', '-f', join(work, 'good.tar'), '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const disk = join(dir, 'container/disk.qcow2');
    const craft = (name: string, change: () => void) => {
      change();
      const members = manifest.members as Record<string, { size: number; sha256: string }>;
      const buf = readFileSync(disk);
      members['container/disk.qcow2'] = { size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
      const f = join(work, `${name}.tar`);
      execFileSync('tar', ['-c', '-f', f, '-C', dir, 'manifest.json', ...Object.keys(members)]);
      return f;
    };
    const was = readdirSync(join(other.DRE_ROOT, 'sys/containers'));
    // The manifest names a checkpoint the disk does not hold.
    const extraTag = craft('extra-tag', () => manifest.checkpoints.push('c9'));
    // A disk whose header reads its blocks from a host file.
    const secret = join(work, 'host-file.raw');
    writeFileSync(secret, '');
    const dataFile = craft('data-file', () => {
      rmSync(disk);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, disk, '1M']); // qemu-img makes the data file: a scratch one
      manifest.snapshots = [];
      manifest.checkpoints = [];
    });
    for (const [f, why] of [
      [extraTag, /the manifest says/],
      [dataFile, /container\/disk.qcow2 keeps its data in an external data file/],
    ] as const) {
      const r = cli('dre-sys', ['import', f, 'crafted'], { env: other });
      assert.equal(r.code, 101, r.stderr);
      assert.match(r.stderr, /DRE_ERR_INVALID_ARGUMENT/);
      assert.match(r.stderr, why);
    }
    assert.deepEqual(readdirSync(join(other.DRE_ROOT, 'sys/containers')), was);
  });
  it('refuses to export a disk whose header was changed to name an external data file, writing nothing', async () => {
    const n = uniqueName('vmexptamper');
    try {
      await sys.create(n, { network: false });
      const disk = join(process.env.DRE_ROOT!, 'sys/containers', n, 'disk.qcow2');
      rmSync(disk);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(work, 'tamper.raw')},data_file_raw=on`, disk, '1M']);
      const out = join(work, 'tampered.tar');
      await assert.rejects(sys.exportContainer(n, out), (e: Error & { errName?: string }) => {
        assert.equal(e.errName, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS');
        assert.match(e.message, /external data file/);
        return true;
      });
      assert.deepEqual(
        readdirSync(work).filter((f) => f.startsWith('tampered')),
        [],
      );
    } finally {
      await removeGuest(n);
    }
  });
});

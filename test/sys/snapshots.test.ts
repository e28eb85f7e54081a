import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { STATUS } from '../../src/core/driver.js';
import { baseDir } from '../../src/core/paths.js';
import { run } from '../../src/core/run.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { diskPath } from '../../src/sys/lease.js';
import { uniqueName } from '../support/env.js';
import { removeGuest, requireQemu, sh } from './helpers.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (e: { code?: number }) => e.code,
  );

/** The internal snapshot names of a disk, read by qemu-img (not by D-RE). */
async function imageSnapshots(disk: string): Promise<string[]> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', disk]);
  return ((JSON.parse(r.stdout) as { snapshots?: { name: string }[] }).snapshots ?? []).map((s) => s.name).sort();
}

describe('snapshots, checkpoints and Base Images of system containers', () => {
  const name = uniqueName('sys-snap');
  const sibling = uniqueName('sys-sib');
  const base = uniqueName('sys-base');

  before(async () => {
    requireQemu();
    await sys.create(name, {});
    await sys.start(name);
  });
  after(async () => {
    await removeGuest(sibling);
    await removeGuest(name);
    try {
      await sys.removeBase(base);
    } catch {
      /* never made, or already removed */
    }
  });

  it('reverts the RAM state (a file in a tmpfs) when restarted from a checkpoint of the running guest', async () => {
    await sh(name, 'echo before > /run/state; echo on-disk > /root/kept; sync');
    await sys.checkpoint(name, 'c1');
    await sh(name, 'echo after > /run/state');
    await sys.restart(name, 'c1');
    assert.equal(await sys.status(name), STATUS.RUNNING);
    assert.equal(await sh(name, 'cat /run/state'), 'before');
  });

  it('refuses a checkpoint tag that exists, and a missing one, with the snapshot codes', async () => {
    assert.equal(await code(sys.checkpoint(name, 'c1')), -132);
    assert.equal(await code(sys.restart(name, 'nope')), -131);
    assert.equal(await code(sys.removeCheckpoint(name, 'nope')), -131);
    assert.equal(await code(sys.restart(name, 's-not-a-checkpoint')), -131);
    assert.equal(await sys.status(name), STATUS.RUNNING);
    assert.equal(await sh(name, 'cat /run/state'), 'before');
  });

  it('lists a checkpoint as a checkpoint only, never as a snapshot', async () => {
    assert.deepEqual(await sys.listCheckpoints(name), ['c1']);
    assert.deepEqual(await sys.listSnapshots(name), []);
  });

  it('restarts a stopped container from a checkpoint with its RAM state', async () => {
    await sh(name, 'echo later > /run/state');
    await sys.stop(name);
    await sys.restart(name, 'c1');
    assert.equal(await sys.status(name), STATUS.RUNNING);
    assert.equal(await sh(name, 'cat /run/state'), 'before');
    await sys.stop(name);
  });

  it('reverts a disk change when a snapshot is loaded', async () => {
    await sys.saveSnapshot(name, 's1');
    assert.deepEqual(await sys.listSnapshots(name), ['s1']);
    assert.deepEqual(await sys.listCheckpoints(name), ['c1']);
    assert.ok((await imageSnapshots(diskPath(name))).includes('dre-snap-s1'));
    assert.equal(await code(sys.saveSnapshot(name, 's1')), -132);
    await sys.start(name);
    await sh(name, 'echo changed > /root/kept; touch /root/new; sync');
    assert.equal(await code(sys.loadSnapshot(name, 's1')), -113);
    await sys.stop(name);
    await sys.loadSnapshot(name, 's1');
    await sys.start(name);
    assert.equal(await sh(name, 'cat /root/kept; ls /root'), 'on-disk\nkept');
    await sys.stop(name);
  });

  it('makes a Base Image from a snapshot, on which a sibling sees the content and is isolated', async () => {
    await sys.commitSnapshot(name, 's1', base);
    assert.ok((await sys.listBases()).includes(base));
    // The committed base stands alone: no backing file.
    const info = await run('qemu-img', ['info', '--output=json', `${baseDir('sys', base)}/disk.qcow2`]);
    assert.equal((JSON.parse(info.stdout) as { 'backing-filename'?: string })['backing-filename'], undefined);
    assert.equal(await code(sys.commitSnapshot(name, 's1', base)), -122);
    await sys.create(sibling, { base });
    await sys.start(sibling);
    assert.equal(await sh(sibling, 'cat /root/kept'), 'on-disk');
    await sh(sibling, 'echo sibling > /root/kept; sync');
    await sys.start(name);
    assert.equal(await sh(name, 'cat /root/kept'), 'on-disk');
    await sh(name, 'echo original > /root/kept; sync');
    assert.equal(await sh(sibling, 'cat /root/kept'), 'sibling');
    await sys.stop(name);
  });

  it('refuses to remove a Base Image in use with REMOVE_BASE_FAILED, and removes it once unused', async () => {
    assert.equal(await code(sys.removeBase(base)), -123);
    assert.ok(existsSync(baseDir('sys', base)));
    await sys.stop(sibling);
    await sys.destroy(sibling);
    await sys.removeBase(base);
    assert.equal(existsSync(baseDir('sys', base)), false);
    assert.equal(await code(sys.removeBase(base)), -121);
    assert.equal(await code(sys.create(sibling, { base })), -121);
  });

  it('removes a snapshot and a checkpoint from the disk', async () => {
    await sys.removeSnapshot(name, 's1');
    await sys.removeCheckpoint(name, 'c1');
    assert.deepEqual(await imageSnapshots(diskPath(name)), []);
    assert.equal(await code(sys.removeSnapshot(name, 's1')), -131);
    assert.equal(await code(sys.loadSnapshot(name, 's1')), -131);
    assert.equal(await code(sys.commitSnapshot(name, 's1', 'x')), -131);
  });
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { STATUS } from '../../src/core/driver.js';
import { containerDir } from '../../src/core/paths.js';
import * as spec from '../../src/spec/sys.js';
import { ensureDefaultBase } from '../../src/sys/base.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { pidFilePath } from '../../src/sys/layout.js';
import { cli, uniqueName } from '../support/env.js';
import { removeGuest, requireQemu } from './helpers.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (e: { code?: number }) => e.code,
  );
const hostHasVt = /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));

describe('system container errors and the spec layer', () => {
  const name = uniqueName('sys-err');
  const tcgByConfig = uniqueName('sys-cfg');

  before(async () => {
    requireQemu();
    await ensureDefaultBase();
    await sys.create(name, { accel: 'kvm' }); // asked for: a create under DRE_SYS_ACCEL=tcg records tcg (test/cli)
  });
  after(async () => {
    await removeGuest(tcgByConfig);
    await removeGuest(name);
  });

  it('checks a tag before the container, as the app side does: a bad tag is INVALID_ARGUMENT (101) whatever the name', () => {
    for (const args of [
      ['snapshot', 'nosuch', '../x'],
      ['load', 'nosuch', '../x'],
      ['rm-snapshot', 'nosuch', '../x'],
    ]) {
      for (const prog of ['dre-sys', 'dre-app'] as const) {
        const r = cli(prog, args);
        assert.equal(r.code, 101, `${prog} ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /DRE_ERR_INVALID_ARGUMENT/);
      }
    }
  });

  it(
    'refuses to start without hardware virtualization unless software emulation is asked for (NO_VT)',
    { skip: hostHasVt ? 'this host has vmx/svm, so KVM is available and NO_VT cannot occur' : false },
    async () => {
      const saved = process.env.DRE_SYS_ACCEL;
      delete process.env.DRE_SYS_ACCEL;
      try {
        const err = await sys.start(name).then(
          () => undefined,
          (e: Error & { code: number }) => e,
        );
        assert.equal(err?.code, -104);
        assert.match(err!.message, /DRE_SYS_ACCEL=tcg/);
        assert.equal(await spec.dre_sys_start({ type: 100, name }), spec.DRE_ERR_NO_VT);
        process.env.DRE_SYS_ACCEL = 'kvm';
        assert.equal(await code(sys.start(name)), -104);
        assert.equal(await sys.status(name), STATUS.STOP);
        assert.equal(existsSync(pidFilePath(name)), false);
        const r = cli('dre-sys', ['start', name], { env: { DRE_SYS_ACCEL: '' } });
        assert.equal(r.code, 104);
        assert.match(r.stderr, /DRE_ERR_NO_VT: .*DRE_SYS_ACCEL=tcg/);
      } finally {
        process.env.DRE_SYS_ACCEL = saved;
      }
    },
  );

  it('uses software emulation when the container itself opts in', async () => {
    const saved = process.env.DRE_SYS_ACCEL;
    delete process.env.DRE_SYS_ACCEL;
    try {
      await sys.create(tcgByConfig, { accel: 'tcg' });
      await sys.start(tcgByConfig);
      assert.match(readFileSync(`/proc/${await sys.pid(tcgByConfig)}/cmdline`, 'utf8'), /\0-accel\0tcg\0/);
      await sys.stop(tcgByConfig);
      await sys.destroy(tcgByConfig);
    } finally {
      process.env.DRE_SYS_ACCEL = saved;
    }
  });

  it('rejects an unknown DRE_SYS_ACCEL with INVALID_ARGUMENT', async () => {
    const saved = process.env.DRE_SYS_ACCEL;
    process.env.DRE_SYS_ACCEL = 'xen';
    try {
      assert.equal(await code(sys.start(name)), -101);
    } finally {
      process.env.DRE_SYS_ACCEL = saved;
    }
  });

  it('rejects bad names and configs with the precise code, creating nothing', async () => {
    const before = await sys.list();
    assert.equal(await code(sys.create(null as unknown as string, {})), -201);
    assert.equal(await code(sys.create('x'.repeat(65), {})), -202);
    assert.equal(await code(sys.create('../escape', {})), -101);
    assert.equal(await code(sys.create('.hidden', {})), -101);
    assert.equal(await code(sys.create(uniqueName('m'), { memorySize: -5 })), -101);
    assert.equal(await code(sys.create(uniqueName('m'), { memorySize: 1.5 })), -101);
    assert.equal(await code(sys.create(uniqueName('b'), { base: '../default' })), -101);
    assert.equal(await code(sys.create(uniqueName('b'), { base: 'no-such-base' })), -121);
    assert.equal(await code(sys.create(uniqueName('r'), { rootfs: 'relative.img' })), -101);
    assert.equal(await code(sys.create(uniqueName('r'), { rootfs: '/no/such/disk.img' })), -101);
    assert.equal(await code(sys.create(uniqueName('a'), { accel: 'hvf' as 'kvm' })), -101);
    assert.equal(await code(sys.create(name, {})), -112);
    assert.deepEqual(await sys.list(), before);
  });

  it('answers operations on a missing container with CONTAINER_NONEXISTENCE', async () => {
    const ghost = uniqueName('ghost');
    for (const p of [
      sys.start(ghost),
      sys.stop(ghost),
      sys.status(ghost),
      sys.destroy(ghost),
      sys.pid(ghost),
      sys.suspend(ghost),
      sys.listSnapshots(ghost),
      sys.checkpoint(ghost, 't'),
    ]) {
      assert.equal(await code(p), -111);
    }
  });

  it('rejects bad tags and state-dependent operations on a stopped container', async () => {
    assert.equal(await code(sys.saveSnapshot(name, '../x')), -101);
    assert.equal(await code(sys.saveSnapshot(name, null as unknown as string)), -201);
    assert.equal(await code(sys.checkpoint(name, 'c')), -114);
    assert.equal(await code(sys.resume(name)), -114);
    assert.equal(await code(sys.execCapture(name, [])), -101);
    assert.equal(await code(sys.loadSnapshot(name, 'none')), -131);
    assert.equal(await code(sys.restart(name, 'none')), -131);
    assert.equal(await code(sys.removeBase('no-such-base')), -121);
    assert.equal(await code(sys.stop(name, { timeoutMs: -1 })), -101);
  });

  it('resolves spec functions to codes and fills out-parameters', async () => {
    assert.equal(spec.DRE_SYS_CONTAINER_TYPE_KVM, 100);
    assert.equal(await spec.dre_sys_create_container(uniqueName('s'), null), spec.DRE_ERR_NULL_POINTER);
    assert.equal(await spec.dre_sys_create_container(uniqueName('s'), { type: 1 as 100, udata: { kvm: {} } }), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(
      await spec.dre_sys_create_container(name, { type: 100, udata: { kvm: { memory_size: 128, base: null, rootfs: null } } }),
      spec.DRE_ERR_CONTAINER_EXISTENCE,
    );
    assert.equal(await spec.dre_sys_open(uniqueName('missing')), null);
    const h = await spec.dre_sys_open(name);
    assert.deepEqual(h, { type: 100, name });
    assert.equal(await spec.dre_sys_status(h!), spec.DRE_SYS_CONTAINER_STATUS_STOP);
    assert.equal(await spec.dre_sys_status({ type: 1 as 100, name }), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_sys_status(null as unknown as spec.dre_sys_handle), spec.DRE_ERR_NULL_POINTER);
    const list: spec.Out<string[]> = {};
    assert.equal(await spec.dre_sys_get_container_list(list), 0);
    assert.ok(list.value?.includes(name));
    assert.equal(await spec.dre_sys_release_container_list(list), 0);
    assert.equal(await spec.dre_sys_release_container_list(null), spec.DRE_ERR_NULL_POINTER);
    const bases: spec.Out<string[]> = {};
    assert.equal(await spec.dre_sys_get_base_list(bases), 0);
    assert.ok(bases.value?.includes('default'));
    const snaps: spec.Out<string[]> = {};
    assert.equal(await spec.dre_sys_get_snapshot_list(h!, snaps), 0);
    assert.deepEqual(snaps.value, []);
    assert.equal(await spec.dre_sys_get_checkpoint_list(h!, null as unknown as spec.Out<string[]>), spec.DRE_ERR_NULL_POINTER);
    const pid: spec.Out<number> = {};
    assert.equal(await spec.dre_sys_get_pid(h!, pid), spec.DRE_ERR_CONTAINER_STOPPED);
    assert.equal(await spec.dre_sys_remove_base('default'), spec.DRE_ERR_REMOVE_BASE_FAILED);
    assert.equal(await spec.dre_sys_bind_pid(h!, 'g', -1), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_sys_close(h!), 0);
    assert.equal(await spec.dre_sys_close(null), spec.DRE_ERR_NULL_POINTER);
  });

  it('exits the CLI with the code of the error and a one-line message', () => {
    const dup = cli('dre-sys', ['create', name]);
    assert.equal(dup.code, 112);
    assert.match(dup.stderr, /^dre-sys: DRE_ERR_CONTAINER_EXISTENCE: create .*\n$/);
    assert.equal(cli('dre-sys', ['status', uniqueName('ghost')]).code, 111);
    assert.equal(cli('dre-sys', ['create', uniqueName('m'), '--memory', 'lots']).code, 101);
    assert.equal(cli('dre-sys', ['create', uniqueName('m'), '--accel', 'xen']).code, 101);
    assert.equal(cli('dre-sys', ['base', 'frobnicate']).code, 101);
    const st = cli('dre-sys', ['status', name, '--json']);
    assert.deepEqual(JSON.parse(st.stdout), { name, status: 'STOP' });
    assert.equal(cli('dre-sys', ['--help']).code, 0);
  });

  it('refuses callers that are not root with PERMISSION_DENIED', () => {
    const r = cli('dre-sys', ['create', uniqueName('nr')], { uid: 65534 });
    assert.equal(r.code, 102, r.stderr);
    assert.match(r.stderr, /DRE_ERR_PERMISSION_DENIED/);
  });

  it('rebuilds the default base with progress only when no container stands on it', async () => {
    const busy = cli('dre-sys', ['base', 'build']);
    assert.equal(busy.code, 123);
    await sys.destroy(name);
    assert.equal(existsSync(containerDir('sys', name)), false);
    const r = cli('dre-sys', ['base', 'build']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /base build: making the initramfs\n[^]*base build: converting to qcow2\n/);
    assert.ok((await sys.listBases()).includes('default'));
  });
});

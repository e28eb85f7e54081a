import '../support/env.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RESOURCE } from '../../src/core/driver.js';
import { checkCores, formatCpuList, limitsOf, parseCpuList, setPlan, unsetPlan, type FileWrite, type GroupFiles } from '../../src/core/limits.js';

const MiB = 1024 * 1024;
const NONE_V1 = '9223372036854771712';

/** A v1 group's files as the kernel shows them on a fresh group, changed by `over`. */
function v1Group(over: Record<string, string | undefined> = {}): GroupFiles {
  const files: Record<string, string | undefined> = {
    'cpu.cfs_period_us': '100000',
    'cpu.cfs_quota_us': '-1',
    'cpuset.cpus': '0-1',
    'memory.limit_in_bytes': NONE_V1,
    'memory.memsw.limit_in_bytes': NONE_V1,
    ...over,
  };
  return { version: () => 1, read: (_c, f) => files[f], readParent: (_c, f) => (f === 'cpuset.cpus' ? '0-1' : undefined) };
}
const plain = (ws: FileWrite[]) => ws.map((w) => `${w.file}=${w.value}`);

describe('limits as cgroup v1 files, and the checks of a caller’s values', () => {
  it('parses and prints CPU lists the way the kernel does', () => {
    assert.deepEqual(parseCpuList('0-2,5'), [0, 1, 2, 5]);
    assert.deepEqual(parseCpuList('3,1,1'), [1, 3]);
    for (const bad of ['1-0', 'a', '0-', '-1', '0,,1', '0 1']) assert.equal(parseCpuList(bad), undefined, bad);
    assert.equal(formatCpuList([5, 0, 1, 2]), '0-2,5');
    assert.equal(checkCores('1,0', [0, 1]), '0-1');
    assert.throws(() => checkCores('2', [0, 1]), { errName: 'DRE_ERR_INVALID_ARGUMENT' });
    assert.throws(() => checkCores(null, [0, 1]), { errName: 'DRE_ERR_NULL_POINTER' });
  });

  it('writes a CPU percentage as cpu.cfs_quota_us in the group’s cfs_period_us, and -1 to lift it', () => {
    assert.deepEqual(plain(setPlan({ type: RESOURCE.CPU, percent: 20 }, v1Group(), [0, 1])), ['cpu.cfs_quota_us=20000']);
    assert.deepEqual(plain(setPlan({ type: RESOURCE.CPU, percent: 250 }, v1Group({ 'cpu.cfs_period_us': '10000' }), [0, 1])), ['cpu.cfs_quota_us=25000']);
    assert.deepEqual(plain(unsetPlan(RESOURCE.CPU, v1Group())), ['cpu.cfs_quota_us=-1']);
    for (const p of [0, -1, Infinity, '20' as never])
      assert.throws(() => setPlan({ type: RESOURCE.CPU, percent: p }, v1Group(), [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' });
  });

  it('restores the parent’s cpuset.cpus on unset (v1 has no "inherit")', () => {
    assert.deepEqual(plain(unsetPlan(RESOURCE.CPU_CORE, v1Group({ 'cpuset.cpus': '1' }))), ['cpuset.cpus=0-1']);
  });

  it('writes memory+swap as the total in memory.memsw.limit_in_bytes, never below memory', () => {
    const mem = v1Group({ 'memory.limit_in_bytes': `${64 * MiB}` });
    assert.deepEqual(plain(setPlan({ type: RESOURCE.MEMSW, bytes: 96 * MiB }, mem, [0])), [`memory.memsw.limit_in_bytes=${96 * MiB}`]);
    assert.throws(() => setPlan({ type: RESOURCE.MEMSW, bytes: 32 * MiB }, mem, [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' });
    const both = v1Group({ 'memory.limit_in_bytes': `${64 * MiB}`, 'memory.memsw.limit_in_bytes': `${96 * MiB}` });
    assert.throws(() => setPlan({ type: RESOURCE.MEMORY, bytes: 128 * MiB }, both, [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' }, 'raise memsw first');
    assert.deepEqual(plain(unsetPlan(RESOURCE.MEMORY, both)), ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1'], 'memsw is lifted first');
  });

  it('fails to set memory+swap where the kernel does not account swap, and says why', () => {
    const noSwap = v1Group({ 'memory.limit_in_bytes': `${64 * MiB}`, 'memory.memsw.limit_in_bytes': undefined });
    assert.throws(() => setPlan({ type: RESOURCE.MEMSW, bytes: 96 * MiB }, noSwap, [0]), /does not account swap/);
    assert.deepEqual(plain(unsetPlan(RESOURCE.MEMORY, noSwap)), ['memory.limit_in_bytes=-1']);
  });

  it('fails when the host lacks the controller a limit needs', () => {
    const none: GroupFiles = { version: () => undefined, read: () => undefined, readParent: () => undefined };
    assert.throws(() => setPlan({ type: RESOURCE.MEMORY, bytes: MiB }, none, [0]), { errName: 'DRE_ERR_SET_LIMIT_FAILED' });
    assert.throws(() => unsetPlan(RESOURCE.CPU, none), { errName: 'DRE_ERR_UNSET_LIMIT_FAILED' });
  });
});

describe('limits read back from a group’s files (limitsOf, the inverse of setPlan)', () => {
  const v2 = (files: Record<string, string>): GroupFiles => ({ version: () => 2, read: (_c, f) => files[f], readParent: () => undefined });

  it('reads no limit from a fresh v1 or v2 group', () => {
    assert.deepEqual(limitsOf(v1Group()), { cpuPercent: null, cores: '0-1', memory: null, memsw: null });
    assert.deepEqual(limitsOf(v2({ 'cpu.max': 'max 100000', 'cpuset.cpus': '', 'memory.max': 'max', 'memory.swap.max': 'max' })), {
      cpuPercent: null,
      cores: null,
      memory: null,
      memsw: null,
    });
  });

  it('reads back what setPlan writes: CPU %, memory and memory+swap, on both versions', () => {
    const one = v1Group({
      'cpu.cfs_period_us': '50000',
      'cpu.cfs_quota_us': '25000',
      'memory.limit_in_bytes': String(64 * MiB),
      'memory.memsw.limit_in_bytes': String(96 * MiB),
    });
    assert.deepEqual(limitsOf(one), { cpuPercent: 50, cores: '0-1', memory: 64 * MiB, memsw: 96 * MiB });
    const two = v2({ 'cpu.max': '150000 100000', 'cpuset.cpus': '1', 'memory.max': String(64 * MiB), 'memory.swap.max': String(32 * MiB) });
    assert.deepEqual(limitsOf(two), { cpuPercent: 150, cores: '1', memory: 64 * MiB, memsw: 96 * MiB });
  });
});

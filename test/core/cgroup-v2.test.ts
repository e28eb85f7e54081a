import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hierarchies, makeGroup, moveProcess, removeGroupTree, subtreeControlLine } from '../../src/core/cgroup.js';
import { ControlGroups } from '../../src/core/controlgroups.js';
import { RESOURCE } from '../../src/core/driver.js';
import { cpuUsageNs, setPlan, unsetPlan, type FileWrite, type GroupFiles, type LimitController } from '../../src/core/limits.js';
import { containerGroup } from '../../src/core/paths.js';
import { sleep } from '../../src/core/proc.js';
import { distDir, uniqueName } from '../support/env.js';

const MiB = 1024 * 1024;

// Formats from the kernel's Documentation/admin-guide/cgroup-v2.rst.
/** cpu.max: "$MAX $PERIOD", $MAX a quota in µs or "max". */
const CPU_MAX = /^(max|\d+) \d+$/;
/** memory.max, memory.swap.max: bytes or "max". */
const BYTES_OR_MAX = /^(max|\d+)$/;
/** cpuset.cpus: comma-separated numbers or ranges; empty = the nearest ancestor's. */
const CPU_LIST = /^(\d+(-\d+)?(,\d+(-\d+)?)*)?$/;
/** cgroup.subtree_control: space-separated controller names, each prefixed by '+' or '-'. */
const SUBTREE_CONTROL = /^[+-][a-z_]+( [+-][a-z_]+)*$/;
const FORMAT: Record<string, RegExp> = { 'cpu.max': CPU_MAX, 'memory.max': BYTES_OR_MAX, 'memory.swap.max': BYTES_OR_MAX, 'cpuset.cpus': CPU_LIST };

/** A v2 group's files as the kernel shows them on a fresh group (defaults from cgroup-v2.rst), changed by `over`. */
function v2Group(over: Record<string, string | undefined> = {}): GroupFiles {
  const files: Record<string, string | undefined> = { 'cpu.max': 'max 100000', 'memory.max': 'max', 'memory.swap.max': 'max', 'cpuset.cpus': '', ...over };
  return {
    version: () => 2,
    read: (_c: LimitController, f: string) => files[f],
    readParent: (_c: LimitController, f: string) => (f === 'cpuset.cpus.effective' ? '0-1' : undefined),
  };
}

/** Every write goes to a v2 file in that file's documented format. */
function assertV2(writes: FileWrite[]): FileWrite[] {
  for (const w of writes) {
    assert.ok(FORMAT[w.file], `${w.file} is a v2 file`);
    assert.match(w.value, FORMAT[w.file], `${w.file} = ${JSON.stringify(w.value)}`);
  }
  return writes;
}
const plain = (ws: FileWrite[]) => ws.map((w) => `${w.file}=${w.value}`);

describe('cgroup v2 files, in the formats of the kernel documentation', () => {
  it('writes a CPU percentage as cpu.max "$MAX $PERIOD" in the group’s own period, and lifts it with "max $PERIOD"', () => {
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU, percent: 20 }, v2Group(), [0, 1]))), ['cpu.max=20000 100000']);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU, percent: 150 }, v2Group(), [0, 1]))), ['cpu.max=150000 100000']);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU, percent: 50 }, v2Group({ 'cpu.max': 'max 50000' }), [0, 1]))), ['cpu.max=25000 50000']);
    assert.deepEqual(plain(assertV2(unsetPlan(RESOURCE.CPU, v2Group({ 'cpu.max': '20000 100000' })))), ['cpu.max=max 100000']);
    assert.throws(
      () => setPlan({ type: RESOURCE.CPU, percent: 0.5 }, v2Group(), [0, 1]),
      { errName: 'DRE_ERR_INVALID_ARGUMENT' },
      'below the 1 ms minimum quota',
    );
  });

  it('writes cores as cpuset.cpus in the kernel’s list form, and lifts them to the parent’s effective CPUs', () => {
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU_CORE, cores: '0' }, v2Group(), [0, 1]))), ['cpuset.cpus=0']);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU_CORE, cores: '0,1' }, v2Group(), [0, 1]))), ['cpuset.cpus=0-1']);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.CPU_CORE, cores: '0,2-3' }, v2Group(), [0, 1, 2, 3]))), ['cpuset.cpus=0,2-3']);
    assert.deepEqual(
      plain(assertV2(unsetPlan(RESOURCE.CPU_CORE, v2Group({ 'cpuset.cpus': '1' })))),
      ['cpuset.cpus=0-1'],
      'not "": a populated v2 cpuset refuses an empty list (ENOSPC)',
    );
  });

  it('writes memory as memory.max bytes and lifts it with "max"', () => {
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.MEMORY, bytes: 24 * MiB }, v2Group(), [0]))), [`memory.max=${24 * MiB}`]);
    assert.deepEqual(plain(assertV2(unsetPlan(RESOURCE.MEMORY, v2Group({ 'memory.max': `${24 * MiB}` })))), ['memory.swap.max=max', 'memory.max=max']);
  });

  it('converts memory+swap to memory.swap.max, which holds swap alone (memsw − memory)', () => {
    const limited = v2Group({ 'memory.max': `${64 * MiB}` });
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.MEMSW, bytes: 96 * MiB }, limited, [0]))), [`memory.swap.max=${32 * MiB}`]);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.MEMSW, bytes: 64 * MiB }, limited, [0]))), ['memory.swap.max=0'], 'memsw = memory: no swap');
    assert.throws(() => setPlan({ type: RESOURCE.MEMSW, bytes: 32 * MiB }, limited, [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' }, 'below memory');
    assert.throws(() => setPlan({ type: RESOURCE.MEMSW, bytes: 32 * MiB }, v2Group(), [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' }, 'memory unlimited');
    assert.deepEqual(plain(assertV2(unsetPlan(RESOURCE.MEMSW, limited))), ['memory.swap.max=max']);
  });

  it('keeps memory+swap when memory changes, never exceeding it between the two writes', () => {
    const both = v2Group({ 'memory.max': `${64 * MiB}`, 'memory.swap.max': `${32 * MiB}` }); // memsw 96 MiB
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.MEMORY, bytes: 80 * MiB }, both, [0]))), [
      `memory.swap.max=${16 * MiB}`,
      `memory.max=${80 * MiB}`,
    ]);
    assert.deepEqual(plain(assertV2(setPlan({ type: RESOURCE.MEMORY, bytes: 32 * MiB }, both, [0]))), [
      `memory.max=${32 * MiB}`,
      `memory.swap.max=${64 * MiB}`,
    ]);
    assert.throws(() => setPlan({ type: RESOURCE.MEMORY, bytes: 128 * MiB }, both, [0]), { errName: 'DRE_ERR_INVALID_ARGUMENT' });
  });

  it('fails to set memory+swap where the kernel does not account swap, and says why', () => {
    assert.throws(
      () => setPlan({ type: RESOURCE.MEMSW, bytes: 96 * MiB }, v2Group({ 'memory.max': `${64 * MiB}`, 'memory.swap.max': undefined }), [0]),
      (e: Error & { errName: string }) => {
        assert.equal(e.errName, 'DRE_ERR_SET_LIMIT_FAILED');
        assert.match(e.message, /does not account swap/);
        return true;
      },
    );
    assert.deepEqual(unsetPlan(RESOURCE.MEMSW, v2Group({ 'memory.swap.max': undefined })), [], 'nothing to lift');
  });

  it('enables controllers with a cgroup.subtree_control line of "+name" words', () => {
    assert.match(subtreeControlLine(['cpu', 'cpuset', 'memory']), SUBTREE_CONTROL);
    assert.equal(subtreeControlLine(['cpu', 'memory']), '+cpu +memory');
  });

  it('reads CPU time from cpu.stat usage_usec', () => {
    assert.equal(cpuUsageNs(2, 'usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n'), 1_234_000);
  });
});

describe('the cgroup v2 tree of this host, for real', () => {
  const v2 = hierarchies().find((h) => h.version === 2);
  const group = containerGroup('sys', uniqueName('v2'));
  let child: ChildProcess | undefined;
  let cgs: ControlGroups;

  before(() => {
    if (!v2) return;
    child = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    makeGroup(v2, `${group}/ns`);
    moveProcess(join(v2.mount, group, 'ns'), child.pid!);
    cgs = new ControlGroups({ owner: 'test group', group, procsLeaf: `${group}/ns` }, [v2]);
  });
  after(() => {
    child?.kill('SIGKILL');
    if (v2) removeGroupTree(join(v2.mount, group));
  });

  const procs = (rel: string) => readFileSync(join(v2!.mount, rel, 'cgroup.procs'), 'utf8').trim();

  it('creates a group, moves a process in and out through cgroup.procs, and removes the group', { skip: !v2 && 'no cgroup2 mount on this host' }, async () => {
    cgs.create('g');
    assert.ok(readdirSync(join(v2!.mount, group)).includes('g'));
    cgs.bind('g', child!.pid!);
    assert.equal(procs(`${group}/g`), `${child!.pid}`);
    assert.match(readFileSync(`/proc/${child!.pid}/cgroup`, 'utf8'), new RegExp(`^0::/${group}/g$`, 'm'));
    cgs.unbind('g', child!.pid!);
    assert.equal(procs(`${group}/ns`), `${child!.pid}`);
    cgs.bind('g', child!.pid!);
    cgs.destroy('g');
    assert.equal(procs(`${group}/ns`), `${child!.pid}`, 'destroy moved it back');
    assert.ok(!readdirSync(join(v2!.mount, group)).includes('g'));
  });

  it('measures CPU % from cpu.stat of the group holding the process', { skip: !v2 && 'no cgroup2 mount on this host' }, async () => {
    const statOf = () => Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(v2!.mount, group, 'ns', 'cpu.stat'), 'utf8'))![1]);
    const u0 = statOf();
    const r = await cgs.get(child!.pid!, RESOURCE.CPU, 400);
    const byFile = (statOf() - u0) / 4000; // µs over ≥ 400 ms, in percent
    assert.ok(r.percent! > 10 && r.percent! <= 105, `a busy loop: ${r.percent}%`);
    assert.ok(Math.abs(r.percent! - byFile) < 40, `close to cpu.stat's own ${byFile.toFixed(1)}%`);
  });

  it('says which controller the v2 tree lacks when a limit needs it', { skip: !v2 && 'no cgroup2 mount on this host' }, async (t) => {
    if (v2!.controllers.includes('cpu')) return t.skip('the cpu controller is on v2 here: limits are proven by the application tests');
    cgs.create('h');
    assert.throws(
      () => cgs.set('h', { type: RESOURCE.CPU, percent: 20 }),
      (e: Error & { errName: string }) => {
        assert.equal(e.errName, 'DRE_ERR_SET_LIMIT_FAILED');
        assert.match(e.message, /cpu controller is not available/);
        return true;
      },
    );
    cgs.destroy('h');
    await sleep(0);
  });
});

/** Where kernel packages are cached (shared with the system container base build). */
const kernelCache = () => process.env.DRE_CACHE_DIR || '/var/cache/dre';
const KERNEL_DEB = /^linux-image-.*-cloud-amd64_.*\.deb$/;

/** Debian's cloud kernel (NVMe, ext4 and the serial console built in), from the cache or `apt-get download`. */
function cloudKernelDeb(): string | undefined {
  mkdirSync(kernelCache(), { recursive: true });
  const cached = () =>
    readdirSync(kernelCache())
      .filter((f) => KERNEL_DEB.test(f) && !f.startsWith('linux-image-cloud-amd64_'))
      .sort();
  if (cached().length === 0) {
    const dep = /Depends:\s*(linux-image-\S+)/.exec(spawnSync('apt-cache', ['depends', 'linux-image-cloud-amd64'], { encoding: 'utf8' }).stdout ?? '')?.[1];
    if (dep) spawnSync('apt-get', ['download', '-q', dep], { cwd: kernelCache(), timeout: 600_000 });
  }
  const debs = cached();
  return debs.length ? join(kernelCache(), debs[debs.length - 1]) : undefined;
}

/** The shared libraries a binary needs, from ldd. */
function libsOf(binary: string): string[] {
  const text = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...text.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1]);
}

describe('the cgroup v2 limit paths in a VM whose cgroups are all v2 (cpu, cpuset, memory)', () => {
  const missing = ['qemu-system-x86_64', 'mkfs.ext4', 'dpkg-deb'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  const skip = missing.length > 0 && `${missing.join(', ')} not installed`;
  let result: Record<string, unknown> = {};
  let tmp = '';

  before(async () => {
    if (skip) return;
    tmp = mkdtempSync('/tmp/dre-v2vm-');
    const deb = cloudKernelDeb();
    assert.ok(deb, `Debian's cloud kernel is in ${kernelCache()} or downloadable`);
    execFileSync('dpkg-deb', ['-x', deb, join(tmp, 'kernel')]);
    const vmlinuz = join(
      tmp,
      'kernel',
      'boot',
      readdirSync(join(tmp, 'kernel', 'boot')).find((f) => f.startsWith('vmlinuz-'))!,
    );
    // Root file system: static busybox, the host's node with its libraries, and the compiled core.
    const root = join(tmp, 'root');
    for (const d of ['bin', 'usr/bin', 'proc', 'sys', 'dev', 'tmp', 'app/dist/src', 'app/dist/test/core']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const node = realpathSync(process.execPath);
    for (const f of [node, ...libsOf(node)]) {
      mkdirSync(join(root, dirname(f)), { recursive: true });
      copyFileSync(f, join(root, f));
      chmodSync(join(root, f), 0o755);
    }
    if (node !== '/usr/bin/node') symlinkSync(node, join(root, 'usr/bin/node'));
    cpSync(join(distDir, 'src', 'core'), join(root, 'app/dist/src/core'), { recursive: true });
    copyFileSync(join(distDir, 'test', 'core', 'cgroup-v2-guest.js'), join(root, 'app/dist/test/core/cgroup-v2-guest.js'));
    writeFileSync(join(root, 'app/package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(root, 'init'),
      [
        '#!/bin/busybox sh',
        '/bin/busybox --install -s /bin',
        'export PATH=/bin:/usr/bin',
        'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp',
        // Nothing mounts v1 here: every controller is on the v2 tree.
        'mount -t cgroup2 cgroup2 /sys/fs/cgroup',
        'DRE_V2_GUEST=1 node /app/dist/test/core/cgroup-v2-guest.js',
        'poweroff -f',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const image = join(tmp, 'root.img');
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, image, '256M']);
    rmSync(root, { recursive: true, force: true });
    const qemu = spawnSync(
      'qemu-system-x86_64',
      [
        '-accel',
        'tcg',
        '-machine',
        'q35',
        '-m',
        '512',
        '-smp',
        '2',
        '-nographic',
        '-no-reboot',
        '-kernel',
        vmlinuz,
        '-append',
        'console=ttyS0 root=/dev/nvme0n1 rootfstype=ext4 rw init=/init panic=-1 loglevel=3',
        '-drive',
        `file=${image},if=none,id=d0,format=raw`,
        '-device',
        'nvme,drive=d0,serial=dre',
      ],
      { encoding: 'utf8', timeout: 300_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
    );
    const line = /DRE-V2-RESULT (.*)$/m.exec(qemu.stdout ?? '')?.[1];
    assert.ok(line, `the guest reported: ${(qemu.stdout ?? '').slice(-2000)} ${qemu.stderr ?? ''}`);
    result = JSON.parse(line.trim());
    assert.equal(result.error, undefined, String(result.error));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const opts = { skip };
  it('has cpu, cpuset and memory on v2 alone, and delegates them to the container group', opts, () => {
    assert.deepEqual(result.hierarchies, [String((result.hierarchies as string[])[0])]);
    assert.match(String((result.hierarchies as string[])[0]), /^2:\/sys\/fs\/cgroup:.*\bcpu\b/);
    for (const c of ['cpu', 'cpuset', 'memory']) assert.ok(String(result.subtreeControl).split(' ').includes(c), `${c} in ${result.subtreeControl}`);
  });
  it('holds 20% CPU through cpu.max, measured from /proc, and lifts it to "max 100000"', opts, (t) => {
    assert.equal(result.cpuMax, '20000 100000');
    assert.match(String(result.busyGroup), /^0::\/dre\/guest\/sys\/vm\/g$/);
    const seen = result.cpuPercent as number[];
    t.diagnostic(`measured in the guest: ${seen.map((x) => x.toFixed(1)).join(', ')}%; get_resource ${result.getCpu}%`);
    assert.ok(
      seen.every((x) => x <= 25),
      `never above the quota: ${seen}`,
    );
    assert.ok(
      seen.some((x) => x >= 15),
      `20% ± 5: ${seen}`,
    );
    assert.ok((result.getCpu as number) > 5 && (result.getCpu as number) <= 27, `get_resource ${result.getCpu}`);
    assert.equal(result.cpuMaxUnset, 'max 100000');
  });
  it('holds core 0 through cpuset.cpus and gives back the parent’s on unset', opts, () => {
    assert.equal(result.cpusetCpus, '0');
    assert.equal(result.cpusAllowed, '0');
    assert.equal(result.getCores, '0');
    assert.deepEqual(result.cpusetUnset, ['0-1', '0-1']);
  });
  it('holds memory through memory.max and memory+swap as memory.swap.max = memsw − memory', opts, () => {
    assert.equal(result.memoryMax, `${24 * MiB}`);
    assert.equal(result.swapMax, `${24 * MiB}`);
    assert.equal(result.memoryAboveMemsw, 'DRE_ERR_INVALID_ARGUMENT');
    const [mem, memFile] = result.getMemory as number[];
    assert.ok(Math.abs(mem - memFile) <= 256 * 1024, `memory ${mem} vs memory.current ${memFile}`);
    const [memsw, memswFile] = result.getMemsw as number[];
    assert.ok(Math.abs(memsw - memswFile) <= 256 * 1024, `memsw ${memsw} vs ${memswFile}`);
  });
  it('lets the kernel kill a process touching 96 MiB in the 24 MiB group', opts, () => {
    assert.equal(result.oomStatus, '137');
    assert.match(String(result.memoryEvents), /^oom_kill [1-9]/m);
  });
  it('lifts memory and swap to "max", and destroys the group with its process moved back', opts, () => {
    assert.deepEqual(result.memoryUnset, ['max', 'max']);
    assert.equal(result.destroyed, true);
    assert.match(String(result.busyBack), /^0::\/dre\/guest\/sys\/vm\/ns$/);
  });
});

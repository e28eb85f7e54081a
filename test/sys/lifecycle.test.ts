import '../support/env.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allHierarchyMounts, groupDir } from '../../src/core/cgroup.js';
import { RESOURCE, STATUS } from '../../src/core/driver.js';
import { ContainerLock } from '../../src/core/lock.js';
import { containerDir, containerGroup, containerRunDir } from '../../src/core/paths.js';
import { isAlive } from '../../src/core/proc.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { consoleLogPath, qmpSocketPath } from '../../src/sys/layout.js';
import { cli, cliPath, uniqueName } from '../support/env.js';
import { qemuIds, removeGuest, requireQemu, sh } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (e: { code?: number }) => e.code,
  );

describe('system container lifecycle on QEMU', () => {
  const name = uniqueName('sys-life');
  let pid = 0;

  before(async () => {
    requireQemu();
    await sys.create(name, { memorySize: 192 });
  });
  after(async () => {
    await removeGuest(name);
  });

  it('is created stopped, with no QEMU and its files root-only', async () => {
    assert.equal(await sys.status(name), STATUS.STOP);
    assert.ok((await sys.list()).includes(name));
    assert.equal(statSync(containerDir('sys', name)).mode & 0o777, 0o700);
    assert.equal(statSync(join(containerDir('sys', name), 'disk.qcow2')).mode & 0o777, 0o600);
  });

  it('starts and returns only when the guest answers, with QEMU running', async () => {
    await sys.start(name);
    assert.equal(await sys.status(name), STATUS.RUNNING);
    pid = await sys.pid(name);
    assert.ok(isAlive(pid));
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /qemu-system-x86_64/);
    assert.equal(await sh(name, 'cat /proc/1/comm'), 'init');
  });

  it("keeps its QMP socket in a run dir that is QEMU's user's own (0700), inside one only that user's group may pass", () => {
    const qemuUid = qemuIds().uid;
    const run = statSync(containerRunDir('sys', name));
    assert.equal(run.mode & 0o777, 0o700);
    assert.equal(run.uid, qemuUid);
    const parent = statSync(dirname(containerRunDir('sys', name)));
    assert.deepEqual([parent.mode & 0o777, parent.uid], [0o710, 0]);
    assert.equal(statSync(qmpSocketPath(name)).uid, qemuUid);
  });

  it('puts the QEMU process and all its threads into the container group in every hierarchy', () => {
    const want = containerGroup('sys', name);
    const tasks = readdirSync(`/proc/${pid}/task`);
    assert.ok(tasks.length > 1, 'QEMU has several threads');
    for (const t of tasks) {
      const lines = readFileSync(`/proc/${pid}/task/${t}/cgroup`, 'utf8').trim().split('\n');
      for (const l of lines) assert.ok(l.endsWith(`/${want}`), `thread ${t}: ${l}`);
    }
    for (const m of allHierarchyMounts()) assert.ok(existsSync(join(m, want)), `${m}/${want}`);
  });

  it('is invisible from another D-RE root, which may hold its own container of the same name', async () => {
    const saved = { root: process.env.DRE_ROOT, run: process.env.DRE_RUNDIR };
    process.env.DRE_ROOT = join(process.env.DRE_TEST_TMP!, 'other-root');
    process.env.DRE_RUNDIR = join(process.env.DRE_TEST_TMP!, 'other-run');
    try {
      assert.equal((await sys.list()).includes(name), false);
      assert.equal(await code(sys.status(name)), -111);
      await sys.create(name, { rootfs: '/dev/null' });
      assert.equal(await sys.status(name), STATUS.STOP);
      assert.equal(await code(sys.pid(name)), -114);
      await sys.destroy(name);
    } finally {
      process.env.DRE_ROOT = saved.root;
      process.env.DRE_RUNDIR = saved.run;
    }
    assert.equal(await sys.status(name), STATUS.RUNNING);
  });

  it('passes stdout, stderr and the exit status of a command in the guest through', async () => {
    const r = await sys.execCapture(name, ['sh', '-c', 'echo "out $1"; echo err >&2; exit 7', 'sh', "it's a b"]);
    assert.equal(r.status, 7);
    assert.equal(r.stdout.toString(), "out it's a b\n");
    assert.equal(r.stderr.toString(), 'err\n');
  });

  it('gives each of several concurrent execs its own answer', async () => {
    const rs = await Promise.all([1, 2, 3, 4].map((i) => sys.execCapture(name, ['sh', '-c', `sleep 0.$i; echo n$i; exit $i`.replace(/\$i/g, String(i))])));
    assert.deepEqual(
      rs.map((r) => [r.status, r.stdout.toString()]),
      [1, 2, 3, 4].map((i) => [i, `n${i}\n`]),
    );
  });

  it('runs exec from the CLI with the exit status passed through', () => {
    const r = cli('dre-sys', ['exec', name, '--', 'sh', '-c', 'uname -s; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'Linux\n');
  });

  it('attaches the console to the guest shell on the serial port, and detaches on Ctrl-]', async () => {
    const child = spawn(process.execPath, [cliPath('dre-sys'), 'console', name], { env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    let seen = '';
    child.stdout.on('data', (b: Buffer) => (seen += b.toString()));
    await sleep(300);
    child.stdin.write('\necho console-$((6*7))\n');
    for (let i = 0; i < 100 && !readFileSync(consoleLogPath(name), 'utf8').includes('console-42'); i++) await sleep(100);
    child.stdin.write(Buffer.from([0x1d]));
    assert.equal(await exited, 0);
    assert.match(readFileSync(consoleLogPath(name), 'utf8'), /console-42/);
    assert.match(seen, /console-42/);
  });

  it('lists the container as running from the CLI', () => {
    const r = cli('dre-sys', ['list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const row = (JSON.parse(r.stdout) as { name: string; status: string; memoryMiB: number }[]).find((x) => x.name === name);
    assert.deepEqual([row?.status, row?.memoryMiB], ['RUNNING', 192]);
  });

  it('refuses start, destroy and snapshots while running, with CONTAINER_RUNNING', async () => {
    assert.equal(await code(sys.start(name)), -113);
    assert.equal(await code(sys.destroy(name)), -113);
    assert.equal(await code(sys.saveSnapshot(name, 's')), -113);
    assert.equal(await code(sys.resume(name)), -113);
  });

  it('reports BUSY, and refuses changes with CONTAINER_BUSY, while another operation holds the container', async () => {
    const lock = ContainerLock.acquire('sys', name, 'test');
    try {
      assert.equal(await sys.status(name), STATUS.BUSY);
      assert.equal(await code(sys.suspend(name)), -116);
    } finally {
      lock.release();
    }
    assert.equal(await sys.status(name), STATUS.RUNNING);
  });

  it('stops guest progress while suspended', async () => {
    const up = async () => Number((await sh(name, 'cut -d" " -f1 /proc/uptime')).valueOf());
    const before = await up();
    const t0 = Date.now();
    await sys.suspend(name);
    assert.equal(await sys.status(name), STATUS.SUSPENDED);
    assert.equal(await code(sys.execCapture(name, ['true'])), -115);
    assert.equal(await code(sys.stop(name)), -115);
    await sleep(2500);
    await sys.resume(name);
    const guestSeconds = (await up()) - before;
    const hostSeconds = (Date.now() - t0) / 1000;
    assert.equal(await sys.status(name), STATUS.RUNNING);
    assert.ok(guestSeconds < hostSeconds - 1.5, `guest clock advanced ${guestSeconds} s over ${hostSeconds} s on the host`);
  });

  it('holds a memory limit on a control group around QEMU, reported by the kernel and get_resource', async () => {
    const limit = 768 * 1024 * 1024;
    await sys.createCgroup(name, 'vm');
    await sys.bindPid(name, 'vm', pid);
    await sys.setResource(name, 'vm', { type: RESOURCE.MEMORY, bytes: limit });
    const memory = groupDir('memory', `${containerGroup('sys', name)}/vm`)!;
    const file = existsSync(join(memory, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
    assert.equal(Number(readFileSync(join(memory, file), 'utf8')), limit);
    assert.ok(readFileSync(join(memory, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid)));
    // Guest RAM the guest touches now is charged to the new group (v1 does not move old charges).
    await sh(name, 'dd if=/dev/zero of=/run/fill bs=1M count=64 2>/dev/null; rm /run/fill');
    const used = await sys.getResource(name, pid, RESOURCE.MEMORY);
    assert.ok(used.bytes! > 16 * 1024 * 1024 && used.bytes! <= limit, `usage ${used.bytes}`);
    assert.equal(await code(sys.bindPid(name, 'vm', process.pid)), -143);
    await sys.unbindPid(name, 'vm', pid);
    await sys.destroyCgroup(name, 'vm');
    assert.equal(existsSync(memory), false);
    assert.equal(await code(sys.destroyCgroup(name, 'vm')), -141);
  });

  it('reports STOP after QEMU is killed with SIGKILL, and starts again', async () => {
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(10);
    assert.equal(await sys.status(name), STATUS.STOP);
    assert.equal(await code(sys.pid(name)), -114);
    await sys.start(name);
    assert.equal(await sys.status(name), STATUS.RUNNING);
    pid = await sys.pid(name);
    assert.equal(await sh(name, 'echo alive'), 'alive');
  });

  it('stops through the guest (ACPI power button) and leaves no QEMU behind', async () => {
    await sys.stop(name);
    assert.equal(isAlive(pid), false);
    assert.equal(await sys.status(name), STATUS.STOP);
    assert.match(readFileSync(consoleLogPath(name), 'utf8'), /power button: shutting down/);
    assert.equal(await code(sys.stop(name)), -114);
    assert.equal(await code(sys.suspend(name)), -114);
    assert.equal(await code(sys.execCapture(name, ['true'])), -114);
  });

  it('is destroyed with its files and cgroups', async () => {
    await sys.destroy(name);
    assert.equal(existsSync(containerDir('sys', name)), false);
    assert.equal(existsSync(containerRunDir('sys', name)), false);
    for (const m of allHierarchyMounts()) assert.equal(existsSync(join(m, containerGroup('sys', name))), false);
    assert.equal(await code(sys.status(name)), -111);
  });
});

describe('a system container whose record is damaged', () => {
  const name = uniqueName('sys-torn');
  after(() => removeGuest(name));

  it('can still be stopped and destroyed, as an application container can', async () => {
    requireQemu();
    await sys.create(name, {});
    await sys.start(name);
    const qemu = await sys.pid(name);
    writeFileSync(join(containerDir('sys', name), 'dre.json'), '{"name": ');
    const status = cli('dre-sys', ['status', name]);
    assert.equal(status.code, 117, status.stderr); // DRE_ERR_CONTAINER_UNKNOWN_STATUS
    const stop = cli('dre-sys', ['stop', name, '--timeout', '0']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(isAlive(qemu), false);
    const destroy = cli('dre-sys', ['destroy', name]);
    assert.equal(destroy.code, 0, destroy.stderr);
    assert.equal(existsSync(containerDir('sys', name)), false);
    for (const m of allHierarchyMounts()) assert.equal(existsSync(join(m, containerGroup('sys', name))), false);
  });
});

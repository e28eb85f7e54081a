import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { containerCgroup, upperDir } from '../../src/app/layout.js';
import { allHierarchyMounts, groupDir } from '../../src/core/cgroup.js';
import { STATUS } from '../../src/core/driver.js';
import { containerDir, containerRunDir } from '../../src/core/paths.js';
import { isAlive, nsPids, sleep, waitFor } from '../../src/core/proc.js';
import { cli, uniqueName } from '../support/env.js';

const run = (args: string[], input?: string) => cli('dre-app', args, { input });
const ns = (pid: number | 'self', kind: string) => readlinkSync(`/proc/${pid}/ns/${kind}`);

describe('an application container through its whole life', () => {
  const name = uniqueName('life');
  let initPid = 0;

  before(async () => {
    await app.create(name, { base: null });
  });
  after(async () => {
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
  });

  it('is created stopped, with its files and no process', async () => {
    assert.equal(await app.status(name), STATUS.STOP);
    assert.ok(existsSync(join(containerDir('app', name), 'config')));
    assert.ok((await app.list()).includes(name));
  });

  it('starts with init as PID 1 in its own PID, mount and UTS namespaces', async () => {
    await app.start(name);
    assert.equal(await app.status(name), STATUS.RUNNING);
    initPid = await app.pid(name);
    assert.ok(isAlive(initPid));
    assert.equal(nsPids(initPid)!.at(-1), 1, 'init is PID 1 inside');
    for (const kind of ['pid', 'mnt', 'uts']) assert.notEqual(ns(initPid, kind), ns('self', kind), `${kind} namespace`);
    const r = run(['exec', name, '--', 'sh', '-c', 'cat /proc/1/comm; hostname; echo $$']);
    assert.equal(r.code, 0, r.stderr);
    const [comm, host] = r.stdout.trim().split('\n');
    assert.equal(comm, 'init');
    assert.equal(host, name);
  });

  it('passes stdin, stdout, stderr and the exit status through exec', () => {
    const r = run(['exec', name, '--', 'sh', '-c', 'read x; echo "out:$x"; echo "err:$x" >&2; exit 7'], 'piped\n');
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out:piped\n');
    assert.equal(r.stderr, 'err:piped\n');
  });

  it('really freezes on suspend and continues on resume', async () => {
    // A counter inside writes to /root/count; the host reads it through the overlay's upper layer.
    const r = run(['exec', name, '--', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /root/count; sleep 0.05; done </dev/null >/dev/null 2>&1 &']);
    assert.equal(r.code, 0, r.stderr);
    const counter = join(upperDir(name), 'root', 'count');
    const read = () => {
      try {
        return Number(readFileSync(counter, 'utf8').trim() || 0);
      } catch {
        return 0;
      }
    };
    // Polls, not fixed sleeps: the machine may be loaded; only "no progress while frozen" needs a window.
    const advancesPast = (n: number) => waitFor(() => (read() > n ? true : undefined), 15_000, 20);
    assert.ok(await advancesPast(0), 'the counter runs');

    await app.suspend(name);
    assert.equal(await app.status(name), STATUS.SUSPENDED);
    assert.equal(readFileSync(join(groupDir('freezer', containerCgroup(name))!, 'freezer.state'), 'utf8').trim(), 'FROZEN');
    const frozenAt = read();
    await sleep(400);
    assert.equal(read(), frozenAt, 'no progress while suspended');

    await app.resume(name);
    assert.equal(await app.status(name), STATUS.RUNNING);
    assert.ok(await advancesPast(frozenAt), 'progress after resume');
  });

  it('stops every process of the container', async () => {
    const procs = readFileSync(join(groupDir('pids', containerCgroup(name))!, 'ns', 'cgroup.procs'), 'utf8')
      .trim()
      .split('\n')
      .map(Number);
    assert.ok(procs.length >= 2, 'init and the counter run');
    await app.stop(name, { timeoutMs: 5000 });
    assert.equal(await app.status(name), STATUS.STOP);
    for (const p of procs) assert.equal(isAlive(p), false, `process ${p} is gone`);
  });

  it('keeps its files across a restart', async () => {
    await app.start(name);
    const r = run(['exec', name, '--', 'cat', '/root/count']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\n$/);
    await app.stop(name, { timeoutMs: 5000 });
  });

  it('leaves no directory, cgroup, mount or LXC state behind when destroyed', async () => {
    await app.destroy(name);
    assert.equal(existsSync(containerDir('app', name)), false);
    assert.equal(existsSync(containerRunDir('app', name)), false);
    for (const mount of allHierarchyMounts()) assert.equal(existsSync(join(mount, containerCgroup(name))), false, mount);
    assert.equal(readFileSync('/proc/mounts', 'utf8').includes(containerDir('app', name)), false);
    assert.equal((await app.list()).includes(name), false);
    assert.equal(run(['status', name]).code, 111);
  });
});

describe('containers of different D-RE roots', () => {
  it('never see each other', () => {
    const mine = uniqueName('mine');
    const otherRoot = { DRE_ROOT: `${process.env.DRE_TEST_TMP}/other-root`, DRE_RUNDIR: `${process.env.DRE_TEST_TMP}/other-run` };
    const theirs = uniqueName('theirs');
    try {
      assert.equal(run(['create', mine]).code, 0);
      assert.equal(cli('dre-app', ['create', theirs], { env: otherRoot }).code, 0);
      const listed = JSON.parse(run(['list', '--json']).stdout).map((r: { name: string }) => r.name);
      assert.ok(listed.includes(mine));
      assert.ok(!listed.includes(theirs));
      const listedThere = JSON.parse(cli('dre-app', ['list', '--json'], { env: otherRoot }).stdout).map((r: { name: string }) => r.name);
      assert.deepEqual(listedThere, [theirs]);
      assert.equal(run(['status', theirs]).code, 111);
    } finally {
      run(['destroy', mine]);
      cli('dre-app', ['destroy', theirs], { env: otherRoot });
    }
  });
});

describe('the dre-app command line', () => {
  it('prints a table and JSON for list, and help for each command', () => {
    const name = uniqueName('cli');
    try {
      assert.equal(run(['create', name, '--port', '2201']).code, 0);
      const table = run(['list']).stdout.split('\n');
      assert.match(table[0], /^NAME\s+STATUS\s+BASE\s+ADDRESS\s+PORT/);
      assert.ok(table.some((l) => l.startsWith(name) && /STOP\s+default\s+[\d.]+\s+2201/.test(l)));
      const json = JSON.parse(run(['list', '--json']).stdout).find((r: { name: string }) => r.name === name);
      assert.match(json.address, /^\d+\.\d+\.\d+\.\d+$/);
      assert.deepEqual({ ...json }, { name, status: 'STOP', base: 'default', address: json.address, port: 2201 });
      const help = run(['start', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: dre-app start \[options\] <NAME>/);
      assert.match(run(['--help']).stdout, /exec/);
    } finally {
      run(['destroy', name]);
    }
  });

  it('exits with the absolute value of the error code and names the error', () => {
    const r = run(['start', uniqueName('missing')]);
    assert.equal(r.code, 111);
    assert.match(r.stderr, /^dre-app: DRE_ERR_CONTAINER_NONEXISTENCE: start /);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(run(['frobnicate']).code, 101);
    assert.equal(run(['create', 'x', '--port', 'abc']).code, 101);
  });

  it('lets only root manage containers', () => {
    const r = cli('dre-app', ['list'], { uid: 65534 });
    assert.equal(r.code, 102, r.stderr);
    assert.match(r.stderr, /DRE_ERR_PERMISSION_DENIED/);
  });
});

describe('the default base', () => {
  it('boots to completion with no network service and stops gracefully in a few seconds', async () => {
    const name = uniqueName('boot');
    await app.create(name, {});
    try {
      await app.start(name);
      // rcS marks the end of boot; nothing in it waits on a DHCP server.
      let booted = false;
      for (let i = 0; i < 100 && !booted; i++) {
        booted = run(['exec', name, '--', 'test', '-e', '/run/dre-booted']).code === 0;
        if (!booted) await sleep(50);
      }
      assert.ok(booted, 'boot finished');
      const t = Date.now();
      await app.stop(name, { timeoutMs: 20_000 });
      const took = Date.now() - t;
      assert.ok(took < 15_000, `graceful stop took ${took} ms, not LXC's forced-stop timeout`);
      assert.equal(await app.status(name), STATUS.STOP);
      const log = readFileSync(join(containerRunDir('app', name), 'console.log'), 'utf8');
      assert.match(log, /going down|SIGTERM|shutdown/i, 'init ran its shutdown');
    } finally {
      await app.stop(name, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(name).catch(() => {});
    }
  });

  it('is shared by containers, never written by them', async () => {
    const a = uniqueName('share');
    await app.create(a, {});
    try {
      await app.start(a);
      run(['exec', a, '--', 'sh', '-c', 'echo changed > /etc/motd; rm /bin/vi']);
      await app.stop(a, { timeoutMs: 0 });
      const baseRoot = join(process.env.DRE_ROOT!, 'app', 'bases', 'default', 'rootfs');
      assert.equal(existsSync(join(baseRoot, 'etc', 'motd')), false);
      assert.ok(existsSync(join(baseRoot, 'bin', 'vi')) || readdirSync(join(baseRoot, 'usr', 'bin')).includes('vi'));
      assert.equal(readFileSync(join(upperDir(a), 'etc', 'motd'), 'utf8'), 'changed\n');
    } finally {
      await app.destroy(a).catch(() => {});
    }
  });
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { containerCgroup, lxcPath, monitorPidPath, upperDir } from '../../src/app/layout.js';
import { monitorPid, runningInit } from '../../src/app/state.js';
import { allHierarchyMounts } from '../../src/core/cgroup.js';
import { networkConfig } from '../../src/app/network.js';
import { isAlive, sleep, waitFor } from '../../src/core/proc.js';
import { STATUS } from '../../src/core/driver.js';
import type { DreError } from '../../src/core/errors.js';
import { containerRunDir } from '../../src/core/paths.js';
import { cli, cliAsync, uniqueName } from '../support/env.js';
import { wipeRunDir } from '../support/sweep.js';

describe('a container whose name is the start of another running container', () => {
  const short = uniqueName('mon');
  const long = `${short}0`;

  before(async () => {
    await app.create(short, { network: false });
    await app.create(long, { network: false });
    await app.start(long);
  });
  after(async () => {
    await app.stop(long, { timeoutMs: 0 }).catch(() => {});
    for (const n of [short, long]) await app.destroy(n).catch(() => {});
  });

  it("never takes the other's LXC monitor for its own", async () => {
    const monitor = Number(readFileSync(monitorPidPath(long), 'utf8').trim());
    // Checked through /proc: this really is the longer name's monitor, its title starting with the short name's.
    assert.equal(readFileSync(`/proc/${monitor}/cmdline`, 'utf8'), `[lxc monitor] ${lxcPath()} ${long}\0`);
    // A stale pid file naming that monitor (a reused PID) must not make the stopped container look running.
    mkdirSync(containerRunDir('app', short), { recursive: true, mode: 0o700 });
    writeFileSync(monitorPidPath(short), `${monitor}\n`);
    assert.equal(await app.status(short), STATUS.STOP);
    await assert.rejects(app.pid(short), (e: DreError) => e.errName === 'DRE_ERR_CONTAINER_STOPPED');
    assert.equal(await app.status(long), STATUS.RUNNING);
  });
});

/** Every group of the container (and of its monitor) that still exists, in any hierarchy. */
function groupsLeft(name: string): string[] {
  return allHierarchyMounts()
    .flatMap((m) => [join(m, containerCgroup(name)), join(m, `${containerCgroup(name)}.monitor`)])
    .filter((g) => existsSync(g));
}

/** SIGKILLs `pid` and waits (bounded) until it is gone. */
async function killAndWait(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitFor(() => (isAlive(pid) ? undefined : true), 10_000), `pid ${pid} still alive`);
}

describe('an application container whose engine processes were killed', () => {
  const name = uniqueName('kill');
  const run = (args: string[]) => cli('dre-app', args);
  const keep = () => readFileSync(join(upperDir(name), 'root', 'keep'), 'utf8');

  before(async () => {
    await app.create(name);
  });
  after(async () => {
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
  });

  /** Starts the container and writes a file in it that must survive what follows. */
  function startWithFile(): void {
    const s = run(['start', name]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(run(['exec', name, '--', 'sh', '-c', 'echo kept > /root/keep']).code, 0);
  }

  /** The next start, exec, stop and snapshot work and the file is there. */
  function worksAgain(tag: string): void {
    const s = run(['start', name]);
    assert.equal(s.code, 0, s.stderr);
    const r = run(['exec', name, '--', 'cat', '/root/keep']);
    assert.equal(r.stdout, 'kept\n', r.stderr);
    const st = run(['stop', name, '--timeout', '0']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(keep(), 'kept\n'); // on disk, in the container's upper layer (a snapshot then freezes it into a layer)
    const sn = run(['snapshot', name, tag]);
    assert.equal(sn.code, 0, sn.stderr);
  }

  it('heals a killed LXC monitor: the next start removes its empty groups and runs the container', async () => {
    startWithFile();
    await killAndWait(monitorPid(name)!);
    assert.equal(await app.status(name), STATUS.STOP);
    worksAgain('after-monitor');
    assert.deepEqual(groupsLeft(name), []);
  });

  it('heals a monitor killed while the container was suspended: its frozen processes are ended by the next stop', async () => {
    startWithFile();
    const init = runningInit(name)!;
    assert.equal(run(['suspend', name]).code, 0);
    await killAndWait(monitorPid(name)!);
    // Frozen tasks cannot die of their SIGKILL until thawed: the container's init lingers.
    const st = run(['stop', name, '--timeout', '0']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(isAlive(init), false);
    assert.deepEqual(groupsLeft(name), []);
    worksAgain('after-frozen-monitor');
  });

  it('never says STOP while the frozen processes of a suspended container whose monitor was killed live: status ends them', async () => {
    startWithFile();
    const init = runningInit(name)!;
    assert.equal(run(['suspend', name]).code, 0);
    await killAndWait(monitorPid(name)!);
    assert.equal(isAlive(init), true, 'frozen: its SIGKILL waits for the thaw');
    assert.equal(run(['status', name]).stdout, 'STOP\n');
    assert.equal(isAlive(init), false, 'status said STOP while the init lived');
    assert.deepEqual(groupsLeft(name), []);
    worksAgain('after-frozen-monitor-status');
  });

  it('starts again after a wiped run dir, as after a reboot: no process, no mount, no bridge, no run file', async () => {
    startWithFile();
    await killAndWait(monitorPid(name)!);
    execFileSync('ip', ['link', 'del', 'dev', networkConfig().bridge]);
    wipeRunDir(process.env.DRE_RUNDIR!);
    worksAgain('after-reboot');
  });

  it('still knows a running container whose monitor pid file is gone: status RUNNING, start refused, stop works', async () => {
    startWithFile();
    const init = runningInit(name)!;
    rmSync(monitorPidPath(name));
    assert.equal(await app.status(name), STATUS.RUNNING);
    assert.equal(run(['start', name]).code, 113); // DRE_ERR_CONTAINER_RUNNING, and the container was not touched
    assert.equal(runningInit(name), init);
    const st = run(['stop', name, '--timeout', '0']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(isAlive(init), false);
    worksAgain('after-lost-pid-file');
  });

  it("heals a killed container init: the monitor's clean-up lets the next start run it", async () => {
    startWithFile();
    await killAndWait(runningInit(name)!);
    assert.ok(await waitFor(() => (monitorPid(name) === undefined ? true : undefined), 10_000));
    worksAgain('after-init');
  });
});

describe('exec that loses a race with stop', () => {
  const name = uniqueName('execrace');
  let fake: ChildProcess | undefined;

  before(async () => {
    await app.create(name, { network: false });
  });
  after(async () => {
    fake?.kill('SIGKILL');
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
  });

  it('ends with DRE_ERR_CONTAINER_STOPPED when the container stopped between its check and the attach', async () => {
    // The state a lost race leaves, made to last: the check finds a monitor titled as LXC's with an init
    // child (the container looked running), while LXC's own monitor socket no longer answers lxc-attach.
    fake = spawn('bash', ['-c', 'sleep 60 & wait'], { argv0: `[lxc monitor] ${lxcPath()} ${name}`, stdio: 'ignore' });
    mkdirSync(containerRunDir('app', name), { recursive: true, mode: 0o700 });
    writeFileSync(monitorPidPath(name), `${fake.pid}\n`);
    try {
      assert.ok(await waitFor(() => (runningInit(name) !== undefined ? true : undefined), 5_000));
      assert.equal(await app.status(name), STATUS.RUNNING);
      const r = cli('dre-app', ['exec', name, '--', 'true']);
      assert.equal(r.code, 114, r.stderr);
      assert.match(r.stderr.trim().split('\n').at(-1)!, /^dre-app: DRE_ERR_CONTAINER_STOPPED: exec in .*Failed to get init pid/);
    } finally {
      fake.kill('SIGKILL');
      await waitFor(() => (isAlive(fake!.pid!) ? undefined : true), 5_000);
    }
  });

  it("always ends with the command's status or a DRE_ERR_* line last when execs race a stop (real LXC)", async () => {
    const seen = new Map<string, number>();
    for (let round = 0; round < 15; round++) {
      const s = cli('dre-app', ['start', name]);
      assert.equal(s.code, 0, s.stderr);
      // Execs spread over the stop's window, so some pass the state check just before the container goes.
      const execs = [0, 1, 2, 3].map(async (k) => {
        await sleep(k * 15 + (round % 7) * 5);
        return cliAsync('dre-app', ['exec', name, '--', 'true']).done;
      });
      const stop = sleep(40).then(() => cliAsync('dre-app', ['stop', name, '--timeout', '0']).done);
      for (const r of await Promise.all(execs)) {
        const last = r.stderr.trim().split('\n').at(-1) ?? '';
        const how = r.code === 0 || r.code === 137 ? String(r.code) : (last.match(/^dre-app: (DRE_ERR_\w+)/)?.[1] ?? `bare ${r.code}: ${r.stderr}`);
        seen.set(how, (seen.get(how) ?? 0) + 1);
      }
      assert.equal((await stop).code, 0);
    }
    assert.deepEqual(
      [...seen.keys()].filter((k) => !['0', '137', 'DRE_ERR_CONTAINER_STOPPED'].includes(k)),
      [],
      JSON.stringify([...seen]),
    );
  });

  it("keeps the command's own status: a failing command, one that is not there, one killed by the stop", async () => {
    const s = cli('dre-app', ['start', name]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(cli('dre-app', ['exec', name, '--', 'sh', '-c', 'exit 1']).code, 1);
    assert.equal(cli('dre-app', ['exec', name, '--', 'no-such-command']).code, 127);
    const during = cliAsync('dre-app', ['exec', name, '--', 'sleep', '30']);
    await waitFor(() => (cli('dre-app', ['exec', name, '--', 'pidof', 'sleep']).code === 0 ? true : undefined), 10_000, 50);
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal((await during.done).code, 137); // SIGKILL, as the stop ended it
  });
});

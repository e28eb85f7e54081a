import '../support/env.js';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { STATUS } from '../../src/core/driver.js';
import { containersDir } from '../../src/core/paths.js';
import { isAlive, sleep, waitFor } from '../../src/core/proc.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { threadsGone } from '../../src/sys/qemu.js';
import { qemuPid } from '../../src/sys/state.js';
import { cli, cliAsync, killDuring, uniqueName } from '../support/env.js';
import { removeGuest, requireQemu, sh } from './helpers.js';
import { wipeRunDir } from '../support/sweep.js';

describe('concurrent operations on one system container', () => {
  it('let exactly one of six racing starts win; the rest get BUSY or RUNNING', async () => {
    requireQemu();
    const name = uniqueName('sys-race');
    await sys.create(name, {});
    try {
      const rs = await Promise.all(Array.from({ length: 6 }, () => cliAsync('dre-sys', ['start', name]).done));
      const codes = rs.map((r) => r.code).sort((a, b) => a - b);
      assert.equal(codes.filter((c) => c === 0).length, 1, `codes ${codes}`);
      assert.ok(
        codes.every((c) => [0, 113, 116].includes(c)),
        `codes ${codes}`,
      );
      assert.equal(await sys.status(name), STATUS.RUNNING);
      assert.equal(await sh(name, 'echo one'), 'one');
    } finally {
      await removeGuest(name);
    }
  });
});

describe('a dre-sys killed in the middle of an operation', () => {
  const name = uniqueName('sys-kill');
  const created: string[] = [];

  before(async () => {
    requireQemu();
    await sys.create(name, {});
  });
  after(async () => {
    for (const n of [name, ...created]) await removeGuest(n);
  });

  it('leaves a create that the next create and destroy handle without manual clean-up', async () => {
    for (const delay of [80, 150, 250]) {
      const n = uniqueName('sys-killcreate');
      created.push(n);
      await killDuring('dre-sys', ['create', n], delay);
      const again = cli('dre-sys', ['create', n]);
      assert.ok([0, 112].includes(again.code), `create after a kill at ${delay} ms: ${again.stderr}`);
      assert.equal(cli('dre-sys', ['status', n]).stdout, 'STOP\n');
      assert.equal(cli('dre-sys', ['destroy', n]).code, 0);
    }
    cli('dre-sys', ['create', uniqueName('sys-sweeper')]);
    assert.deepEqual(
      readdirSync(containersDir('sys')).filter((e) => e.startsWith('.staging-')),
      [],
    );
  });

  it('leaves a start that is either stopped or running, and the next start or stop works', async () => {
    for (const delay of [150, 400, 2500]) {
      await killDuring('dre-sys', ['start', name], delay);
      const s = await sys.status(name);
      assert.ok(s === STATUS.STOP || s === STATUS.RUNNING, `status ${s} after a kill at ${delay} ms`);
      if (s === STATUS.STOP) {
        const start = cli('dre-sys', ['start', name]);
        assert.equal(start.code, 0, start.stderr);
      }
      assert.equal(await sh(name, 'echo up'), 'up');
      const pid = qemuPid(name)!;
      assert.equal(cli('dre-sys', ['stop', name]).code, 0);
      assert.equal(isAlive(pid), false);
      assert.equal(await sys.status(name), STATUS.STOP);
    }
  });

  it('leaves no paused QEMU behind a start killed the moment QEMU appeared: status never says STOP while it lives; snapshot, start and destroy work', async () => {
    const n = uniqueName('sys-killpaused');
    created.push(n);
    await sys.create(n, {});
    for (let round = 0; round < 3; round++) {
      const { child, done } = cliAsync('dre-sys', ['start', n]);
      const pid = await waitFor(() => qemuPid(n), 60_000, 2);
      child.kill('SIGKILL');
      await done;
      assert.ok(pid !== undefined, 'QEMU never appeared');
      // BUSY (never a lie) while the orphan does not answer on QMP yet.
      const s =
        (await waitFor(
          () => {
            const out = cli('dre-sys', ['status', n]).stdout.trim();
            return out === 'BUSY' ? undefined : out;
          },
          30_000,
          50,
        )) ?? 'BUSY';
      if (s === 'STOP') assert.ok(threadsGone(pid), `round ${round}: status STOP while QEMU ${pid} lives`);
      else assert.equal(s, 'RUNNING', `round ${round}: status ${s}`); // the killed start had already let the guest run
      if (s === 'RUNNING') assert.equal(cli('dre-sys', ['stop', n, '--timeout', '0']).code, 0);
      // The disk's write lock is free: a snapshot of the stopped container works.
      const snap = cli('dre-sys', ['snapshot', n, `s${round}`]);
      assert.equal(snap.code, 0, snap.stderr);
      assert.ok(await waitFor(() => (threadsGone(pid) ? true : undefined), 5_000), `round ${round}: QEMU ${pid} still lives`);
    }
    const start = cli('dre-sys', ['start', n]);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(await sh(n, 'echo up'), 'up');
    assert.equal(cli('dre-sys', ['stop', n]).code, 0);
    assert.deepEqual((await sys.listSnapshots(n)).sort(), ['s0', 's1', 's2']);
    const d = cli('dre-sys', ['destroy', n]);
    assert.equal(d.code, 0, d.stderr);
  });
});

describe('a system container whose QEMU was killed', () => {
  const name = uniqueName('sys-qkill');
  const run = (args: string[]) => cli('dre-sys', args);

  before(async () => {
    requireQemu();
    await sys.create(name, {});
  });
  after(() => removeGuest(name));

  /** SIGKILLs the container's QEMU and waits until every thread of it is gone. */
  async function killQemuNow(): Promise<void> {
    const pid = qemuPid(name);
    assert.ok(pid !== undefined, 'no QEMU to kill');
    process.kill(pid, 'SIGKILL');
    assert.ok(await waitFor(() => (threadsGone(pid) ? true : undefined), 10_000), `QEMU ${pid} still alive`);
  }

  /** Starts (or finds running) the container and checks the file written at the first start is still there. */
  async function startsWithFile(): Promise<void> {
    const st = run(['status', name]).stdout.trim();
    if (st !== 'RUNNING') {
      const s = run(['start', name]);
      assert.equal(s.code, 0, `start after ${st}: ${s.stderr}`);
    }
    assert.equal(await sh(name, 'cat /root/keep'), 'kept');
  }

  it('runs again after a kill: start, stop, snapshot work and the guest file is intact', async () => {
    assert.equal(run(['start', name]).code, 0);
    await sh(name, 'echo kept > /root/keep; sync');
    const execing = cliAsync('dre-sys', ['exec', name, '--', 'sleep', '30']);
    await sleep(500);
    await killQemuNow();
    const ex = await execing.done;
    assert.equal(ex.code, 114, ex.stderr); // DRE_ERR_CONTAINER_STOPPED: an exec the kill cut short
    assert.equal(run(['status', name]).stdout, 'STOP\n');
    await startsWithFile();
    assert.equal(run(['stop', name]).code, 0);
    const snap = run(['snapshot', name, 'after-kill']);
    assert.equal(snap.code, 0, snap.stderr);
  });

  it('runs again after QEMU was killed during a checkpoint', async () => {
    // From the CLI's QMP state check (≈ 100 ms after its spawn) into savevm (≈ 400 ms for a 256 MiB guest).
    for (const delay of [100, 150, 300]) {
      await startsWithFile();
      const saving = cliAsync('dre-sys', ['checkpoint', name, `torn${delay}`]);
      await sleep(delay);
      await killQemuNow();
      const r = await saving.done;
      if (r.code === 0) continue; // the checkpoint was complete before the kill
      assert.match(r.stderr, /^dre-sys: DRE_ERR_\w+: checkpoint /, `killed at ${delay} ms`);
    }
    await startsWithFile();
    const c = run(['checkpoint', name, 'whole']);
    assert.equal(c.code, 0, c.stderr);
  });

  it('runs again after QEMU was killed while a restart loaded a checkpoint, and after the restart itself was killed', async () => {
    assert.equal(run(['stop', name, '--timeout', '0']).code, 0);
    const restarting = cliAsync('dre-sys', ['restart', name, 'whole']);
    assert.ok(await waitFor(() => qemuPid(name), 60_000, 2));
    await killQemuNow();
    const r = await restarting.done;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /DRE_ERR_/);
    const again = run(['restart', name, 'whole']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await sh(name, 'cat /root/keep'), 'kept');
    // The restart process killed the moment its QEMU appears: the next restart ends the paused orphan and runs.
    assert.equal(run(['stop', name, '--timeout', '0']).code, 0);
    const { child, done } = cliAsync('dre-sys', ['restart', name, 'whole']);
    const orphan = await waitFor(() => qemuPid(name), 60_000, 2);
    child.kill('SIGKILL');
    await done;
    const third = run(['restart', name, 'whole']);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(await sh(name, 'cat /root/keep'), 'kept');
    assert.ok(qemuPid(name) === orphan || threadsGone(orphan!), `the orphan QEMU ${orphan} lives beside ${qemuPid(name)}`);
  });

  it('runs again after QEMU was killed while its guest booted: that start fails with a code, the next works', async () => {
    if (run(['status', name]).stdout.trim() !== 'STOP') assert.equal(run(['stop', name, '--timeout', '0']).code, 0);
    const starting = cliAsync('dre-sys', ['start', name]);
    assert.ok(await waitFor(() => qemuPid(name), 60_000, 2));
    await sleep(500);
    await killQemuNow();
    const r = await starting.done;
    assert.equal(r.code, 114, r.stderr); // DRE_ERR_CONTAINER_STOPPED: the guest did not become ready
    assert.match(r.stderr, /DRE_ERR_CONTAINER_STOPPED/);
    await startsWithFile();
  });

  it('starts again after a wiped run dir, as after a reboot', async () => {
    await startsWithFile();
    await killQemuNow();
    wipeRunDir(process.env.DRE_RUNDIR!);
    await startsWithFile();
    assert.equal(run(['stop', name]).code, 0);
    const snap = run(['snapshot', name, 'after-reboot']);
    assert.equal(snap.code, 0, snap.stderr);
    const d = run(['destroy', name]);
    assert.equal(d.code, 0, d.stderr);
  });
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { lxcPath, monitorPidPath } from '../../src/app/layout.js';
import { STATUS } from '../../src/core/driver.js';
import type { DreError } from '../../src/core/errors.js';
import { containerRunDir } from '../../src/core/paths.js';
import { uniqueName } from '../support/env.js';

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

import '../support/env.js';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { STATUS } from '../../src/core/driver.js';
import { containersDir } from '../../src/core/paths.js';
import { isAlive } from '../../src/core/proc.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { qemuPid } from '../../src/sys/qemu.js';
import { cli, cliAsync, killDuring, uniqueName } from '../support/env.js';
import { removeGuest, requireQemu, sh } from './helpers.js';


describe('concurrent operations on one system container', () => {
  it('let exactly one of six racing starts win; the rest get BUSY or RUNNING', async () => {
    requireQemu();
    const name = uniqueName('sys-race');
    await sys.create(name, {});
    try {
      const rs = await Promise.all(Array.from({ length: 6 }, () => cliAsync('dre-sys', ['start', name]).done));
      const codes = rs.map((r) => r.code).sort((a, b) => a - b);
      assert.equal(codes.filter((c) => c === 0).length, 1, `codes ${codes}`);
      assert.ok(codes.every((c) => [0, 113, 116].includes(c)), `codes ${codes}`);
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
    assert.deepEqual(readdirSync(containersDir('sys')).filter((e) => e.startsWith('.staging-')), []);
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
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { STATUS } from '../../src/core/driver.js';
import { containerDir, containersDir } from '../../src/core/paths.js';
import { sleep } from '../../src/core/proc.js';
import { cli, cliAsync, killDuring, uniqueName } from '../support/env.js';

const race = (args: string[], n = 10) => Promise.all(Array.from({ length: n }, () => cliAsync('dre-app', args).done));
const codes = (rs: { code: number }[]) => rs.map((r) => r.code).sort((a, b) => a - b);

describe('concurrent operations on one container', () => {
  it('let exactly one of ten racing starts win; the rest get BUSY or RUNNING', async () => {
    const name = uniqueName('race');
    await app.create(name, {});
    try {
      const rs = await race(['start', name]);
      const c = codes(rs);
      assert.equal(c.filter((x) => x === 0).length, 1, `codes ${c}`);
      assert.ok(
        c.every((x) => [0, 113, 116].includes(x)),
        `codes ${c}`,
      );
      assert.equal(await app.status(name), STATUS.RUNNING);
      await app.stop(name, { timeoutMs: 0 });
      assert.equal(await app.status(name), STATUS.STOP);
    } finally {
      await app.stop(name, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(name).catch(() => {});
    }
  });

  it('never leaves a container on a base that a racing rm-base removed', async () => {
    const src = uniqueName('basesrc');
    await app.create(src, {});
    try {
      assert.equal(cli('dre-app', ['snapshot', src, 'golden']).code, 0);
      for (let round = 0; round < 8; round++) {
        const base = uniqueName('racebase');
        assert.equal(cli('dre-app', ['commit', src, 'golden', base]).code, 0);
        const made = uniqueName('onbase');
        // rm-base started a little later each round, to land in each step of the create.
        const creating = cliAsync('dre-app', ['create', made, '--base', base]).done;
        await sleep(round * 8);
        const [created, removed] = await Promise.all([creating, cliAsync('dre-app', ['rm-base', base]).done]);
        const baseLeft = (await app.listBases()).includes(base);
        const containerLeft = (await app.list()).includes(made);
        assert.ok(!(containerLeft && !baseLeft), `round ${round}: ${made} exists on removed base ${base} (create ${created.code}, rm-base ${removed.code})`);
        assert.equal(created.code === 0, containerLeft, `round ${round}: create said ${created.code}: ${created.stderr}`);
        assert.equal(removed.code === 0, !baseLeft, `round ${round}: rm-base said ${removed.code}: ${removed.stderr}`);
        assert.ok(
          [0, 121].includes(created.code) && [0, 123].includes(removed.code),
          `round ${round}: create ${created.code} ${created.stderr} rm-base ${removed.code} ${removed.stderr}`,
        );
        if (containerLeft) await app.destroy(made);
        if (baseLeft) await app.removeBase(base);
      }
    } finally {
      await app.destroy(src).catch(() => {});
    }
  });

  it('let exactly one of ten racing destroys win; the rest get BUSY or NONEXISTENCE', async () => {
    const name = uniqueName('race');
    await app.create(name, {});
    const c = codes(await race(['destroy', name]));
    assert.equal(c.filter((x) => x === 0).length, 1, `codes ${c}`);
    assert.ok(
      c.every((x) => [0, 111, 116].includes(x)),
      `codes ${c}`,
    );
    assert.equal(existsSync(containerDir('app', name)), false);
    assert.equal((await app.list()).includes(name), false);
  });
});

describe('a dre-app killed in the middle of an operation', () => {
  const delays = [60, 100, 130, 160, 200, 260];

  it('leaves a create that the next create, start and destroy handle without manual clean-up', async () => {
    for (const delay of delays) {
      const name = uniqueName('killcreate');
      await killDuring('dre-app', ['create', name], delay);
      const again = cli('dre-app', ['create', name]);
      assert.ok([0, 112].includes(again.code), `create after a kill at ${delay} ms: ${again.stderr}`);
      assert.equal(cli('dre-app', ['start', name]).code, 0, `start after a kill at ${delay} ms`);
      assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
      assert.equal(cli('dre-app', ['destroy', name]).code, 0);
    }
    // Staging entries of killed creates are removed by the next create.
    const sweeper = uniqueName('sweeper');
    cli('dre-app', ['create', sweeper]);
    const leftovers = readdirSync(containersDir('app')).filter((e) => e.startsWith('.staging-'));
    assert.equal(cli('dre-app', ['destroy', sweeper]).code, 0);
    assert.deepEqual(leftovers, []);
  });

  it('leaves a start that is either done or not, never broken', async () => {
    const name = uniqueName('killstart');
    await app.create(name, {});
    try {
      for (const delay of delays) {
        await killDuring('dre-app', ['start', name], delay);
        // An lxc-start left behind by the killed dre-app keeps the container BUSY until it is done.
        let s = await app.status(name);
        for (let i = 0; i < 200 && s === STATUS.BUSY; i++) {
          await sleep(50);
          s = await app.status(name);
        }
        assert.ok(s === STATUS.STOP || s === STATUS.RUNNING, `status ${s} after a kill at ${delay} ms`);
        const start = cli('dre-app', ['start', name]);
        assert.equal(start.code, s === STATUS.RUNNING ? 113 : 0, start.stderr);
        assert.equal(await app.status(name), STATUS.RUNNING);
        assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
      }
      assert.equal(cli('dre-app', ['destroy', name]).code, 0);
    } finally {
      await app.stop(name, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(name).catch(() => {});
    }
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cli, uniqueName } from '../support/env.js';
import { call, callAndWait, Daemon, dredPath } from '../support/dred.js';
import { containersDir } from '../../src/core/paths.js';
import { sleep } from '../../src/core/proc.js';

/** Moments to kill the daemon at, after it has the request: before, during and after the work. */
const DELAYS_MS = [0, 10, 25, 50, 100];

/** Sends a request and kills the daemon `delayMs` later, whatever the request is doing. */
async function killDuring(method: string, path: string, body: unknown, delayMs: number): Promise<void> {
  const d = await Daemon.start();
  const pending = call(method, path, body).catch(() => undefined);
  await sleep(delayMs);
  await d.kill('SIGKILL');
  await pending;
}

/** What the next daemon must find: a status that is not stuck, and the CLI agreeing on the list. */
async function consistent(d: Daemon, name: string): Promise<string | undefined> {
  const list = (await call('GET', '/1.0/app/containers')).body.containers as string[];
  const viaCli = cli('dre-app', ['list', '--json']);
  assert.equal(viaCli.code, 0, viaCli.stderr);
  assert.deepEqual((JSON.parse(viaCli.stdout) as { name: string }[]).map((r) => r.name).sort(), [...list].sort());
  const entries = existsSync(containersDir('app')) ? readdirSync(containersDir('app')) : [];
  assert.deepEqual(entries.filter((e) => !e.startsWith('.')).sort(), [...list].sort(), 'no half-made entry is listed');
  if (!list.includes(name)) return undefined;
  let st = '';
  for (let i = 0; i < 100; i++) {
    st = (await call('GET', `/1.0/app/containers/${name}/state`)).body.statusName;
    if (st !== 'BUSY') break;
    await sleep(100);
  }
  assert.notEqual(st, 'BUSY', `${name} stays BUSY after the daemon was killed (${d.proc.pid})`);
  return st;
}

/** Runs `check` against a fresh daemon (the one after the kill), ending it afterwards. */
async function withNextDaemon(check: (d: Daemon) => Promise<void>): Promise<void> {
  const d = await Daemon.start();
  try {
    await check(d);
  } finally {
    await d.kill('SIGTERM');
  }
}

/** The container starts and stops through the daemon. */
async function startsAndStops(name: string, delay: number): Promise<void> {
  const start = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'start' });
  assert.equal(start.status, 200, `start after a kill at ${delay} ms: ${JSON.stringify(start.body)}`);
  assert.equal((await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'stop', timeoutMs: 0 })).status, 200);
}

describe('dred killed in the middle of an operation: the next daemon and the CLI find a consistent state', () => {
  const made: string[] = [];
  after(() => {
    for (const n of made) {
      cli('dre-app', ['stop', n, '--timeout', '0']);
      cli('dre-app', ['destroy', n]);
    }
  });

  it('a killed create leaves the container whole or absent; either way the next create or start works', async () => {
    for (const delay of DELAYS_MS) {
      const name = uniqueName('dkc');
      made.push(name);
      await killDuring('POST', '/1.0/app/containers', { name, config: { network: false } }, delay);
      await withNextDaemon(async (d) => {
        const st = await consistent(d, name);
        if (st === undefined) {
          const r = await callAndWait('POST', '/1.0/app/containers', { name, config: { network: false } });
          assert.equal(r.body.status, 'success', `create again after a kill at ${delay} ms: ${JSON.stringify(r.body.error)}`);
        } else assert.equal(st, 'STOP');
        await startsAndStops(name, delay);
      });
    }
  });

  it('a killed snapshot save leaves the snapshot saved or absent, and the container loads and saves again', async () => {
    const name = uniqueName('dks');
    made.push(name);
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    for (const delay of DELAYS_MS) {
      const tag = `t${delay}`;
      await killDuring('POST', `/1.0/app/containers/${name}/snapshots`, { tag }, delay);
      await withNextDaemon(async (d) => {
        assert.equal(await consistent(d, name), 'STOP');
        const tags = (await call('GET', `/1.0/app/containers/${name}/snapshots`)).body.snapshots as string[];
        const again = await call('POST', `/1.0/app/containers/${name}/snapshots`, { tag });
        if (tags.includes(tag)) assert.equal(again.body.error, 'DRE_ERR_SNAPSHOT_EXISTENCE');
        else assert.equal(again.status, 200, `save after a kill at ${delay} ms: ${JSON.stringify(again.body)}`);
        assert.equal((await call('POST', `/1.0/app/containers/${name}/snapshots/${tag}/load`)).status, 200);
      });
    }
  });

  it('a killed start leaves the container running or stopped, never stuck; stop and start work after it', async () => {
    const name = uniqueName('dks');
    made.push(name);
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    for (const delay of DELAYS_MS) {
      await killDuring('PUT', `/1.0/app/containers/${name}/state`, { action: 'start' }, delay);
      await withNextDaemon(async (d) => {
        const st = await consistent(d, name);
        assert.ok(st === 'RUNNING' || st === 'STOP', `after a kill at ${delay} ms: ${st}`);
        const stop = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'stop', timeoutMs: 0 });
        assert.ok(stop.status === 200 || stop.body.error === 'DRE_ERR_CONTAINER_STOPPED', JSON.stringify(stop.body));
        await startsAndStops(name, delay);
      });
    }
  });

  it('a second dred for the same root refuses to start while one serves it', async () => {
    const d = await Daemon.start();
    try {
      const second = spawnSync(process.execPath, [dredPath], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(second.status, 116, second.stderr);
      assert.match(second.stderr, /DRE_ERR_CONTAINER_BUSY: another dred already serves/);
      assert.equal((await call('GET', '/1.0')).body.pid, d.proc.pid);
    } finally {
      await d.kill('SIGTERM');
    }
  });
});

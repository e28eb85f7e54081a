import '../support/env.js';
import '../sys/helpers.js';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import * as A from '../../src/spec/app.js';
import * as S from '../../src/spec/sys.js';
import { app, sys } from '../../src/index.js';
import { checkpointDir } from '../../src/app/layout.js';
import { STATUS } from '../../src/core/driver.js';
import { waitFor, sleep } from '../../src/core/proc.js';
import { cli, uniqueName } from '../support/env.js';
import { removeGuest, requireQemu } from '../sys/helpers.js';

/** Starts a busy loop in the container; resolves to its host PID (found by a unique marker in its cmdline). */
async function busyLoop(name: string): Promise<number> {
  const marker = uniqueName('busy');
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', `sh -c 'while :; do :; done; :' ${marker} </dev/null >/dev/null 2>&1 &`]);
  assert.equal(r.code, 0, r.stderr);
  const pid = await waitFor(() => {
    for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes(marker)) return Number(e);
      } catch {
        /* gone */
      }
    }
    return undefined;
  }, 5000);
  assert.ok(pid, 'the busy loop started');
  return pid;
}

describe('spec conformance: application containers', () => {
  const name = uniqueName('conform');
  after(async () => {
    await app.stop(name, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(name).catch(() => {});
  });

  it('dre_app_close retires the handle: later calls and a second close are INVALID_ARGUMENT; a new open works', async () => {
    await app.create(name, { network: false });
    const h = (await A.dre_app_open(name))!;
    assert.equal(await A.dre_app_status(h), A.DRE_APP_CONTAINER_STATUS_STOP);
    assert.equal(await A.dre_app_close(h), 0);
    assert.equal(await A.dre_app_status(h), A.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await A.dre_app_start(h), A.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await A.dre_app_close(h), A.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await A.dre_app_close(null), A.DRE_ERR_NULL_POINTER);
    assert.equal(await app.status(name), STATUS.STOP, 'the closed handle started nothing');
    const again = (await A.dre_app_open(name))!;
    assert.equal(await A.dre_app_status(again), A.DRE_APP_CONTAINER_STATUS_STOP);
  });

  const cpu = (parcent: number) => ({ type: A.DRE_APP_CONTAINER_RESOURCE_CPU, udata: { cpu: { parcent } } });
  let pid = 0;

  it("parcent is the spec's int: set_resource refuses a fraction", async () => {
    const h = (await A.dre_app_open(name))!;
    assert.equal(await A.dre_app_start(h), 0);
    assert.equal(await A.dre_app_create_cgroup(h, 'busy'), 0);
    pid = await busyLoop(name);
    assert.equal(await A.dre_app_bind_pid(h, 'busy', pid), 0);
    assert.equal(await A.dre_app_set_resource(h, 'busy', cpu(12.5)), A.DRE_ERR_INVALID_ARGUMENT);
  });

  it("parcent is the spec's int: get_resource rounds what it measures", async () => {
    const h = (await A.dre_app_open(name))!;
    assert.equal(await A.dre_app_set_resource(h, 'busy', cpu(30)), 0);
    await sleep(300);
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = { type: A.DRE_APP_CONTAINER_RESOURCE_CPU, udata: {} } as A.dre_app_resource_value_t;
      assert.equal(await A.dre_app_get_resource(h, pid, r), 0);
      seen.push(r.udata.cpu!.parcent!);
    }
    assert.ok(seen.every(Number.isInteger), `parcent is an int: ${seen.join(', ')}`);
    assert.ok(
      seen.some((p) => p > 5 && p <= 40),
      `and measures the loop under its 30% quota: ${seen.join(', ')}`,
    );
    process.kill(pid, 'SIGKILL');
  });

  it('restart takes a running container, as for system containers (the spec: "only while running")', async () => {
    assert.equal(await app.status(name), STATUS.RUNNING);
    const h = (await A.dre_app_open(name))!;
    // Before: DRE_ERR_CONTAINER_RUNNING. Now it gets as far as the checkpoint.
    assert.equal(await A.dre_app_restart(h, 'nope'), A.DRE_ERR_SNAPSHOT_NONEXISTENCE);
    // A checkpoint CRIU cannot restore (here CRIU itself fails `criu check`): refused before the container is touched.
    mkdirSync(checkpointDir(name, 'empty'), { recursive: true });
    const r = await A.dre_app_restart(h, 'empty');
    assert.equal(r, A.DRE_ERR_LOAD_SNAPSHOT_FAILED);
    assert.equal(await app.status(name), STATUS.RUNNING, 'a refused restart leaves the container running');
  });
});

describe('spec conformance: system containers', () => {
  const name = uniqueName('conformvm');
  after(() => removeGuest(name));

  it('dre_sys_close retires the handle as dre_app_close does', async () => {
    requireQemu();
    await sys.create(name, { memorySize: 256, accel: 'tcg' });
    const h = (await S.dre_sys_open(name))!;
    assert.equal(await S.dre_sys_close(h), 0);
    assert.equal(await S.dre_sys_status(h), S.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await S.dre_sys_close(h), S.DRE_ERR_INVALID_ARGUMENT);
  });

  it('dre_sys_remove_snapshot is refused while running (the spec: "only while stopped"), and the snapshot stays', { timeout: 300_000 }, async () => {
    const h = (await S.dre_sys_open(name))!;
    assert.equal(await S.dre_sys_save_snapshot(h, 's1'), 0);
    assert.equal(await S.dre_sys_start(h), 0);
    assert.equal(await S.dre_sys_remove_snapshot(h, 's1'), S.DRE_ERR_CONTAINER_RUNNING);
    assert.deepEqual(await sys.listSnapshots(name), ['s1']);
    assert.equal(await S.dre_sys_stop(h), 0);
    assert.equal(await S.dre_sys_remove_snapshot(h, 's1'), 0);
    assert.deepEqual(await sys.listSnapshots(name), []);
  });
});

import '../support/env.js';
import { rootIdRange, shiftOwners } from '../../src/app/userns.js';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as spec from '../../src/spec/app.js';
import { ContainerLock } from '../../src/core/lock.js';
import { containersDir } from '../../src/core/paths.js';
import { upperDir } from '../../src/app/layout.js';
import { app, type DreError } from '../../src/index.js';
import { uniqueName } from '../support/env.js';

const data = (base: string | null = null, port: number | null = null): spec.dre_app_data => ({
  type: spec.DRE_APP_CONTAINER_TYPE_LXC,
  udata: { lxc: { base, port } },
});
const handle = (name: string): spec.dre_app_handle => ({ type: spec.DRE_APP_CONTAINER_TYPE_LXC, name });
/** What a caller sees on disk and in the list: bad input must change neither. */
const snapshotOfState = async () => {
  const list: spec.Out<string[]> = {};
  assert.equal(await spec.dre_app_get_container_list(list), 0);
  return { list: list.value, dir: existsSync(containersDir('app')) ? readdirSync(containersDir('app')).sort() : [] };
};

describe('the spec layer of application containers', () => {
  const name = uniqueName('spec');
  const h = handle(name);

  before(async () => {
    assert.equal(await spec.dre_app_create_container(name, data()), 0);
  });
  after(async () => {
    await spec.dre_app_stop(h);
    await spec.dre_app_destroy_container(name);
  });

  it('returns each state error of the lifecycle functions', async () => {
    assert.equal(await spec.dre_app_create_container(name, data()), spec.DRE_ERR_CONTAINER_EXISTENCE);
    assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_STOP);
    assert.equal(await spec.dre_app_stop(h), spec.DRE_ERR_CONTAINER_STOPPED);
    assert.equal(await spec.dre_app_suspend(h), spec.DRE_ERR_CONTAINER_STOPPED);
    assert.equal(await spec.dre_app_resume(h), spec.DRE_ERR_CONTAINER_STOPPED);
    assert.equal(await spec.dre_app_get_pid(h, {}), spec.DRE_ERR_CONTAINER_STOPPED);

    assert.equal(await spec.dre_app_start(h), 0);
    assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_RUNNING);
    assert.equal(await spec.dre_app_start(h), spec.DRE_ERR_CONTAINER_RUNNING);
    assert.equal(await spec.dre_app_resume(h), spec.DRE_ERR_CONTAINER_RUNNING);
    assert.equal(await spec.dre_app_destroy_container(name), spec.DRE_ERR_CONTAINER_RUNNING);
    const pid: spec.Out<number> = {};
    assert.equal(await spec.dre_app_get_pid(h, pid), 0);
    assert.ok(pid.value! > 1);

    assert.equal(await spec.dre_app_suspend(h), 0);
    assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_SUSPENDED);
    assert.equal(await spec.dre_app_suspend(h), spec.DRE_ERR_CONTAINER_SUSPENDED);
    assert.equal(await spec.dre_app_start(h), spec.DRE_ERR_CONTAINER_SUSPENDED);
    assert.equal(await spec.dre_app_stop(h), spec.DRE_ERR_CONTAINER_SUSPENDED);
    assert.equal(await spec.dre_app_destroy_container(name), spec.DRE_ERR_CONTAINER_SUSPENDED);
    assert.equal(await spec.dre_app_get_pid(h, {}), 0, 'a suspended container still has its init');
    assert.equal(await spec.dre_app_resume(h), 0);
    assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_RUNNING);
  });

  it('reports BUSY and refuses changes while another operation holds the container', async () => {
    const lock = ContainerLock.acquire('app', name, 'test');
    try {
      assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_BUSY);
      assert.equal(await spec.dre_app_stop(h), spec.DRE_ERR_CONTAINER_BUSY);
      assert.equal(await spec.dre_app_suspend(h), spec.DRE_ERR_CONTAINER_BUSY);
      assert.equal(await spec.dre_app_destroy_container(name), spec.DRE_ERR_CONTAINER_BUSY);
    } finally {
      lock.release();
    }
    assert.equal(await spec.dre_app_status(h), spec.DRE_APP_CONTAINER_STATUS_RUNNING);
  });

  it('opens existing containers only and closes what it opened', async () => {
    const opened = await spec.dre_app_open(name);
    assert.deepEqual(opened, h);
    assert.equal(await spec.dre_app_close(opened), 0);
    assert.equal(await spec.dre_app_open(uniqueName('none')), null);
    assert.equal(await spec.dre_app_open('../etc'), null);
    assert.equal(await spec.dre_app_close(null), spec.DRE_ERR_NULL_POINTER);
  });

  it('fills and releases the container list', async () => {
    const list: spec.Out<spec.dre_list_t> = {};
    assert.equal(await spec.dre_app_get_container_list(list), 0);
    assert.ok(list.value!.includes(name));
    assert.equal(await spec.dre_app_release_container_list(list.value!), 0);
    assert.equal(await spec.dre_app_release_container_list(null as never), spec.DRE_ERR_NULL_POINTER);
    assert.equal(await spec.dre_app_get_container_list(null as never), spec.DRE_ERR_NULL_POINTER);
  });
});

describe('bad input to the application container functions', () => {
  const badNames: [unknown, number][] = [
    ['', spec.DRE_ERR_INVALID_ARGUMENT],
    ['..', spec.DRE_ERR_INVALID_ARGUMENT],
    ['a/b', spec.DRE_ERR_INVALID_ARGUMENT],
    ['a\0b', spec.DRE_ERR_INVALID_ARGUMENT],
    ['a b', spec.DRE_ERR_INVALID_ARGUMENT],
    ['日本', spec.DRE_ERR_INVALID_ARGUMENT],
    ['x'.repeat(65), spec.DRE_ERR_REQUEST_TOO_LONG],
    [null, spec.DRE_ERR_NULL_POINTER],
    [undefined, spec.DRE_ERR_NULL_POINTER],
  ];

  it('gets its precise code for each bad name, and changes nothing', async () => {
    const before = await snapshotOfState();
    for (const [bad, code] of badNames) {
      const label = JSON.stringify(bad);
      assert.equal(await spec.dre_app_create_container(bad as string, data()), code, `create ${label}`);
      assert.equal(await spec.dre_app_destroy_container(bad as string), code, `destroy ${label}`);
      assert.equal(await spec.dre_app_start(handle(bad as string)), code, `start ${label}`);
      assert.equal(await spec.dre_app_stop(handle(bad as string)), code, `stop ${label}`);
      assert.equal(await spec.dre_app_status(handle(bad as string)), code, `status ${label}`);
      assert.equal(await spec.dre_app_suspend(handle(bad as string)), code, `suspend ${label}`);
      assert.equal(await spec.dre_app_resume(handle(bad as string)), code, `resume ${label}`);
      assert.equal(await spec.dre_app_get_pid(handle(bad as string), {}), code, `get_pid ${label}`);
      assert.equal(await spec.dre_app_open(bad as string), null, `open ${label}`);
    }
    assert.deepEqual(await snapshotOfState(), before);
  });

  it('refuses null or malformed handles, data and out-parameters', async () => {
    const before = await snapshotOfState();
    const name = uniqueName('bad');
    for (const f of [spec.dre_app_start, spec.dre_app_stop, spec.dre_app_status, spec.dre_app_suspend, spec.dre_app_resume]) {
      assert.equal(await f(null as never), spec.DRE_ERR_NULL_POINTER, f.name);
      assert.equal(await f(undefined as never), spec.DRE_ERR_NULL_POINTER, f.name);
      assert.equal(await f({ type: 100, name } as never), spec.DRE_ERR_INVALID_ARGUMENT, `${f.name} with a system handle`);
    }
    assert.equal(await spec.dre_app_create_container(name, null), spec.DRE_ERR_NULL_POINTER);
    assert.equal(await spec.dre_app_create_container(name, { type: 2 } as never), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_app_create_container(name, { type: 1, udata: null } as never), spec.DRE_ERR_NULL_POINTER);
    assert.equal(await spec.dre_app_create_container(name, data(null, 70000)), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_app_create_container(name, data(null, -1)), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_app_create_container(name, data('../escape')), spec.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(await spec.dre_app_create_container(name, data('no-such-base')), spec.DRE_ERR_BASE_NONEXISTENCE);
    assert.equal(await spec.dre_app_get_pid(handle(name), null as never), spec.DRE_ERR_NULL_POINTER);
    assert.deepEqual(await snapshotOfState(), before);
  });

  it("reports a start that LXC cannot carry out as STOPPED with LXC's reason, and stays usable", async () => {
    const name = uniqueName('broken');
    assert.equal(await spec.dre_app_create_container(name, data()), 0);
    // An init the kernel cannot execute, in the container's own layer: LXC fails to start it.
    const init = join(upperDir(name), 'sbin', 'init');
    mkdirSync(join(upperDir(name), 'sbin'), { recursive: true });
    writeFileSync(init, 'not a program\n', { mode: 0o644 });
    shiftOwners(join(upperDir(name), 'sbin'), rootIdRange()); // as the container's own root would have made them
    try {
      await assert.rejects(app.start(name), (e: DreError) => e.errName === 'DRE_ERR_CONTAINER_STOPPED' && /LXC could not start it/.test(e.message));
      assert.equal(await spec.dre_app_status(handle(name)), spec.DRE_APP_CONTAINER_STATUS_STOP);
      rmSync(init);
      assert.equal(await spec.dre_app_start(handle(name)), 0);
      assert.equal(await spec.dre_app_stop(handle(name)), 0);
    } finally {
      await app.stop(name, { timeoutMs: 0 }).catch(() => {});
      assert.equal(await spec.dre_app_destroy_container(name), 0);
    }
  });

  it('answers NONEXISTENCE for a container that never was or was destroyed', async () => {
    const name = uniqueName('gone');
    const h = handle(name);
    assert.equal(await spec.dre_app_start(h), spec.DRE_ERR_CONTAINER_NONEXISTENCE);
    assert.equal(await spec.dre_app_create_container(name, data(null, 2222)), 0);
    assert.equal(await spec.dre_app_destroy_container(name), 0);
    for (const f of [spec.dre_app_start, spec.dre_app_stop, spec.dre_app_status, spec.dre_app_suspend, spec.dre_app_resume]) {
      assert.equal(await f(h), spec.DRE_ERR_CONTAINER_NONEXISTENCE, f.name);
    }
    assert.equal(await spec.dre_app_get_pid(h, {}), spec.DRE_ERR_CONTAINER_NONEXISTENCE);
    assert.equal(await spec.dre_app_destroy_container(name), spec.DRE_ERR_CONTAINER_NONEXISTENCE);
  });
});

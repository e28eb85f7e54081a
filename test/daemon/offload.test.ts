import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import '../support/env.js';
import { DriverWorkers, offloadedSysDriver } from '../../src/daemon/offload.js';
import { isDreError } from '../../src/core/errors.js';
import { containerDir } from '../../src/core/paths.js';
import { sysDriver } from '../../src/sys/driver.js';

describe('dred: system calls that may wait on NFS run in a worker thread', () => {
  const workers = new DriverWorkers();
  after(() => workers.stop());

  it("gives back the driver's value and its DreError (name, code and message) as the call on this thread would", async () => {
    assert.deepEqual(await workers.call('list', []), await sysDriver.list());
    const here = await sysDriver.listSnapshots('nosuch').catch((e: unknown) => e);
    const there = await workers.call('listSnapshots', ['nosuch']).catch((e: unknown) => e);
    assert.ok(isDreError(here) && isDreError(there), String(there));
    assert.equal(there.errName, here.errName);
    assert.equal(there.code, here.code);
    assert.equal(there.message, here.message);
  });

  it('sends a call there only when it may reach the share: the NFS routes, and a shared container (a share.json) or a host with an NFS server', async () => {
    const inWorker: string[] = [];
    const spy = { call: (method: string, args: unknown[]) => (inWorker.push(method), workers.call(method, args)) } as unknown as DriverWorkers;
    const sys = offloadedSysDriver(spy);
    await sys.listSnapshots('nosuch').catch(() => undefined);
    await sys.leaseHolder('nosuch').catch(() => undefined);
    assert.deepEqual(inWorker, ['leaseHolder'], 'a local container stays on the loop, a lease goes to the worker');
    const dir = containerDir('sys', 'offl');
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/share.json`, '{"url":"nfs://127.0.0.2/x"}');
    try {
      await sys.listSnapshots('offl').catch(() => undefined);
      assert.deepEqual(inWorker, ['leaseHolder', 'listSnapshots'], 'a shared container goes to the worker');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Uses NFS (port 111 of a loopback address): run under `flock /tmp/dre-nfs.lock`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import '../support/env.js';
import { call, Daemon } from '../support/dred.js';
import { stateRoot } from '../../src/core/paths.js';
import { sleep } from '../../src/core/proc.js';

/** A portmapper that takes connections and never answers: an NFS server that hangs. */
const SILENT_ADDR = '127.0.0.2';

describe('dred: an NFS server that never answers holds only the request that waits on it', () => {
  let daemon: Daemon | undefined;
  let silent: Server | undefined;
  const held: Socket[] = [];
  before(async () => {
    silent = createServer((s) => held.push(s.on('error', () => undefined)));
    await new Promise<void>((resolve, reject) => silent!.once('error', reject).listen(111, SILENT_ADDR, () => resolve()));
    daemon = await Daemon.start();
  });
  after(async () => {
    await daemon?.kill('SIGTERM');
    for (const s of held) s.destroy();
    await new Promise((resolve) => (silent ? silent.close(resolve) : resolve(undefined)));
  });

  it('answers list and status requests at once while PUT /1.0/sys/nfs waits, and the PUT fails with NFS_MOUNT_FAILED, nothing set', async (t) => {
    let settled = false;
    const put = call('PUT', '/1.0/sys/nfs', { url: `nfs://${SILENT_ADDR}/export` }).finally(() => (settled = true));
    for (let i = 0; held.length === 0 && i < 100; i++) await sleep(20);
    assert.ok(held.length > 0, 'the NFS client reached the silent server');
    let slowest = 0;
    for (let i = 0; i < 10; i++) {
      for (const path of ['/1.0', '/1.0/app/containers', '/1.0/sys/containers', '/1.0/sys/containers/nosuch/state']) {
        const t = performance.now();
        const r = await call('GET', path, undefined, { timeoutMs: 10_000 });
        slowest = Math.max(slowest, performance.now() - t);
        assert.ok(r.status === 200 || r.body.error === 'DRE_ERR_CONTAINER_NONEXISTENCE', `${path}: ${JSON.stringify(r.body)}`);
      }
      await sleep(100);
    }
    // Answered while the NFS call still waited (a blocked loop would have answered them only after it):
    // that is the proof, not how fast they came (a timing, which is the bench's).
    assert.equal(settled, false, 'the requests were answered while the NFS call was still waiting');
    t.diagnostic(`the slowest of 40 answers took ${slowest.toFixed(1)} ms`);
    const r = await put;
    assert.equal(r.body.error, 'DRE_ERR_NFS_MOUNT_FAILED', JSON.stringify(r.body));
    assert.match(r.body.message, /no answer within 5 s/);
    assert.equal(existsSync(join(stateRoot(), 'sys', 'nfs.json')), false, 'no NFS server recorded');
  });
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cut, etcdEval, etcdGet, etcdPut, heal, nfsWrite, setUpCluster, signalDred, startDred, tearDownCluster, type Cluster } from '../support/cluster.js';

// Three D-RE hosts, three etcd members and the NFS server, each in a namespace on one switch (test/support/cluster.ts).
let c: Cluster;
const KEYS = `/dre-test/topology-${process.pid}/`;

/** The command lines of the processes whose arguments mention `text` (zombies have none). */
function processesMentioning(text: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return argv.includes(text) ? [argv.replaceAll('\0', ' ')] : [];
      } catch {
        return [];
      }
    });
}

/** The namespaces of this process's cluster that `ip netns list` shows. */
const ourNamespaces = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.match(new RegExp(`dre-cl-${process.pid.toString(36)}-\\S+`, 'g')) ?? [];

describe('a three-host D-RE cluster on etcd, in namespaces on one switch', () => {
  before(async () => {
    c = await setUpCluster(process.env.DRE_TEST_TMP!);
  });

  after(() => {
    tearDownCluster();
    assert.deepEqual(ourNamespaces(), []);
    assert.deepEqual(processesMentioning(`${process.env.DRE_TEST_TMP}/etcd-${process.pid.toString(36)}/`), []);
  });

  it('runs etcd as three started members with one leader they agree on', async () => {
    const { members, leaders } = await etcdEval<{ members: { name: string; clientURLs: string[] }[]; leaders: string[] }>(
      c,
      `const { members } = await client.cluster.memberList({});
       const leaders = await Promise.all(${JSON.stringify(c.etcdEndpoints)}.map(async (e) => {
         const one = new Etcd3({ hosts: e });
         try { return (await one.maintenance.status()).leader; } finally { one.close(); }
       }));
       return { members, leaders };`,
    );
    // A member that never started has no name yet.
    assert.deepEqual(members.map((m) => m.name).sort(), ['e1', 'e2', 'e3']);
    assert.deepEqual(members.flatMap((m) => m.clientURLs).sort(), c.etcdEndpoints);
    assert.notEqual(leaders[0], '0');
    assert.deepEqual(leaders, [leaders[0], leaders[0], leaders[0]]);
  });

  it("reads on h3 what h1 put, with the put's revision", async () => {
    await etcdPut(c, `${KEYS}from-h1`, 'hello', { from: c.hosts[0] });
    const kvs = await etcdGet(c, KEYS, { from: c.hosts[2] });
    assert.equal(kvs.length, 1);
    assert.equal(kvs[0].key, `${KEYS}from-h1`);
    assert.equal(kvs[0].value, 'hello');
    assert.ok(kvs[0].modRevision > 1, String(kvs[0].modRevision));
  });

  it('starts dred on h2 with its TLS listener on its switch address, answering on its socket', async () => {
    const h2 = c.hosts[1];
    const pid = await startDred(h2, ['--listen', `${h2.addr}:8443`, '--tls', h2.tlsDir]);
    try {
      // The kernel's view inside h2's namespace: a TCP listener on the host's address.
      const listening = spawnSync('ip', ['netns', 'exec', h2.ns, 'ss', '-Hltnp', 'sport', '= :8443'], { encoding: 'utf8' }).stdout;
      assert.match(listening, new RegExp(`${h2.addr.replaceAll('.', '\\.')}:8443 .*pid=${pid}\\b`));
      assert.match(readFileSync(h2.log, 'utf8'), /serving HTTPS on 10\.252\.0\.2:8443/);
    } finally {
      signalDred(pid, 'SIGTERM');
    }
  });

  it('cuts h1 off etcd within seconds while h2 still reaches etcd and NFS, and heals it', async () => {
    const [h1, h2] = c.hosts;
    cut(c, h1);
    try {
      const started = Date.now();
      await assert.rejects(etcdGet(c, KEYS, { from: h1 }));
      assert.ok(Date.now() - started < 10_000, `the get failed only after ${Date.now() - started} ms`);
      assert.equal((await etcdGet(c, KEYS, { from: h2 })).length, 1);
      await nfsWrite(c, h2, `topology-${process.pid}`, 'from h2');
      assert.equal(readFileSync(join(c.exportDir, `topology-${process.pid}`), 'utf8'), 'from h2');
    } finally {
      heal(c, h1);
    }
    assert.equal((await etcdGet(c, KEYS, { from: h1 })).length, 1);
  });
});

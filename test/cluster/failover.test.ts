import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sleep } from '../../src/core/proc.js';
import { cut, etcdGet, heal, hostCli, setUpCluster, signalDred, startDred, tearDownCluster, type Cluster, type ClusterHost } from '../support/cluster.js';
import { requireQemu } from '../sys/helpers.js';

// Three D-RE hosts on a three-member etcd, one NFS share (test/support/cluster.ts). One shared VM
// with the failover policy moves from host to host as each one is lost, in three ways.
let c: Cluster;
const VM = `fo-${process.pid}`;
const TTL_S = 3;
const dreds = new Map<string, number>();

function ok(h: ClusterHost, ...args: string[]): string {
  const r = hostCli(h, args);
  assert.equal(r.code, 0, `${h.name}: dre-sys ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function fails(h: ClusterHost, code: number, ...args: string[]): string {
  const r = hostCli(h, args);
  assert.equal(r.code, code, `${h.name}: dre-sys ${args.join(' ')} should exit ${code}: ${r.stdout} ${r.stderr}`);
  return r.stderr;
}

/** `text` as a regular expression matching itself. */
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const hostId = (h: ClusterHost) => readFileSync(join(h.root, 'sys', 'host-id'), 'utf8').trim();

async function startHost(h: ClusterHost): Promise<void> {
  dreds.set(h.name, await startDred(h, ['--cluster', c.etcdUrl, '--lease-ttl', String(TTL_S), '--listen', `${h.addr}:8443`, '--tls', h.tlsDir]));
}

/** The container's owner in etcd (its host and the fencing token), or undefined. */
async function owner(): Promise<{ host: ClusterHost; token: number } | undefined> {
  const [kv] = await etcdGet(c, `dre/owners/${VM}`);
  if (!kv) return undefined;
  const id = (JSON.parse(kv.value) as { hostId: string }).hostId;
  return { host: c.hosts.find((h) => hostId(h) === id)!, token: kv.modRevision };
}

const guard = () => JSON.parse(readFileSync(join(c.exportDir, `${VM}.guard`), 'utf8')) as { token: number; hostId: string; running: boolean; since: string };

/** The events of host h's journal about the VM. */
function events(h: ClusterHost): { type: string; time: string; [k: string]: unknown }[] {
  const path = join(h.run, 'events.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.name === VM);
}

/** Waits until a host other than `from` owns and runs the VM; returns it and the time it took. */
async function failedOverFrom(from: ClusterHost, since: number): Promise<{ to: ClusterHost; ms: number }> {
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(250)) {
    const o = await owner().catch(() => undefined);
    if (!o || o.host === from) continue;
    if (hostCli(o.host, ['status', VM]).stdout.split('\n')[0] === 'RUNNING') return { to: o.host, ms: Date.now() - since };
  }
  throw new Error(`${VM} did not fail over from ${from.name} within 90 s`);
}

/** No QEMU of the VM runs on h (its status there, and its process). */
function assertNotRunning(h: ClusterHost): void {
  assert.equal(status(h), 'STOP', `${h.name} still runs ${VM}`);
}

/** The VM's status on h (the first line: a supervised container's status goes on with its health). */
const status = (h: ClusterHost) => ok(h, 'status', VM).split('\n')[0];

describe('a cluster of three D-RE hosts on etcd: ownership, fencing, failover, migration in one command', () => {
  before(async () => {
    requireQemu();
    c = await setUpCluster(process.env.DRE_TEST_TMP!);
    await Promise.all(c.hosts.map(startHost));
    const h1 = c.hosts[0];
    ok(h1, 'create', VM, '--accel', 'tcg');
    ok(h1, 'share', VM);
    ok(h1, 'policy', VM, '--failover');
    ok(h1, 'start', VM);
  });

  after(() => {
    // DRE_TEST_LOGS=DIR keeps each host's dred log (the run's temporary directory goes at its end).
    if (process.env.DRE_TEST_LOGS) for (const h of c?.hosts ?? []) if (existsSync(h.log)) copyFileSync(h.log, join(process.env.DRE_TEST_LOGS, `${h.name}.log`));
    tearDownCluster();
  });

  it('owns a started shared container in etcd under its host, with the key revision as fencing token in the guard beside the image', async () => {
    const [h1, h2] = c.hosts;
    const o = await owner();
    assert.equal(o?.host, h1);
    assert.deepEqual({ token: guard().token, host: guard().hostId, running: guard().running }, { token: o!.token, host: hostId(h1), running: true });
    // Every member sees where it runs; another host may not start it.
    assert.match(ok(h2, 'list', '--all-hosts'), new RegExp(`${VM}\\s+\\S+${escaped(h1.root)}\\s+running\\s+yes`));
    assert.match(fails(h2, 116, 'start', VM), new RegExp(`run by host .*${escaped(h1.root)}`));
    assert.match(fails(h2, 101, 'lease', VM, '--break'), /expires by itself/);
  });

  it("fails over when a host's daemon is SIGKILLed: its watchdog kills the guest before the lease lapses, another host boots it", async () => {
    const from = (await owner())!;
    const t0 = Date.now();
    signalDred(dreds.get(from.host.name)!, 'SIGKILL');
    const { to, ms } = await failedOverFrom(from.host, t0);
    assertNotRunning(from.host);
    const fenced = events(from.host).find((e) => e.type === 'fenced');
    assert.ok(fenced, `${from.host.name} recorded no fencing`);
    // The new owner took it (and wrote the guard) only after the old guest was dead.
    assert.ok(Date.parse(guard().since) > Date.parse(fenced.time), `taken over at ${guard().since}, fenced at ${fenced.time}`);
    const took = events(to).find((e) => e.type === 'failed-over');
    assert.ok(String(took?.from).endsWith(from.host.root), `the failover event names where it ran: ${JSON.stringify(took)}`);
    assert.ok(guard().token > from.token, 'the new owner holds a newer token');
    process.stderr.write(`# failover after SIGKILL of dred: ${ms} ms (TTL ${TTL_S} s)\n`);
    await startHost(from.host); // back as a healthy member, owning nothing
    assertNotRunning(from.host);
  });

  it('fails over when a host is cut off: its daemon kills its own guest, and it rejoins when healed', async () => {
    const from = (await owner())!;
    const t0 = Date.now();
    cut(c, from.host);
    try {
      const { ms } = await failedOverFrom(from.host, t0);
      process.stderr.write(`# failover after a partition: ${ms} ms\n`);
      assertNotRunning(from.host);
      assert.match(
        String(
          events(from.host)
            .filter((e) => e.type === 'fenced')
            .pop()?.reason,
        ),
        /lost the cluster/,
      );
    } finally {
      heal(c, from.host);
    }
    const id = hostId(from.host);
    for (let i = 0; i < 40 && (await etcdGet(c, `dre/hosts/${id}`)).length === 0; i++) await sleep(250);
    assert.equal((await etcdGet(c, `dre/hosts/${id}`)).length, 1, `${from.host.name} did not rejoin`);
  });

  it('fails over from a daemon paused past its TTL, and once resumed the old host writes nothing: its guest is dead and its token refused', async () => {
    const from = (await owner())!;
    const pid = dreds.get(from.host.name)!;
    const t0 = Date.now();
    signalDred(pid, 'SIGSTOP');
    let to: ClusterHost;
    try {
      ({ to } = await failedOverFrom(from.host, t0));
    } finally {
      signalDred(pid, 'SIGCONT');
    }
    await sleep(TTL_S * 1000);
    assertNotRunning(from.host);
    assert.match(fails(from.host, 116, 'start', VM), /run by host/);
    const now = (await owner())!;
    assert.equal(now.host, to);
    assert.equal(guard().token, now.token);
    // A newer token in the guard than etcd gives the owner (a write of an owner etcd no longer
    // remembers, as on a lock granted on a dead lease): the owner's checkpoint is refused, not written.
    const saved = readFileSync(join(c.exportDir, `${VM}.guard`), 'utf8');
    writeFileSync(join(c.exportDir, `${VM}.guard`), JSON.stringify({ ...guard(), token: now.token + 1000 }));
    try {
      assert.match(fails(to, 116, 'checkpoint', VM, 'stale'), /fenced: .*token/);
    } finally {
      writeFileSync(join(c.exportDir, `${VM}.guard`), saved);
    }
    assert.doesNotMatch(ok(to, 'checkpoints', VM), /stale/);
  });

  it('migrates in one command to another member and back; the ownership and the guard follow the guest', async () => {
    const from = (await owner())!;
    const other = c.hosts.find((h) => h !== from.host)!;
    ok(from.host, 'exec', VM, '--', 'sh', '-c', 'echo moved > /tmp/mark');
    ok(from.host, 'migrate', VM, other.addr);
    assert.equal(status(other), 'RUNNING');
    assertNotRunning(from.host);
    assert.equal(ok(other, 'exec', VM, '--', 'cat', '/tmp/mark'), 'moved');
    const there = (await owner())!;
    assert.equal(there.host, other);
    assert.ok(there.token > from.token);
    assert.deepEqual({ token: guard().token, host: guard().hostId }, { token: there.token, host: hostId(other) });
    ok(other, 'migrate', VM, from.host.addr);
    assert.equal(status(from.host), 'RUNNING');
    assert.equal((await owner())!.host, from.host);
    assert.equal(ok(from.host, 'exec', VM, '--', 'cat', '/tmp/mark'), 'moved');
  });

  it("fails over a guest its host's fencing killed while the host kept its lease (a renewal answered late): the container is not taken for stopped", async () => {
    const from = (await owner())!;
    // What the lease keeper and the watchdog do past the deadline, on a host whose daemon still renews
    // its lease (as when a late answer renewed it): the guest is dead, and it should still run.
    const fence = new URL('../../src/sys/fence.js', import.meta.url).href;
    const script = `const { killSharedGuests } = await import(${JSON.stringify(fence)}); killSharedGuests('test: fenced under a lease still held');`;
    execFileSync('ip', ['netns', 'exec', from.host.ns, process.execPath, '--input-type=module', '-e', script], { env: from.host.env });
    // Any healthy member may take it, this one too: it runs again somewhere under a newer token.
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(250)) {
      const o = await owner().catch(() => undefined);
      if (o && o.token > from.token && status(o.host) === 'RUNNING') break;
    }
    const now = await owner();
    assert.ok(now && now.token > from.token && status(now.host) === 'RUNNING', `${VM} was not started again: ${ok(from.host, 'list', '--all-hosts')}`);
    assert.match(ok(from.host, 'list', '--all-hosts'), new RegExp(`${VM}\\s+\\S+\\s+running\\s+yes`));
  });

  it('gives the ownership up when the guest ends by itself on a healthy host (not a host loss): another host may start it', async () => {
    const o = (await owner())!;
    const qemu = Number(ok(o.host, 'pid', VM));
    process.kill(qemu, 'SIGKILL');
    for (let i = 0; i < 40 && (await owner()) !== undefined; i++) await sleep(250);
    assert.equal(await owner(), undefined, 'the ownership stayed with a host that runs nothing');
    assert.match(ok(o.host, 'list', '--all-hosts'), new RegExp(`${VM}\\s+-\\s+stopped`));
    const other = c.hosts.find((h) => h !== o.host)!;
    ok(other, 'start', VM);
    assert.equal((await owner())?.host, other);
  });

  it('stops the container for good when a user stops it: no host fails it over', async () => {
    const o = (await owner())!;
    ok(o.host, 'stop', VM);
    await sleep(TTL_S * 1000);
    assert.equal(await owner(), undefined);
    for (const h of c.hosts) assertNotRunning(h);
    assert.match(ok(o.host, 'list', '--all-hosts'), new RegExp(`${VM}\\s+-\\s+stopped`));
  });
});

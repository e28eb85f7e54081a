import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { containerCgroup, lxcPath } from '../../src/app/layout.js';
import { networkConfig } from '../../src/app/network.js';
import { portTable } from '../../src/app/portforward.js';
import { allHierarchyMounts } from '../../src/core/cgroup.js';
import { STATUS } from '../../src/core/driver.js';
import { mountTable } from '../../src/core/mounts.js';
import { cgroupRoot, containerRunDir, stateRoot } from '../../src/core/paths.js';
import { readJson } from '../../src/core/store.js';
import { freePort, uniqueName } from '../support/env.js';

// CI size; `npm run bench -- scale` goes to 500.
const COUNT = Number(process.env.DRE_TEST_SCALE ?? 60);
const PARALLEL = 20;
/** Every PORT_EVERY-th container has an SSH port. */
const PORT_EVERY = 5;

/** Runs `fn` on every item, `PARALLEL` at a time; rejects with every failure named. */
async function each<T>(items: T[], fn: (x: T) => Promise<unknown>): Promise<void> {
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) {
        const x = items[next++];
        await fn(x).catch((e: Error) => failures.push(`${String(x)}: ${e.message}`));
      }
    }),
  );
  assert.deepEqual(failures, []);
}

/** The SSH banner's first bytes through 127.0.0.1:port, retried while the server boots. */
async function banner(port: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const got = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.setTimeout(2_000, () => (s.destroy(), resolve('')));
      s.once('data', (b) => (s.destroy(), resolve(b.toString().slice(0, 8))));
      s.once('error', () => resolve(''));
    });
    if (got) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
  return '';
}

/** Host processes whose command line names this root's lxcpath (LXC monitors), from /proc. */
function lxcProcessesOfRoot(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.includes(lxcPath()) ? [`${p} ${cmd.replaceAll('\0', ' ')}`] : [];
      } catch {
        return [];
      }
    });
}

describe(`${COUNT} application containers at once`, () => {
  const names = Array.from({ length: COUNT }, () => uniqueName('scale'));
  const ports = new Map<string, number>();

  after(async () => {
    for (const n of names) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(n).catch(() => {});
    }
  });

  it('creates, starts, lists, stops and destroys them in parallel through the library, leaving nothing behind', { timeout: 900_000 }, async () => {
    for (const [i, n] of names.entries()) if (i % PORT_EVERY === 0) ports.set(n, await freePort());
    await each(names, (n) => app.create(n, { port: ports.get(n) ?? null }));
    await each(names, (n) => app.start(n));

    // Running, each in its own network namespace with its own address.
    const listed = await app.list();
    for (const n of names) assert.ok(listed.includes(n), `${n} listed`);
    const statuses = await Promise.all(names.map((n) => app.status(n)));
    assert.deepEqual(
      names.filter((_, i) => statuses[i] !== STATUS.RUNNING),
      [],
      'all running',
    );
    const addresses = names.map((n) => app.info(n).address);
    assert.equal(new Set(addresses).size, COUNT, 'distinct addresses');
    const inits = await Promise.all(names.map((n) => app.pid(n)));
    assert.equal(new Set(inits.map((p) => readFileSync(`/proc/${p}/cgroup`, 'utf8'))).size, COUNT, 'each init in its own cgroups');

    // The kernel forwards exactly the ports given, in this root's table, and they answer.
    const table = JSON.parse(spawnSync('nft', ['-j', 'list', 'map', 'inet', portTable(), 'ssh'], { encoding: 'utf8' }).stdout) as {
      nftables: { map?: { elem?: [{ elem: { val: number; comment: string } }, unknown][] } }[];
    };
    const elems = table.nftables.flatMap((o) => o.map?.elem ?? []).map(([k]) => `${k.elem.comment}:${k.elem.val}`);
    assert.deepEqual(elems.sort(), [...ports].map(([n, p]) => `${n}:${p}`).sort());
    for (const p of [...ports.values()].slice(0, 3)) assert.equal(await banner(p), 'SSH-2.0-', `port ${p} answers`);

    await each(names, (n) => app.stop(n, { timeoutMs: 0 }));
    await each(names, (n) => app.destroy(n));

    // Nothing left: containers, leases, cgroups, veths, the bridge, nftables, LXC processes, mounts.
    assert.deepEqual(
      (await app.list()).filter((n) => names.includes(n)),
      [],
    );
    assert.deepEqual(readJson(join(stateRoot(), 'app', 'leases.json')), {});
    const groups = allHierarchyMounts().flatMap((m) => names.flatMap((n) => [join(m, containerCgroup(n)), join(m, `${containerCgroup(n)}.monitor`)]));
    assert.deepEqual(
      groups.filter((g) => existsSync(g)),
      [],
      'no cgroup of theirs',
    );
    const { bridge } = networkConfig();
    assert.deepEqual(
      readdirSync('/sys/class/net').filter((l) => l === bridge || l.startsWith(`${bridge}-`)),
      [],
      'no bridge or veth',
    );
    assert.notEqual(spawnSync('nft', ['list', 'table', 'inet', portTable()]).status, 0, 'no nftables table');
    assert.deepEqual(lxcProcessesOfRoot(), [], 'no LXC process of this root');
    const theirs = (m: string) => names.some((n) => m.startsWith(`${containerRunDir('app', n)}/`));
    assert.deepEqual(
      mountTable()
        .map((m) => m.at)
        .filter(theirs),
      [],
      'no mount of theirs',
    );
    for (const m of allHierarchyMounts()) {
      const app = join(m, cgroupRoot(), 'app');
      if (existsSync(app)) assert.equal(readFileSync(join(app, 'cgroup.procs'), 'utf8'), '', `no process in ${app}`);
    }
  });
});

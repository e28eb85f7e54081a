import '../support/env.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DEFAULT_NETWORK, networkConfigPath } from '../../src/app/network.js';
import { containersDir, stateRoot } from '../../src/core/paths.js';
import { readJson, writeJsonAtomic } from '../../src/core/store.js';
import { cli, cliAsync, uniqueName, type CliResult } from '../support/env.js';

// CI size: before the fix, 120 creates 30 at a time gave one address twice in most runs; 260 also
// fill more than a /24 (the default subnet of before). The size: DRE_TEST_ALLOC_CREATES=500
// DRE_TEST_ALLOC_PARALLEL=50 (about a minute here).
const CREATES = Number(process.env.DRE_TEST_ALLOC_CREATES ?? 260);
const PARALLEL = Number(process.env.DRE_TEST_ALLOC_PARALLEL ?? 30);

/** Runs `args(i)` for i in 0..n-1 through the CLI, `parallel` at a time. */
async function pool(n: number, parallel: number, args: (i: number) => string[]): Promise<CliResult[]> {
  const results: CliResult[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await cliAsync('dre-app', args(i)).done;
      }
    }),
  );
  return results;
}

describe('the address allocator under parallel creates', () => {
  const prefix = Number(DEFAULT_NETWORK.subnet.split('/')[1]);
  let third = 0;
  before(() => {
    // A subnet of the default's size, this run's own (no container starts here, so no bridge is made).
    const { bridge } = readJson<{ bridge: string }>(networkConfigPath())!;
    const h = createHash('sha256').update(stateRoot()).digest();
    third = h[0] & (256 - 2 ** (24 - prefix));
    writeJsonAtomic(networkConfigPath(), { bridge, subnet: `10.239.${third}.0/${prefix}` });
  });

  it('has a default subnet with room for 500 containers', () => {
    assert.ok(2 ** (32 - prefix) - 3 >= 500, DEFAULT_NETWORK.subnet); // network, gateway and broadcast excepted
  });

  it(`never hands out one address twice: ${CREATES} creates, ${PARALLEL} at a time, then every one destroyed`, { timeout: 600_000 }, async () => {
    const names = Array.from({ length: CREATES }, () => uniqueName('alloc'));
    const created = await pool(CREATES, PARALLEL, (i) => ['create', names[i]]);
    for (const [i, r] of created.entries()) assert.equal(r.code, 0, `create ${names[i]}: ${r.stderr}`);

    // The addresses as LXC will use them: each container's own config, read directly.
    const byAddress = new Map<string, string[]>();
    for (const n of names) {
      const m = /^lxc\.net\.0\.ipv4\.address = (\S+)\//m.exec(readFileSync(join(containersDir('app'), n, 'config'), 'utf8'));
      assert.ok(m, `${n} has no address in its LXC config`);
      byAddress.set(m[1], [...(byAddress.get(m[1]) ?? []), n]);
    }
    const twice = [...byAddress].filter(([, holders]) => holders.length > 1);
    assert.deepEqual(twice, [], `addresses handed out more than once`);
    assert.equal(byAddress.size, CREATES);
    // Lowest first, from .2 up (the gateway holds .1), past the end of the first /24 when there are more than 253.
    const hostNumbers = [...byAddress.keys()]
      .map((a) => a.split('.').map(Number))
      .map(([, , c, d]) => (c - third) * 256 + d)
      .sort((x, y) => x - y);
    assert.deepEqual(
      hostNumbers,
      Array.from({ length: CREATES }, (_, i) => i + 2),
    );
    for (const n of names.slice(0, 3)) {
      assert.match(
        readFileSync(join(containersDir('app'), n, 'config'), 'utf8'),
        new RegExp(`^lxc\\.net\\.0\\.ipv4\\.address = 10\\.239\\.\\d+\\.\\d+/${prefix} `, 'm'),
      );
    }

    // The CLI agrees, and leases.json holds exactly these containers with these addresses.
    const listed = JSON.parse(cli('dre-app', ['list', '--json']).stdout) as { name: string; address: string }[];
    assert.equal(listed.length, CREATES);
    const leases = readJson<Record<string, { address: string }>>(join(stateRoot(), 'app', 'leases.json'))!;
    assert.deepEqual(Object.keys(leases).sort(), [...names].sort());
    for (const c of listed) assert.equal(leases[c.name].address, c.address, `lease of ${c.name}`);

    const destroyed = await pool(CREATES, PARALLEL, (i) => ['destroy', names[i]]);
    for (const [i, r] of destroyed.entries()) assert.equal(r.code, 0, `destroy ${names[i]}: ${r.stderr}`);
    for (const n of names) assert.equal(existsSync(join(containersDir('app'), n)), false, `${n} is left`);
    assert.deepEqual(readJson(join(stateRoot(), 'app', 'leases.json')), {});
  });
});

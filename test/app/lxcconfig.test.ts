// Pure: LXC's config as rendered from a container's record, checked without root or LXC.
import '../support/env.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseRootfs } from '../../src/app/base.js';
import { portHookMarkPath, upperDir, type AppRecord } from '../../src/app/layout.js';
import { renderLxcConfig } from '../../src/app/lxcconfig.js';
import { macOf, networkConfig } from '../../src/core/network.js';

const rec = (over: Partial<AppRecord> = {}): AppRecord => ({
  name: 'web',
  base: 'default',
  port: null,
  created: '2026-12-03T00:00:00Z',
  privileged: true,
  ...over,
});

/** The values of `key` in a rendered config, in order. */
const values = (config: string, key: string) =>
  config
    .split('\n')
    .filter((l) => l.startsWith(`${key} = `) || l === `${key} =`)
    .map((l) => l.slice(key.length + 3));

describe("LXC's config of an application container", () => {
  it('stands the upper layer over its Base Image, names the container and puts its cgroups under this root', () => {
    const c = renderLxcConfig(rec());
    assert.deepEqual(values(c, 'lxc.uts.name'), ['web']);
    assert.deepEqual(values(c, 'lxc.rootfs.path'), [`overlay:${baseRootfs('default')}:${upperDir('web')}`]);
    assert.equal(values(c, 'lxc.cgroup.dir.container').length, 1);
    assert.equal(values(c, 'lxc.cgroup.dir.monitor')[0], `${values(c, 'lxc.cgroup.dir.container')[0]}.monitor`);
    assert.ok(c.startsWith('# Written by D-RE'));
    assert.ok(c.endsWith('\n'));
  });

  it('gives a privileged container no user namespace', () => {
    const c = renderLxcConfig(rec());
    assert.deepEqual(values(c, 'lxc.idmap'), []);
    assert.ok(c.includes("# Privileged: no user namespace; the container's root is the host's root."));
  });

  it('wires a container with an address to the bridge with its MAC, gateway and broadcast, and removes its port forward after a stop', () => {
    const net = networkConfig();
    const address = `${net.gateway.split('.').slice(0, 3).join('.')}.9`;
    const c = renderLxcConfig(rec({ address, port: 2222 }));
    assert.deepEqual(values(c, 'lxc.net.0.type'), ['veth']);
    assert.deepEqual(values(c, 'lxc.net.0.link'), [net.bridge]);
    assert.deepEqual(values(c, 'lxc.net.0.hwaddr'), [macOf(address)]);
    assert.deepEqual(values(c, 'lxc.net.0.ipv4.address'), [`${address}/${net.prefix} ${net.broadcast}`]);
    assert.deepEqual(values(c, 'lxc.net.0.ipv4.gateway'), [net.gateway]);
    const hook = values(c, 'lxc.hook.post-stop');
    assert.equal(hook.length, 1);
    const m = /^\/bin\/sh -c 'test -e "(\S+)" && \/usr\/sbin\/nft delete element inet \S+ ssh \{ 2222 \} .*; exit 0'$/.exec(hook[0]);
    assert.ok(m, hook[0]);
    assert.equal(m[1], portHookMarkPath('web'), 'only while its start armed it: a stop by D-RE ends the forward itself');
  });

  it('gives a container without an address loopback only, and no port hook', () => {
    const c = renderLxcConfig(rec({ address: null, port: null }));
    assert.deepEqual(values(c, 'lxc.net.0.type'), ['empty']);
    assert.deepEqual(values(c, 'lxc.net.0.flags'), ['up']);
    assert.deepEqual(values(c, 'lxc.hook.post-stop'), []);
  });

  it('puts its memory and CPU limits on its group, and its snapshot layers between upper and base', () => {
    const c = renderLxcConfig(rec({ memory: 64 * 2 ** 20, cpus: 2, layers: ['l2', 'l1'] }));
    assert.ok(c.includes(`memory.max = ${64 * 2 ** 20}`) || c.includes(`memory.limit_in_bytes = ${64 * 2 ** 20}`), c);
    assert.ok(c.includes('cpu.max = 200000 100000') || c.includes('cpu.cfs_quota_us = 200000'), c);
    const lowers = values(c, 'lxc.rootfs.path')[0].slice('overlay:'.length).split(':');
    assert.deepEqual(lowers.slice(-1), [upperDir('web')]);
    assert.ok(lowers[0].endsWith('/layers/l2') && lowers[1].endsWith('/layers/l1'), lowers.join(' '));
    assert.equal(lowers[2], baseRootfs('default'));
  });
});

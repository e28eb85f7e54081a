import '../support/env.js';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { debianBuildPlan, mmdebstrapArgs } from '../../src/app/debian.js';
import { sysDebianBuildPlan } from '../../src/sys/debian.js';
import { initLines, initSystem } from '../../src/app/init.js';
import { isDreError } from '../../src/core/errors.js';

const tmp = mkdtempSync(join(process.env.DRE_TEST_TMP!, 'init-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A layer directory holding only the given links (path → target). */
function layer(name: string, links: Record<string, string>): string {
  const dir = join(tmp, name);
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    symlinkSync(target, join(dir, path));
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('the init a root boots', () => {
  const debian = layer('debian', { 'usr/sbin/init': '/lib/systemd/systemd', sbin: 'usr/sbin' });
  const busybox = layer('busybox', { 'sbin/init': '/bin/busybox' });
  const empty = layer('empty', {});

  it('is systemd when the topmost layer with an init link points at systemd, busybox init otherwise', () => {
    assert.equal(initSystem([empty, debian]), 'systemd');
    assert.equal(initSystem([busybox]), 'busybox');
    assert.equal(initSystem([empty]), 'busybox');
    // An upper layer that replaces the link decides.
    assert.equal(initSystem([layer('over', { 'usr/sbin/init': '/bin/busybox' }), debian]), 'busybox');
  });

  it('halts systemd with SIGRTMIN+3 and busybox init with SIGUSR1', () => {
    assert.ok(initLines('systemd').includes('lxc.signal.halt = SIGRTMIN+3'));
    assert.ok(initLines('busybox').includes('lxc.signal.halt = SIGUSR1'));
    for (const i of ['systemd', 'busybox'] as const) assert.ok(initLines(i).includes('lxc.init.cmd = /sbin/init'));
  });
});

describe('the Debian build plan', () => {
  it('installs systemd-sysv and openssh-server besides what is asked, from the release and its updates and security suites', () => {
    const plan = debianBuildPlan({ include: ['python3', 'systemd-sysv'], mirror: 'http://deb.debian.org/debian' });
    assert.equal(plan.release, 'bookworm');
    assert.deepEqual(plan.packages, ['systemd-sysv', 'openssh-server', 'python3']);
    assert.deepEqual(plan.sources, [
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
    assert.deepEqual(debianBuildPlan({ release: 'sid', mirror: 'http://m.example/debian' }).sources, ['deb http://m.example/debian sid main']);
  });

  it('gives a Debian VM base the cloud kernel, udev and e2fsprogs besides systemd and SSH, from the same archive and cache', () => {
    const plan = sysDebianBuildPlan({ include: ['python3', 'udev'], mirror: 'http://deb.debian.org/debian' });
    assert.deepEqual(plan.packages, ['systemd-sysv', 'udev', 'openssh-server', 'linux-image-cloud-amd64', 'e2fsprogs', 'python3']);
    assert.deepEqual(plan.sources, debianBuildPlan({ mirror: 'http://deb.debian.org/debian' }).sources);
    const refused = (fn: () => unknown) => assert.throws(fn, (e) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT');
    refused(() => sysDebianBuildPlan({ include: ['a b'] }));
    refused(() => sysDebianBuildPlan({ release: 'bookworm;x' }));
  });

  it('passes the cache to mmdebstrap through its sync-in and sync-out hooks and leaves no .deb in the root', () => {
    const args = mmdebstrapArgs(debianBuildPlan({ mirror: 'http://deb.debian.org/debian' }), '/x/rootfs', '/var/cache/dre/debs');
    assert.ok(args.includes('--variant=minbase'));
    assert.ok(args.includes('--setup-hook=sync-in /var/cache/dre/debs /var/cache/apt/archives/'));
    assert.ok(args.includes('--customize-hook=sync-out /var/cache/apt/archives /var/cache/dre/debs'));
    assert.ok(args.some((a) => a.startsWith('--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb')));
    assert.deepEqual(args.slice(-5, -3), ['bookworm', '/x/rootfs']);
  });

  it('refuses what is not a package, suite or URL, and a cache path a hook line cannot carry', () => {
    const refused = (fn: () => unknown) => assert.throws(fn, (e) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT');
    refused(() => debianBuildPlan({ include: ['a;b'] }));
    refused(() => debianBuildPlan({ include: ['-oAPT::x'] }));
    refused(() => debianBuildPlan({ release: '../x' }));
    refused(() => debianBuildPlan({ mirror: 'file:///etc' }));
    refused(() => debianBuildPlan({ include: 'python3' as unknown as string[] }));
    refused(() => mmdebstrapArgs(debianBuildPlan({}), '/x', '/cache dir'));
  });
});

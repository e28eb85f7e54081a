import { cli, uniqueName } from '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DRE_ERR } from '../../src/core/errors.js';
import { containerRunDir, runRoot } from '../../src/core/paths.js';
import { isAlive, waitFor } from '../../src/core/proc.js';
import { REGISTRY_BYTES, REGISTRY_INODES } from '../../src/app/registrydir.js';

const app = (...args: string[]) => cli('dre-app', args, { timeoutMs: 30_000 });
const ok = (...args: string[]) => {
  const r = app(...args);
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const inside = (name: string, script: string) => cli('dre-app', ['exec', name, '--', 'sh', '-c', script], { timeoutMs: 60_000 });
const listed = (name: string) => (JSON.parse(ok('registered', name, '--json')) as { vpid: number }[]).map((p) => p.vpid);

interface Mount {
  device: string;
  point: string;
  fstype: string;
  source: string;
  superOptions: string;
}
/** The mounts of a mountinfo text (proc(5)), mount points unescaped. */
function mounts(text: string): Mount[] {
  const unescape = (f: string) => f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(' - ');
      const f = left.split(' ');
      const [fstype, source, superOptions] = right.split(' ');
      return { device: f[2], point: unescape(f[4]), fstype, source, superOptions };
    });
}
/** The host's mounts at the registry directory of `name`, from the host's own mountinfo. */
const hostMountsAt = (name: string) =>
  mounts(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.point === join(containerRunDir('app', name), 'daware'));
/** Bytes in use on the file system that holds the host's run dir. */
const usedBytes = () => {
  const s = statfsSync(runRoot());
  return (s.blocks - s.bfree) * s.bsize;
};
const MiB = 1 << 20;

describe('the D-Aware registry as untrusted input', () => {
  const name = uniqueName('regatk');
  const registry = () => join(containerRunDir('app', name), 'daware');
  const victim = join(process.env.DRE_TEST_TMP!, 'victim');
  const VICTIM_TEXT = 'a host file the container must never change\n';
  let vpid: number;

  const freshVictim = () => writeFileSync(victim, VICTIM_TEXT, { mode: 0o644 });
  const victimUnchanged = () => {
    assert.ok(lstatSync(victim).isFile());
    assert.equal(readFileSync(victim, 'utf8'), VICTIM_TEXT);
  };

  before(() => {
    ok('create', name);
    ok('start', name);
    const r = inside(name, 'sleep 600 </dev/null >/dev/null 2>&1 & echo $!');
    assert.equal(r.code, 0, r.stderr);
    vpid = Number(r.stdout.trim());
    assert.ok(vpid > 1);
  });

  after(() => {
    app('stop', name, '--timeout', '0');
    app('destroy', name);
  });

  it('registers from the host without writing through a link or a FIFO planted at the temporary name it once used', () => {
    freshVictim();
    const oldTmp = `/run/daware/.${vpid}.${15}.host-tmp`;
    assert.equal(inside(name, `ln -s ${victim} ${oldTmp}`).code, 0);
    ok('register', name, String(vpid), '--vpid');
    victimUnchanged();
    assert.ok(lstatSync(join(registry(), `${vpid}.15`)).isFile(), 'the entry is a regular file');
    assert.deepEqual(listed(name), [vpid]);
    ok('unregister', name, String(vpid), '--vpid');

    assert.equal(inside(name, `rm -f ${oldTmp}; mkfifo ${oldTmp}`).code, 0);
    ok('register', name, String(vpid), '--vpid'); // opening a FIFO for writing would block forever
    assert.ok(lstatSync(join(registry(), `${vpid}.15`)).isFile());
    assert.deepEqual(listed(name), [vpid]);
    ok('unregister', name, String(vpid), '--vpid');
    assert.equal(inside(name, `rm -f ${oldTmp}`).code, 0);
  });

  it('replaces a link at the entry name without following it, and refuses a directory there with DRE_ERR_DEVICE_BUSY', () => {
    freshVictim();
    assert.equal(inside(name, `rm -rf /run/daware/${vpid}.15 && ln -s ${victim} /run/daware/${vpid}.15`).code, 0);
    ok('register', name, String(vpid), '--vpid');
    victimUnchanged();
    assert.ok(lstatSync(join(registry(), `${vpid}.15`)).isFile());
    ok('unregister', name, String(vpid), '--vpid');

    assert.equal(inside(name, `mkdir /run/daware/${vpid}.15 && ln -s ${victim} /run/daware/${vpid}.15/x`).code, 0);
    const r = app('register', name, String(vpid), '--vpid');
    assert.equal(r.code, -DRE_ERR.DRE_ERR_DEVICE_BUSY, r.stderr);
    assert.match(r.stderr, /DRE_ERR_DEVICE_BUSY: register vpid in .* registry .*EISDIR/);
    victimUnchanged();
    const left = inside(name, 'ls -A /run/daware');
    assert.equal(left.stdout.trim(), `${vpid}.15`, 'no temporary file left behind');
    assert.equal(inside(name, `rm -r /run/daware/${vpid}.15`).code, 0);
    ok('register', name, String(vpid), '--vpid');
    assert.deepEqual(listed(name), [vpid]);
  });

  it('caps what a container writes into its registry: 64 MiB end with ENOSPC at the cap, and the host file system does not grow', () => {
    const usedBefore = usedBytes();
    const r = inside(name, 'dd if=/dev/zero of=/run/daware/fill bs=1048576 count=64; echo "size=$(wc -c < /run/daware/fill)"');
    const usedAfter = usedBytes();
    assert.match(r.stderr, /No space left on device/, r.stderr);
    const size = Number(/size=\s*(\d+)/.exec(r.stdout)?.[1]);
    assert.ok(size > 0 && size <= REGISTRY_BYTES, `dd wrote ${size} bytes, the cap is ${REGISTRY_BYTES}`);
    const onHost = statSync(join(registry(), 'fill'));
    assert.ok(onHost.blocks * 512 <= REGISTRY_BYTES, `the host sees ${onHost.blocks * 512} bytes allocated`);
    // Other processes write to this file system too: allow them some slack, far below the 64 MiB the container wrote.
    assert.ok(usedAfter - usedBefore < REGISTRY_BYTES + 16 * MiB, `the host run dir's file system grew by ${usedAfter - usedBefore} bytes`);
    // A full registry blocks only the container itself, with a precise error.
    const full = app('register', name, String(vpid), '--vpid');
    assert.equal(full.code, -DRE_ERR.DRE_ERR_DEVICE_BUSY, full.stderr);
    assert.equal(inside(name, 'rm /run/daware/fill').code, 0);

    // Files are capped in number as well (a shell built-in creates them: no fork per file; not `:`, whose failed redirection ends sh).
    const files = inside(name, 'i=0; while [ $i -lt 5000 ] && true 2>/dev/null > /run/daware/f$i; do i=$((i+1)); done; echo $i; rm -f /run/daware/f*');
    assert.equal(files.code, 0, files.stderr);
    assert.ok(Number(files.stdout.trim()) < REGISTRY_INODES, `the container made ${files.stdout.trim()} files`);
    ok('register', name, String(vpid), '--vpid');
    assert.deepEqual(listed(name), [vpid]);
  });

  it('shows the container its registry as a tmpfs of its own, with the caps, apart from /run', () => {
    const r = inside(name, 'cat /proc/self/mountinfo');
    assert.equal(r.code, 0, r.stderr);
    const seen = mounts(r.stdout);
    const reg = seen.filter((m) => m.point === '/run/daware');
    assert.equal(reg.length, 1, r.stdout);
    assert.equal(reg[0].fstype, 'tmpfs');
    assert.match(reg[0].superOptions, new RegExp(`(^|,)size=${REGISTRY_BYTES / 1024}k(,|$)`));
    assert.match(reg[0].superOptions, new RegExp(`(^|,)nr_inodes=${REGISTRY_INODES}(,|$)`));
    const run = seen.filter((m) => m.point === '/run').at(-1)!;
    assert.notEqual(reg[0].device, run.device, 'not the /run tmpfs');
    // The host holds the same file system at the registry directory.
    const host = hostMountsAt(name);
    assert.equal(host.length, 1);
    assert.equal(host[0].device, reg[0].device);
  });

  it('unmounts the registry at stop, and heals mounts left by a died container or a killed start before the next start', async () => {
    ok('stop', name, '--timeout', '0');
    assert.deepEqual(hostMountsAt(name), []);

    // A container whose init died: nobody ran stop, so its registry is still mounted.
    ok('start', name);
    const init = Number(ok('pid', name).trim());
    process.kill(init, 'SIGKILL');
    assert.ok(await waitFor(() => (isAlive(init) ? undefined : true), 10_000));
    assert.ok(await waitFor(() => (app('pid', name).code !== 0 ? true : undefined), 10_000, 100));
    assert.equal(hostMountsAt(name).length, 1);
    // A start killed after mounting left another one on top, with an entry in it.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'stale', registry()]);
    writeFileSync(join(registry(), `${vpid}.15`), '1\n');
    assert.equal(hostMountsAt(name).length, 2);

    ok('start', name);
    const now = hostMountsAt(name);
    assert.equal(now.length, 1);
    assert.equal(now[0].source, 'dre-daware');
    assert.deepEqual(listed(name), []);
    assert.equal(inside(name, 'ls -A /run/daware').stdout, '');
  });

  it('unmounts the registry at destroy', async () => {
    app('stop', name, '--timeout', '0'); // in whatever state the test before left it
    ok('start', name);
    assert.equal(hostMountsAt(name).length, 1);
    process.kill(Number(ok('pid', name).trim()), 'SIGKILL'); // died: stop never ran
    assert.ok(await waitFor(() => (app('pid', name).code !== 0 ? true : undefined), 10_000, 100));
    ok('destroy', name);
    assert.deepEqual(hostMountsAt(name), []);
  });
});

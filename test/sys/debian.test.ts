/**
 * Debian VM Base Images on real QEMU (software emulation): the base built from the real archive
 * through `dre-sys base build debian` (the .debs cached with the application side's), refused and
 * killed builds leaving nothing, and one Debian VM through the whole file: systemd as PID 1, an
 * apt-installed service (python3's http.server, a systemd unit) reached from the host and from an
 * application container on the VM's address, SSH through --port, exec with stdin, push and pull,
 * a disk larger than the base's grown by the guest, a checkpoint brought back, a graceful stop run by
 * systemd, snapshot, rollback and commit. A TCG boot of Debian takes half a minute or more on a busy
 * host: the file boots twice (the first start, and the start after the rollback).
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app, sys } from '../../src/index.js';
import { debCacheDir } from '../../src/core/debian.js';
import { STATUS } from '../../src/core/driver.js';
import { baseDir, basesDir } from '../../src/core/paths.js';
import { waitFor } from '../../src/core/proc.js';
import { baseDiskPath } from '../../src/sys/layout.js';
import { cli, freePort, uniqueName } from '../support/env.js';
import { killedAndFailedBuildsLeaveNothing } from '../support/builds.js';
import { sshArgs } from '../support/ssh.js';

const tmp = process.env.DRE_TEST_TMP!;
const keyFile = join(tmp, 'id_debian_vm');
const BASE = 'debian';
const vm = uniqueName('debvm');
const web = uniqueName('debweb');
const child = uniqueName('debchild');
const committed = uniqueName('debvmbase');
const seconds: Record<string, number> = {};

/** Runs `fn`, keeping how long it took under `what` (reported at the end: TCG boots are the cost of this file). */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    seconds[what] = (Date.now() - t0) / 1000;
  }
}

/** A GET to the VM's address from the host; undefined while nothing answers. */
async function get(address: string, port: number, path: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://${address}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

/** systemd's word for the boot once it is over (start returns when the agent, ordered after multi-user.target, answers). */
async function systemState(name: string): Promise<string> {
  const s = await waitFor(
    async () => {
      const r = await sys.execCapture(name, ['systemctl', 'is-system-running'], 30_000);
      const w = r.stdout.toString().trim();
      return ['running', 'degraded'].includes(w) ? w : undefined;
    },
    60_000,
    500,
  );
  return s ?? 'not booted';
}

// The service: python3 from the base (apt-installed by the build's --include), under systemd; its
// ExecStop leaves a mark, so a stop that ran systemd's shutdown shows in the guest's files.
const WEB_UNIT = `[Unit]
Description=test web server
After=network.target
[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv
ExecStop=/bin/sh -c 'date > /root/stopped-by-systemd; sync'
[Install]
WantedBy=multi-user.target
`;

before(async () => {
  requireQemu();
  const k = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dre-test', '-f', keyFile], { encoding: 'utf8' });
  assert.equal(k.status, 0, k.stderr);
  // One build for the file, through the CLI as a user runs it: the first run on a machine downloads, later ones reuse the cache.
  const r = await timed('base build', async () => cli('dre-sys', ['base', 'build', 'debian', '--include', 'python3', BASE], { timeoutMs: 1_500_000 }));
  assert.equal(r.code, 0, `base build: ${r.stderr}`);
});

after(async () => {
  for (const n of [child, vm]) await removeGuest(n);
  await app.stop(web, { timeoutMs: 0 }).catch(() => {});
  await app.destroy(web).catch(() => {});
  for (const b of [committed, BASE]) await sys.removeBase(b).catch(() => {});
  console.log(`# Debian VM test, seconds: ${JSON.stringify(seconds)}`);
});

describe('Debian VM Base Images', { timeout: 1_800_000 }, () => {
  it("are ordinary bases: the guest's own cloud kernel, D-RE's initramfs, a qcow2 root disk; the .debs cached with the application side's", async () => {
    assert.ok((await sys.listBases()).includes(BASE));
    const info = JSON.parse(readFileSync(join(baseDir('sys', BASE), 'base.json'), 'utf8')) as { kernel: string; packages: string[]; release: string };
    assert.equal(info.release, 'bookworm');
    assert.ok(info.packages.includes('linux-image-cloud-amd64') && info.packages.includes('python3'), info.packages.join(' '));
    assert.match(info.kernel, /-cloud-amd64$/);
    const img = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', baseDiskPath(BASE)], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    assert.equal(img.format, 'qcow2');
    assert.equal(img['backing-filename'], undefined, 'a stand-alone disk');
    const cached = readdirSync(debCacheDir());
    assert.ok(
      cached.some((f) => f.startsWith(`linux-image-${info.kernel}_`)),
      'the kernel package is in the shared .deb cache',
    );
    assert.ok(
      cached.some((f) => f.startsWith('python3') && f.endsWith('.deb')),
      'so are the included packages',
    );
    assert.deepEqual(
      readdirSync(basesDir('sys')).filter((e) => e.startsWith('.')),
      [],
      'no staging entry left',
    );
  });

  it('refuses a second build of the same name, the built-in base name and bad package names, changing nothing', () => {
    assert.equal(cli('dre-sys', ['base', 'build', 'debian', BASE]).code, 122);
    assert.equal(cli('dre-sys', ['base', 'build', 'debian', 'default']).code, 122);
    const bad = cli('dre-sys', ['base', 'build', 'debian', '--include', 'python3;rm -rf /', 'x']);
    assert.equal(bad.code, 101, bad.stderr);
    assert.equal(cli('dre-sys', ['base', 'build', 'nosuchflavour']).code, 101);
    assert.equal(existsSync(baseDir('sys', 'x')), false);
  });

  it('leaves no base, process or mount behind when the build is killed, nor when it fails', async () => {
    await killedAndFailedBuildsLeaveNothing('sys', 'killed');
    assert.equal((await sys.listBases()).includes('killed'), false);
  });

  it('boots systemd in a VM whose apt-installed service the host and an application container reach on its address, with SSH on its port', async () => {
    const port = await freePort();
    await sys.create(vm, { base: BASE, port, cpus: 2, diskSize: 2048 });
    await app.create(web, {});
    await timed('first boot (start to ready)', () => sys.start(vm));
    assert.equal(await systemState(vm), 'running', await sh(vm, 'systemctl --failed --no-pager || true'));
    assert.equal(await sh(vm, 'id -u; cat /proc/1/comm; . /etc/os-release; echo $ID'), '0\nsystemd\ndebian');
    const { address } = await sys.info(vm);
    assert.ok(address);
    assert.match(await sh(vm, 'cat /proc/net/fib_trie'), new RegExp(address!.replace(/\./g, '\\.')), "eth0 holds the VM's address");
    const size = Number(await sh(vm, 'df -m --output=size / | tail -1'));
    assert.ok(size > 1800, `the root file system grew to the 2 GiB disk (--disk-size): ${size} MiB`);
    // The unit goes in through push, starts under systemd, and answers on the VM's address.
    writeFileSync(join(tmp, 'web.service'), WEB_UNIT);
    await sys.push(vm, join(tmp, 'web.service'), '/etc/systemd/system/web.service');
    await sh(vm, 'mkdir -p /srv && echo debian-vm-web > /srv/index.html && systemctl enable --now web.service');
    assert.equal(await waitFor(() => get(address!, 8080, '/index.html'), 60_000, 300), 'debian-vm-web\n', 'the host reaches the service');
    await app.start(web);
    const fromApp = await app.execCapture(web, [
      'sh',
      '-c',
      `for i in $(seq 100); do wget -q -O- http://${address}:8080/index.html && exit 0; sleep 0.3; done; exit 1`,
    ]);
    assert.equal(fromApp.status, 0, fromApp.stderr.toString());
    assert.equal(fromApp.stdout.toString(), 'debian-vm-web\n', 'an application container on the bridge reaches it');
    await app.stop(web, { timeoutMs: 0 });
    // OpenSSH from the base, with the VM's own host key, through the host port.
    writeFileSync(join(tmp, 'authorized_keys'), readFileSync(`${keyFile}.pub`));
    await sh(vm, 'mkdir -p -m 700 /root/.ssh');
    await sys.push(vm, join(tmp, 'authorized_keys'), '/root/.ssh/authorized_keys');
    const ssh = await waitFor(
      () => {
        const s = spawnSync('ssh', sshArgs(keyFile, port, ['ConnectTimeout=10'], 'root@127.0.0.1', 'cat /etc/debian_version; hostname'), {
          encoding: 'utf8',
          timeout: 30_000,
        });
        return s.status === 0 ? s.stdout : undefined;
      },
      60_000,
      500,
    );
    assert.match(ssh ?? '', /^\d+.*\ndre-guest\n$/);
    assert.ok((await sh(vm, 'ls /etc/ssh')).includes('ssh_host_ed25519_key'), 'the VM made its own host key');
  });

  it('runs commands with stdin through the agent, and pushes and pulls binary files intact', async () => {
    const blob = randomBytes(3 << 20);
    const sum = createHash('sha256').update(blob).digest('hex');
    const r = await sys.execCapture(vm, ['sh', '-c', 'cat > /root/blob; sha256sum /root/blob | cut -d" " -f1; echo err >&2; exit 7'], 120_000, blob);
    assert.deepEqual([r.status, r.stdout.toString().trim(), r.stderr.toString()], [7, sum, 'err\n']);
    await sys.pull(vm, '/root/blob', join(tmp, 'blob.back'));
    assert.equal(
      createHash('sha256')
        .update(readFileSync(join(tmp, 'blob.back')))
        .digest('hex'),
      sum,
    );
  });

  it('checkpoints the running VM, stops it gracefully through systemd, snapshots, comes back from the checkpoint on its address, and rolls back', async () => {
    const { address } = await sys.info(vm);
    await sh(vm, 'echo v1 > /root/state; sync');
    await timed('checkpoint', () => sys.checkpoint(vm, 'c1'));
    const t0 = Date.now();
    await timed('graceful stop', () => sys.stop(vm, { timeoutMs: 90_000 }));
    assert.equal(await sys.status(vm), STATUS.STOP);
    assert.ok(Date.now() - t0 < 60_000, `the graceful stop took ${Date.now() - t0} ms, close to its timeout: was it killed?`);
    await sys.saveSnapshot(vm, 'v1');
    // Back at the checkpoint: the guest runs on where it was, its service answering on the same address (same MAC, same tap).
    await timed('restart from checkpoint', () => sys.restart(vm, 'c1'));
    assert.equal(await waitFor(() => get(address!, 8080, '/index.html'), 60_000, 300), 'debian-vm-web\n');
    assert.equal(await sh(vm, 'test -e /root/stopped-by-systemd && echo marked || echo not yet'), 'not yet', "the checkpoint's disk is from before the stop");
    await sh(vm, 'echo v2 > /root/state; rm -f /usr/bin/python3*; sync');
    await sys.stop(vm, { timeoutMs: 90_000 });
    await sys.loadSnapshot(vm, 'v1');
    await timed('second boot (start to ready)', () => sys.start(vm));
    assert.equal(await systemState(vm), 'running');
    assert.equal(await sh(vm, 'cat /root/state; python3 -c "print(6*7)"'), 'v1\n42');
    assert.match(await sh(vm, 'cat /root/stopped-by-systemd'), /\d/, "systemd's shutdown ran the service's ExecStop before the snapshot");
    assert.equal(await waitFor(() => get(address!, 8080, '/index.html'), 60_000, 300), 'debian-vm-web\n', 'the enabled unit started at boot');
    await sys.stop(vm, { timeoutMs: 90_000 });
  });

  it('commits a snapshot as a stand-alone Debian base holding the snapshot, with the guest kernel', async () => {
    await timed('commit', () => sys.commitSnapshot(vm, 'v1', committed));
    assert.ok((await sys.listBases()).includes(committed));
    for (const f of ['vmlinuz', 'initrd.img'])
      assert.deepEqual(readFileSync(join(baseDir('sys', committed), f)), readFileSync(join(baseDir('sys', BASE), f)), `the Debian guest's ${f}`);
    const img = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', baseDiskPath(committed)], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    assert.equal(img['backing-filename'], undefined, 'flattened');
    // The snapshot's files, read off the committed disk without booting it (e2fsprogs' debugfs on a raw copy).
    const raw = join(tmp, 'committed.raw');
    assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', baseDiskPath(committed), raw]).status, 0);
    const cat = (path: string) => spawnSync('debugfs', ['-R', `cat ${path}`, raw], { encoding: 'utf8' }).stdout;
    assert.deepEqual([cat('/root/state'), cat('/srv/index.html')], ['v1\n', 'debian-vm-web\n']);
    assert.match(cat('/root/stopped-by-systemd'), /\d/);
    rmSync(raw, { force: true });
    await sys.create(child, { base: committed, network: false });
    await assert.rejects(sys.removeBase(committed), /used by container/);
    await sys.destroy(child);
    await sys.removeBase(committed);
    assert.equal(existsSync(baseDir('sys', committed)), false);
  });
});

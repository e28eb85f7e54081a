import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { debCacheDir } from '../../src/app/debian.js';
import { upperDir } from '../../src/app/layout.js';
import { rootIdRange } from '../../src/app/userns.js';
import { STATUS } from '../../src/core/driver.js';
import { baseDir, basesDir } from '../../src/core/paths.js';
import { waitFor } from '../../src/core/proc.js';
import { cli, freePort, uniqueName } from '../support/env.js';
import { killedAndFailedBuildsLeaveNothing } from '../support/builds.js';
import { removeMade } from '../support/made.js';
import { sshArgs } from '../support/ssh.js';

const tmp = process.env.DRE_TEST_TMP!;
const keyFile = join(tmp, 'id_debian');
const BASE = 'debian';
const made: string[] = [];
const bases: string[] = [];

function sh(name: string, script: string): string {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `exec in ${name} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Waits until systemd inside says the boot is over (running, or degraded with the failed units named). */
async function booted(name: string): Promise<string> {
  const state = await waitFor(
    () => {
      const r = cli('dre-app', ['exec', name, '--', 'systemctl', 'is-system-running']);
      const s = r.stdout.trim();
      return ['running', 'degraded'].includes(s) ? s : undefined;
    },
    60_000,
    200,
  );
  return state ?? 'not booted';
}

/** A GET to the container's address, from the host. */
async function get(address: string, port: number, path: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://${address}:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

// A real service, from the base's own python3 (installed by apt at build time), under systemd; its
// ExecStop leaves a mark, so a stop that ran systemd's shutdown shows in the container's files.
const WEB_UNIT = `[Unit]
Description=test web server
[Service]
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv
ExecStop=/bin/sh -c 'date > /root/stopped-by-systemd'
[Install]
WantedBy=multi-user.target
`;

before(async () => {
  const k = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dre-test', '-f', keyFile], { encoding: 'utf8' });
  assert.equal(k.status, 0, k.stderr);
  // One build for the file, through the CLI as a user runs it: the first run on a machine downloads, later ones reuse the cache.
  const r = cli('dre-app', ['base', 'build', 'debian', '--include', 'python3', BASE], { timeoutMs: 1_200_000 });
  assert.equal(r.code, 0, `base build: ${r.stderr}`);
  bases.push(BASE);
});

after(() => removeMade(made, bases));

describe('Debian Base Images for application containers', () => {
  it("are ordinary bases owned by the root's id range, with systemd and no host keys of their own", async () => {
    assert.ok((await app.listBases()).includes(BASE));
    const rootfs = join(baseDir('app', BASE), 'rootfs');
    assert.equal(spawnSync('stat', ['-c', '%u', rootfs], { encoding: 'utf8' }).stdout.trim(), String(rootIdRange().uid));
    assert.match(readFileSync(join(rootfs, 'etc/os-release'), 'utf8'), /Debian/);
    assert.ok(existsSync(join(rootfs, 'usr/bin/python3')), 'python3 from --include');
    assert.deepEqual(
      readdirSync(join(rootfs, 'etc/ssh')).filter((f) => f.startsWith('ssh_host_')),
      [],
    );
    assert.deepEqual(
      readdirSync(join(rootfs, 'var/cache/apt/archives')).filter((f) => f.endsWith('.deb')),
      [],
      'no .deb left in the base',
    );
    assert.ok(
      readdirSync(debCacheDir()).some((f) => f.startsWith('python3') && f.endsWith('.deb')),
      'the packages are cached',
    );
    assert.deepEqual(
      readdirSync(basesDir('app')).filter((e) => e.startsWith('.')),
      [],
      'no staging entry left',
    );
  });

  it('refuses a second build of the same name and bad package names, changing nothing', () => {
    assert.equal(cli('dre-app', ['base', 'build', 'debian', BASE]).code, 122);
    const bad = cli('dre-app', ['base', 'build', 'debian', '--include', 'python3;rm -rf /', 'x']);
    assert.equal(bad.code, 101, bad.stderr);
    assert.equal(existsSync(baseDir('app', 'x')), false);
  });

  it('leave no base, process or mount behind when the build is killed, and the next build clears its staging', async () => {
    await killedAndFailedBuildsLeaveNothing('app', 'killed');
  });

  it('boot systemd in an unprivileged container that serves an apt-installed service to the host and SSH on its port, and stop gracefully', async () => {
    const name = uniqueName('deb');
    const port = await freePort();
    await app.create(name, { base: BASE, port, sshKey: readFileSync(`${keyFile}.pub`, 'utf8') });
    made.push(name);
    writeFileSync(join(tmp, 'web.service'), WEB_UNIT);
    await app.start(name);
    assert.equal(await booted(name), 'running', sh(name, 'systemctl --failed --no-pager || true'));
    assert.equal(sh(name, 'id -u; cat /proc/1/comm').trim(), '0\nsystemd');
    // Files go in through push, the service starts under systemd, the host reaches it on the container's address.
    await app.push(name, join(tmp, 'web.service'), '/etc/systemd/system/web.service');
    sh(name, 'mkdir -p /srv && echo debian-web > /srv/index.html && systemctl enable --now web.service');
    const { address } = app.info(name);
    assert.ok(address);
    assert.equal(await waitFor(() => get(address!, 8080, '/index.html'), 20_000, 200), 'debian-web\n');
    // OpenSSH from the base, with the container's own host key, through the host port.
    const ssh = await waitFor(
      () => {
        const r = spawnSync('ssh', sshArgs(keyFile, port, ['ConnectTimeout=3'], 'root@127.0.0.1', 'cat /etc/debian_version'), {
          encoding: 'utf8',
          timeout: 15_000,
        });
        return r.status === 0 ? r.stdout : undefined;
      },
      30_000,
      300,
    );
    assert.match(ssh ?? '', /^\d+/);
    assert.ok(existsSync(join(upperDir(name), 'etc/ssh/ssh_host_ed25519_key')), "host key made in the container's own layer");
    const t0 = Date.now();
    await app.stop(name, { timeoutMs: 30_000 });
    const took = Date.now() - t0;
    assert.equal(await app.status(name), STATUS.STOP);
    assert.ok(took < 25_000, `the graceful stop took ${took} ms, close to its 30 s timeout: was it killed?`);
    assert.ok(existsSync(join(upperDir(name), 'root/stopped-by-systemd')), "systemd's shutdown ran the service's ExecStop");
  });

  it('snapshot, roll back and commit a Debian container; a container on the committed base boots systemd', async () => {
    const name = uniqueName('debsnap');
    await app.create(name, { base: BASE });
    made.push(name);
    await app.start(name);
    assert.equal(await booted(name), 'running');
    sh(name, 'echo v1 > /root/state');
    await app.stop(name);
    await app.saveSnapshot(name, 'v1');
    await app.start(name);
    sh(name, 'echo v2 > /root/state; rm -f /usr/bin/python3*');
    await app.stop(name);
    await app.loadSnapshot(name, 'v1');
    await app.start(name);
    assert.equal(sh(name, 'cat /root/state; python3 -c "print(6*7)"'), 'v1\n42\n');
    await app.stop(name);
    const committed = uniqueName('debbase');
    await app.commitSnapshot(name, 'v1', committed);
    bases.push(committed);
    const child = uniqueName('debchild');
    await app.create(child, { base: committed });
    made.push(child);
    await app.start(child);
    assert.equal(await booted(child), 'running');
    assert.equal(sh(child, 'cat /root/state; cat /proc/1/comm'), 'v1\nsystemd\n');
    await app.stop(child);
  });

  it('export with its base and import into a second root, where it boots systemd with its files', async () => {
    const name = uniqueName('debexp');
    await app.create(name, { base: BASE, network: false });
    made.push(name);
    await app.start(name);
    assert.equal(await booted(name), 'running');
    sh(name, 'echo moved > /root/state');
    await app.stop(name);
    const file = join(tmp, 'debian-export.tar.zst');
    assert.equal(cli('dre-app', ['export', name, file]).code, 0);
    const hostB = join(tmp, 'hostD');
    mkdirSync(hostB, { mode: 0o711 });
    const other = { DRE_ROOT: join(hostB, 'root'), DRE_RUNDIR: join(hostB, 'run') };
    const r = cli('dre-app', ['import', file], { env: other });
    assert.equal(r.code, 0, r.stderr);
    try {
      assert.equal(cli('dre-app', ['start', name], { env: other }).code, 0);
      const state = await waitFor(
        () => {
          const s = cli('dre-app', ['exec', name, '--', 'systemctl', 'is-system-running'], { env: other }).stdout.trim();
          return s === 'running' ? s : undefined;
        },
        60_000,
        200,
      );
      assert.equal(state, 'running');
      assert.equal(cli('dre-app', ['exec', name, '--', 'cat', '/root/state'], { env: other }).stdout, 'moved\n');
    } finally {
      cli('dre-app', ['stop', name, '--timeout', '0'], { env: other });
      cli('dre-app', ['destroy', name], { env: other });
      cli('dre-app', ['rm-base', BASE], { env: other });
    }
  });
});

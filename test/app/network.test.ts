import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { portHookMarkPath, upperDir } from '../../src/app/layout.js';
import { networkConfig } from '../../src/app/network.js';
import { portTable } from '../../src/app/portforward.js';
import { STATUS } from '../../src/core/driver.js';
import { DRE_ERR, isDreError } from '../../src/core/errors.js';
import { containerDir } from '../../src/core/paths.js';
import { isAlive, sleep, waitFor } from '../../src/core/proc.js';
import { cli, cliAsync, freePort, uniqueName } from '../support/env.js';
import { sweepNetwork, TEST_BRIDGE_PREFIX } from '../support/sweep.js';
import { sshArgs } from '../support/ssh.js';

const tmp = process.env.DRE_TEST_TMP!;
const keyFile = join(tmp, 'id_test');
const pubKey = () => readFileSync(`${keyFile}.pub`, 'utf8');

/** The host ports some D-RE root forwards (any root's table), asked of the `nft` tool. */
function forwardedPorts(): Map<number, string> {
  const out = JSON.parse(spawnSync('nft', ['-j', 'list', 'ruleset'], { encoding: 'utf8' }).stdout) as {
    nftables: { map?: { table: string; name: string; elem?: unknown[][] } }[];
  };
  const ports = new Map<number, string>();
  for (const { map } of out.nftables) {
    if (!map || !map.table.startsWith('dre_') || map.name !== 'ssh') continue;
    for (const [key] of map.elem ?? []) {
      const k = key as number | { elem: { val: number; comment?: string } };
      if (typeof k === 'number') ports.set(k, map.table);
      else ports.set(k.elem.val, `${map.table} ${k.elem.comment}`);
    }
  }
  return ports;
}

/** True when the kernel forwards host port `port` for some D-RE root. */
const forwarded = (port: number) => forwardedPorts().has(port);

/** Whether something answers (sends its first bytes, SSH's banner) on 127.0.0.1:port within `ms`. */
function answers(port: number, ms = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once('data', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Runs `command` over SSH through 127.0.0.1:port with the test key, retrying while the server boots. */
async function ssh(port: number, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = sshArgs(keyFile, port, ['LogLevel=ERROR', 'ConnectTimeout=5'], 'root@127.0.0.1', command);
  let r = { code: -1, stdout: '', stderr: '' };
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(200)) {
    const p = spawnSync('ssh', args, { encoding: 'utf8', timeout: 30_000 });
    r = { code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr };
    if (r.code !== 255) break; // 255: ssh itself failed (nothing answered yet)
  }
  return r;
}

/** The container's own view of its network, read on the host through /proc/INIT/net. */
function procNet(pid: number, file: string): string {
  return readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
}

/** The default gateway in a /proc/PID/net/route table, as a dotted address. */
function defaultGateway(routeTable: string): string | undefined {
  const row = routeTable
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === '00000000');
  if (!row) return undefined;
  const n = parseInt(row[2], 16);
  return [0, 8, 16, 24].map((s) => (n >>> s) & 255).join('.');
}

/** Asserts that `hostname` over SSH through 127.0.0.1:port names the container. */
async function assertSshReaches(port: number, name: string): Promise<void> {
  const r = await ssh(port, 'hostname');
  assert.equal(r.stdout.trim(), name, `ssh exited ${r.code}: ${r.stderr}`);
}

function leasedAddress(name: string): string | null {
  return app.info(name).address;
}

async function expectCode(p: Promise<unknown>, code: keyof typeof DRE_ERR, text?: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isDreError(e), String(e));
    assert.equal(e.errName, code, e.message);
    if (text) assert.ok(e.message.includes(text), e.message);
    return true;
  });
}

describe('networking and SSH of application containers', () => {
  const web = uniqueName('net-web');
  const peer = uniqueName('net-peer');
  const lone = uniqueName('net-lone');
  const later = uniqueName('net-later');
  const all = [web, peer, lone, later];
  let webPort = 0;
  let webAddress: string | null = null;

  before(async () => {
    const k = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dre-test', '-f', keyFile], { encoding: 'utf8' });
    assert.equal(k.status, 0, k.stderr);
    webPort = await freePort();
    await app.create(web, { port: webPort, sshKey: pubKey() });
    await app.create(peer, { sshKey: pubKey() });
    await app.create(lone, { network: false });
    webAddress = leasedAddress(web);
  });
  after(async () => {
    for (const n of all) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(n).catch(() => {});
    }
    // Even when a destroy failed: no forward and no test bridge outlive this file.
    if ((await app.list()).length === 0) sweepNetwork(tmp);
  });

  it("uses the run's own bridge and subnet, never the default one", () => {
    const net = networkConfig();
    assert.ok(net.bridge.startsWith(TEST_BRIDGE_PREFIX), net.bridge);
    assert.notEqual(net.subnet, '10.47.0.0/24');
    assert.ok(webAddress && webAddress.startsWith(net.subnet.split('.').slice(0, 3).join('.')), `${webAddress} in ${net.subnet}`);
  });

  it('answers ssh on 127.0.0.1:PORT with the given key and runs the command inside the container', async () => {
    assert.equal(forwarded(webPort), false, 'nothing is forwarded before start');
    await app.start(web);
    assert.equal(forwardedPorts().get(webPort), `${portTable()} ${web}`, "the port is forwarded in this root's table once the container runs");
    const r = await ssh(webPort, 'hostname; id -u; cat /proc/1/comm');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [web, '0', 'init']);
  });

  it('gives each container its own network namespace, its static address and a default route through the bridge', async () => {
    await app.start(peer);
    const net = networkConfig();
    for (const n of [web, peer]) {
      const init = await app.pid(n);
      assert.notEqual(readlinkSync(`/proc/${init}/ns/net`), readlinkSync('/proc/self/ns/net'));
      assert.equal(defaultGateway(procNet(init, 'route')), net.gateway, `${n} routes through the bridge`);
      assert.ok(procNet(init, 'fib_trie').includes(`|-- ${leasedAddress(n)}\n`), `${n} holds ${leasedAddress(n)}`);
    }
    assert.notEqual(leasedAddress(web), leasedAddress(peer));
    // The host ends of both veth pairs hang on the bridge.
    const ports = JSON.parse(spawnSync('ip', ['-j', 'link', 'show', 'master', net.bridge], { encoding: 'utf8' }).stdout) as { ifname: string }[];
    assert.equal(ports.length, 2, JSON.stringify(ports));
  });

  it('lets two containers talk to each other over the bridge', async () => {
    // The peer may still be booting: ask its SSH server for its banner until it answers.
    const banner = `for i in $(seq 50); do b=$(nc -w 2 ${leasedAddress(peer)} 22 </dev/null | head -c 8); [ -n "$b" ] && break; sleep 0.2; done; echo -n "$b"`;
    const r = await ssh(webPort, `ping -c 1 -W 5 ${leasedAddress(peer)} >/dev/null && ${banner}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'SSH-2.0-', "the peer's SSH server answered over the bridge");
  });

  it('makes host keys per container and puts the given key into authorized_keys', () => {
    const hostKey = (n: string) => readFileSync(join(upperDir(n), 'etc/dropbear/dropbear_ed25519_host_key'));
    assert.notDeepEqual(hostKey(web), hostKey(peer));
    assert.equal(readFileSync(join(upperDir(web), 'root/.ssh/authorized_keys'), 'utf8').trim(), pubKey().trim());
  });

  it('gives a container created with networking off loopback only', async () => {
    assert.equal(leasedAddress(lone), null);
    await app.start(lone);
    const init = await app.pid(lone);
    const links = procNet(init, 'dev')
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0].trim())
      .filter(Boolean);
    assert.deepEqual(links, ['lo']);
    await expectCode(app.create(uniqueName('net-bad'), { network: false, port: await freePort() }), 'DRE_ERR_INVALID_ARGUMENT', 'networking');
  });

  it('shows address and port in dre-app list', () => {
    const r = cli('dre-app', ['list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { name: string; address: string | null; port: number | null }[];
    const row = rows.find((x) => x.name === web);
    assert.equal(row?.address, webAddress);
    assert.equal(row?.port, webPort);
    assert.equal(rows.find((x) => x.name === lone)?.address, null);
    const table = cli('dre-app', ['list']).stdout;
    assert.ok(table.split('\n')[0].includes('ADDRESS'), table);
    assert.ok(table.includes(`${webAddress}  ${webPort}`), table);
  });

  it('refuses a port another container has at create, naming that container', async () => {
    const r = cli('dre-app', ['create', uniqueName('net-clash'), '--port', String(webPort)]);
    assert.equal(r.code, -DRE_ERR.DRE_ERR_INVALID_ARGUMENT, r.stderr);
    assert.ok(r.stderr.includes(web), r.stderr);
  });

  it('hands out distinct addresses and each port once when creates race', async () => {
    const port = await freePort();
    const racers = [1, 2, 3, 4].map(() => uniqueName('net-race'));
    try {
      const results = await Promise.all(racers.map((n) => cliAsync('dre-app', ['create', n, '--port', String(port)]).done));
      const won = racers.filter((_, i) => results[i].code === 0);
      assert.equal(won.length, 1, results.map((r) => r.stderr).join(''));
      for (const r of results.filter((x) => x.code !== 0)) assert.equal(r.code, -DRE_ERR.DRE_ERR_INVALID_ARGUMENT, r.stderr);
      const more = await Promise.all(racers.filter((n) => !won.includes(n)).map((n) => cliAsync('dre-app', ['create', n]).done));
      assert.ok(
        more.every((r) => r.code === 0),
        more.map((r) => r.stderr).join(''),
      );
      const addresses = racers.map(leasedAddress);
      assert.equal(new Set(addresses).size, racers.length, addresses.join(' '));
    } finally {
      for (const n of racers) await app.destroy(n).catch(() => {});
    }
  });

  it('refuses to start when another program holds the port, and does not start half-way', async () => {
    const port = await freePort();
    await app.create(later, { port, sshKey: pubKey() });
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, resolve));
    try {
      await expectCode(app.start(later), 'DRE_ERR_NO_SOCKET_AVAILABLE', String(port));
      assert.equal(await app.status(later), STATUS.STOP);
      assert.equal(
        spawnSync('lxc-info', ['-n', later, '-P', join(containerDir('app', later), '..'), '-s'], { encoding: 'utf8' }).stdout.includes('STOPPED'),
        true,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    await app.start(later);
    await assertSshReaches(port, later);
  });

  it('closes the port on stop', async () => {
    const { port } = app.info(later);
    assert.equal(existsSync(portHookMarkPath(later)), true, "a running container's start armed LXC's hook that ends its forward");
    await app.stop(later, { timeoutMs: 0 });
    assert.equal(forwarded(port!), false, 'nothing is forwarded to a stopped container');
    assert.equal(existsSync(portHookMarkPath(later)), false, "D-RE's stop disarmed the hook: it ended the forward itself");
    assert.equal(await answers(port!, 500), false, 'nothing answers on the port');
  });

  it('closes the port when the container stops from inside', async () => {
    const { port } = app.info(later);
    await app.start(later);
    await assertSshReaches(port!, later);
    assert.equal(cli('dre-app', ['exec', later, '--', 'poweroff']).code, 0);
    const stopped = await waitFor(async () => ((await app.status(later)) === STATUS.STOP ? true : undefined), 30_000, 50);
    assert.equal(stopped, true, 'the container stopped');
    assert.equal(await waitFor(() => (forwarded(port!) ? undefined : true), 5_000), true, "LXC's post-stop hook removed the forward");
  });

  it('heals the forward a stop killed after it disarmed the hook leaves, once the container stops on its own', async () => {
    const { port } = app.info(later);
    await app.start(later);
    assert.ok(forwarded(port!));
    rmSync(portHookMarkPath(later)); // what a stop killed right after it disarmed the hook leaves
    assert.equal(cli('dre-app', ['exec', later, '--', 'poweroff']).code, 0);
    const stopped = await waitFor(async () => ((await app.status(later)) === STATUS.STOP ? true : undefined), 30_000, 50);
    assert.equal(stopped, true, 'the container stopped');
    assert.equal(forwarded(port!), true, 'the disarmed hook left the forward');
    await app.stop(later, { timeoutMs: 0 }).catch(() => {}); // the next call on the stopped container
    assert.equal(forwarded(port!), false, 'the next stop removed it');
    await app.start(later);
    await assertSshReaches(port!, later);
    await app.stop(later, { timeoutMs: 0 });
  });

  it('heals a forward a killed LXC monitor left behind at the next call', async () => {
    const monitor = Number(readFileSync(join(process.env.DRE_RUNDIR!, 'app', web, 'monitor.pid'), 'utf8'));
    const init = await app.pid(web);
    process.kill(monitor, 'SIGKILL'); // its post-stop hook never runs; LXC's death signal ends init
    assert.equal(await waitFor(() => (isAlive(init) ? undefined : true), 10_000), true, 'init died with its monitor');
    assert.ok(forwarded(webPort), 'the forward outlived the container');
    assert.equal(await app.status(web), STATUS.STOP);
    await app.stop(web, { timeoutMs: 0 }).catch(() => {}); // ends what the monitor left, the forward among it
    assert.equal(forwarded(webPort), false, 'the next call removed the forward');
    await app.start(web);
    await assertSshReaches(webPort, web);
  });

  it('ends the forward a killed LXC monitor left when the port is changed next (stop finds a forward by the port its record names)', async () => {
    const monitor = Number(readFileSync(join(process.env.DRE_RUNDIR!, 'app', web, 'monitor.pid'), 'utf8'));
    const init = await app.pid(web);
    process.kill(monitor, 'SIGKILL');
    assert.equal(await waitFor(() => (isAlive(init) ? undefined : true), 10_000), true, 'init died with its monitor');
    assert.ok(forwarded(webPort), 'the forward outlived the container');
    await app.configure(web, { port: null });
    assert.equal(forwarded(webPort), false, 'the change of port removed the forward of the old one');
    await app.stop(web, { timeoutMs: 0 }).catch(() => {}); // the monitor's groups
    await app.configure(web, { port: webPort });
    await app.start(web);
    await assertSshReaches(webPort, web);
  });

  it('refuses a port a container of another D-RE root forwards, and leaves that root alone', async () => {
    const other = join(tmp, 'other-net-root');
    mkdirSync(join(other, 'app'), { recursive: true });
    const net = networkConfig();
    const [a, b] = net.subnet.split('.').map(Number);
    writeFileSync(
      join(other, 'app', 'network.json'),
      JSON.stringify({ bridge: `${net.bridge.slice(0, 9)}o`, subnet: `${a}.${b + 1 > 255 ? b - 1 : b + 1}.77.0/24` }),
    );
    const env = { DRE_ROOT: other, DRE_RUNDIR: join(tmp, 'other-net-run') };
    const port = await freePort();
    const theirs = uniqueName('net-theirs');
    const ours = uniqueName('net-ours');
    try {
      assert.equal(cli('dre-app', ['create', theirs, '--port', String(port), '--ssh-key', keyFile + '.pub'], { env }).code, 0);
      const started = cli('dre-app', ['start', theirs], { env });
      assert.equal(started.code, 0, started.stderr);
      await app.create(ours, { port, sshKey: pubKey() });
      await expectCode(app.start(ours), 'DRE_ERR_NO_SOCKET_AVAILABLE', 'another D-RE root');
      assert.equal(await app.status(ours), STATUS.STOP);
      assert.equal(forwardedPorts().get(port), `${portTable(other)} ${theirs}`, "the other root's forward is untouched");
      assert.equal(cli('dre-app', ['stop', theirs, '--timeout', '0'], { env }).code, 0);
      assert.equal(forwarded(port), false);
      await app.start(ours);
      await assertSshReaches(port, ours);
      await app.stop(ours, { timeoutMs: 0 });
    } finally {
      await app.destroy(ours).catch(() => {});
      cli('dre-app', ['stop', theirs, '--timeout', '0'], { env });
      cli('dre-app', ['destroy', theirs], { env });
    }
  });

  it('leaves nothing that blocks the next start after dre-app is SIGKILLed while starting', async () => {
    const { port } = app.info(later);
    const starting = cliAsync('dre-app', ['start', later]);
    await waitFor(() => (forwarded(port!) ? true : undefined), 20_000, 2);
    starting.child.kill('SIGKILL');
    await starting.done;
    // lxc-start, if it was under way, keeps the container's lock until the container runs.
    const settled = await waitFor(async () => ((await app.status(later)) === STATUS.BUSY ? undefined : true), 20_000);
    assert.equal(settled, true, 'the container is not left busy');
    // Either the start got through (the forward serves the container) or it did not (the next call removes it).
    if ((await app.status(later)) === STATUS.RUNNING) await assertSshReaches(port!, later);
    await app.stop(later, { timeoutMs: 0 }).catch(() => {});
    assert.equal(forwarded(port!), false, 'the port is free again');
    await app.start(later);
    await assertSshReaches(port!, later);
    await app.stop(later, { timeoutMs: 0 });
  });

  it('frees the address and the port on destroy', async () => {
    await app.stop(web, { timeoutMs: 0 });
    await app.destroy(web);
    assert.equal(forwarded(webPort), false);
    await app.create(web, { port: webPort, sshKey: pubKey() });
    assert.equal(leasedAddress(web), webAddress, 'the lowest free address, the one just given back, is handed out again');
    assert.ok(readFileSync(join(containerDir('app', web), 'config'), 'utf8').includes(`lxc.net.0.ipv4.address = ${webAddress}/`));
  });

  it('removes the bridge with the last networked container', async () => {
    for (const n of all) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => {});
      await app.destroy(n);
    }
    assert.equal(existsSync(`/sys/class/net/${networkConfig().bridge}`), false);
    assert.equal(spawnSync('nft', ['list', 'table', 'inet', portTable()]).status, 1, "the root's nftables table is gone with it");
  });

  it('finishes a bridge a killed start left half-made, and refuses a bridge it did not make', async () => {
    const { bridge, gateway } = networkConfig();
    const ourMac = ['02', 'de', ...gateway.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
    const ipLink = (...args: string[]) => assert.equal(spawnSync('ip', ['link', ...args]).status, 0, `ip link ${args.join(' ')}`);
    const n = uniqueName('net-half');
    all.push(n);
    await app.create(n, {});
    try {
      ipLink('add', 'name', bridge, 'address', ourMac, 'type', 'bridge'); // as left by a start killed after its first step
      await app.start(n);
      assert.ok(readFileSync(`/sys/class/net/${bridge}/ifalias`, 'utf8').startsWith('dre:'));
      await app.stop(n, { timeoutMs: 0 });
      spawnSync('ip', ['link', 'del', 'dev', bridge]);
      ipLink('add', 'name', bridge, 'type', 'bridge'); // someone else's bridge of the same name
      await expectCode(app.start(n), 'DRE_ERR_NO_TAP_AVAILABLE', bridge);
      assert.equal(await app.status(n), STATUS.STOP);
    } finally {
      spawnSync('ip', ['link', 'del', 'dev', bridge]);
    }
  });
});

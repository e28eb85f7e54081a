/**
 * System containers on the network: a VM's virtio-net on a tap on the bridge application containers
 * use, its address from the same allocator; a VM and an application container reach each other, the
 * host reaches the VM, --port forwards a host port to the guest's port 22, a checkpoint brought back
 * keeps the address, and stop (or a killed QEMU) leaves no tap.
 */
import { requireQemu, removeGuest, sh } from './helpers.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, sys } from '../../src/index.js';
import { networkConfig } from '../../src/app/network.js';
import { portTable } from '../../src/app/portforward.js';
import { STATUS } from '../../src/core/driver.js';
import { isDreError } from '../../src/core/errors.js';
import { sleep } from '../../src/core/proc.js';
import { qemuPid } from '../../src/sys/state.js';
import { tapName } from '../../src/sys/tap.js';
import { freePort, uniqueName } from '../support/env.js';

/** An HTTP GET of `/` from host:port through a plain socket; resolves to the reply ('' when nothing answers in `ms`). */
function httpGet(host: string, port: number, ms = 5_000): Promise<string> {
  return new Promise((resolve) => {
    let reply = '';
    const s = connect(port, host, () => s.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    const done = () => {
      s.destroy();
      resolve(reply);
    };
    s.setTimeout(ms, done);
    s.on('data', (d) => (reply += d.toString()));
    s.once('end', done);
    s.once('error', done);
  });
}

/** Retries an HTTP GET until its reply includes `text` (a server just started in a guest under TCG), for up to 30 s. */
async function reachable(host: string, port: number, text: string): Promise<string> {
  let reply = '';
  for (const end = Date.now() + 30_000; Date.now() < end && !reply.includes(text); await sleep(200)) reply = await httpGet(host, port);
  return reply;
}

/** The host's links, from `ip` (not from sysfs, which the other checks read). */
const links = () => new Set((JSON.parse(spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout) as { ifname: string }[]).map((l) => l.ifname));

/** The bridge each of a host's links hangs on. */
function masterOf(link: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${link}/master/uevent`, 'utf8').match(/INTERFACE=(\S+)/)?.[1];
  } catch {
    return undefined;
  }
}

describe('system containers on the network', { timeout: 900_000 }, () => {
  const vm = uniqueName('vmnet');
  const lone = uniqueName('vmlone');
  const web = uniqueName('appnet');
  let hostPort = 0;

  before(async () => {
    requireQemu();
    hostPort = await freePort();
    await sys.create(vm, { port: hostPort });
    await sys.create(lone, { network: false });
    await app.create(web, {});
  });

  after(async () => {
    await removeGuest(vm);
    await removeGuest(lone);
    await app.stop(web, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(web).catch(() => {});
  });

  it('gives a VM an address of the same allocator as application containers, and a MAC kept in its record', async () => {
    const net = networkConfig();
    const { address, port } = await sys.info(vm);
    const appAddress = (await app.info(web)).address;
    assert.equal(port, hostPort);
    assert.ok(address && appAddress && address !== appAddress, `${address} vs ${appAddress}`);
    const prefix = net.subnet.split('.').slice(0, 3).join('.');
    assert.ok(address.startsWith(prefix) && appAddress.startsWith(prefix), `${address}, ${appAddress} in ${net.subnet}`);
    assert.equal((await sys.info(lone)).address, null);
  });

  it('starts the VM with its tap on the bridge and eth0 holding its address', async () => {
    const { address } = await sys.info(vm);
    const tap = tapName(address!);
    assert.equal(existsSync(`/sys/class/net/${tap}`), false, 'no tap before start');
    await sys.start(vm);
    assert.equal(masterOf(tap), networkConfig().bridge, `${tap} hangs on the bridge`);
    const rec = JSON.parse(readFileSync(`${process.env.DRE_ROOT}/sys/containers/${vm}/dre.json`, 'utf8')) as { mac: string };
    assert.equal(await sh(vm, 'cat /sys/class/net/eth0/address'), rec.mac);
    assert.match(await sh(vm, 'ip -4 addr show dev eth0'), new RegExp(`inet ${address!.replace(/\./g, '\\.')}/`));
    assert.equal(await sh(vm, 'ip route | grep ^default'), `default via ${networkConfig().gateway} dev eth0 `.trim());
  });

  it('lets the host reach the VM by address, and forwards the host port to its port 22', async () => {
    const { address } = await sys.info(vm);
    await sh(vm, 'mkdir -p /tmp/www && echo vm-says-hello >/tmp/www/index.html && httpd -p 80 -h /tmp/www && httpd -p 22 -h /tmp/www');
    assert.match(await reachable(address!, 80, 'vm-says-hello'), /200 OK[\s\S]*vm-says-hello/);
    assert.match(await reachable('127.0.0.1', hostPort, 'vm-says-hello'), /vm-says-hello/, 'the forward reaches the guest');
  });

  it('lets an application container and a VM reach each other by address', async () => {
    const vmAddress = (await sys.info(vm)).address!;
    const appAddress = (await app.info(web)).address!;
    await app.start(web);
    const fromApp = await app.execCapture(web, ['sh', '-c', `for i in $(seq 50); do wget -q -O- http://${vmAddress}/ && exit 0; sleep 0.2; done; exit 1`]);
    assert.equal(fromApp.status, 0, fromApp.stderr.toString());
    assert.equal(fromApp.stdout.toString().trim(), 'vm-says-hello');
    // The application container's SSH server (dropbear) sends its banner to the VM.
    const banner = await sh(
      vm,
      `for i in $(seq 50); do b=$(nc -w 2 ${appAddress} 22 </dev/null | head -c 8); [ -n "$b" ] && break; sleep 0.2; done; echo -n "$b"`,
    );
    assert.equal(banner, 'SSH-2.0-');
  });

  it('keeps the address and NIC through a checkpoint brought back', async () => {
    const { address } = await sys.info(vm);
    await sys.checkpoint(vm, 'net1');
    await sys.stop(vm, { timeoutMs: 0 });
    assert.equal(existsSync(`/sys/class/net/${tapName(address!)}`), false, 'stop removed the tap');
    await sys.restart(vm, 'net1');
    assert.equal(masterOf(tapName(address!)), networkConfig().bridge);
    // The restored guest's httpd (started before the checkpoint) answers again on the same address.
    assert.match(await reachable(address!, 80, 'vm-says-hello'), /vm-says-hello/);
    assert.match(await sh(vm, 'ip -4 addr show dev eth0'), new RegExp(`inet ${address!.replace(/\./g, '\\.')}/`));
  });

  it('removes the tap and the forward when stopped, and when QEMU is killed the next start makes them again', async () => {
    const { address } = await sys.info(vm);
    const tap = tapName(address!);
    process.kill(qemuPid(vm)!, 'SIGKILL');
    for (let i = 0; i < 500 && existsSync(`/sys/class/net/${tap}`); i++) await sleep(10);
    assert.equal(existsSync(`/sys/class/net/${tap}`), false, 'the tap went with the killed QEMU');
    assert.equal(await sys.status(vm), STATUS.STOP);
    await sys.start(vm);
    assert.equal(masterOf(tap), networkConfig().bridge);
    await sh(vm, 'mkdir -p /tmp/www && echo again >/tmp/www/index.html && httpd -p 22 -h /tmp/www');
    assert.match(await reachable('127.0.0.1', hostPort, 'again'), /again/);
    await sys.stop(vm);
    assert.equal(links().has(tap), false, 'stop removed the tap');
    const map = spawnSync('nft', ['-j', 'list', 'map', 'inet', portTable(), 'ssh'], { encoding: 'utf8' });
    assert.equal(map.status, 0, map.stderr);
    assert.equal(map.stdout.includes(`"val": ${hostPort}`) || map.stdout.includes(`${hostPort},`), false, `no forward of port ${hostPort} left: ${map.stdout}`);
  });

  it('fails a start with DRE_ERR_NO_TAP_AVAILABLE when its tap cannot be made, changing nothing', async () => {
    const { address } = await sys.info(vm);
    const tap = tapName(address!);
    // A link of another kind holding the tap's name: not D-RE's to remove.
    const add = spawnSync('ip', ['link', 'add', tap, 'type', 'bridge'], { encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    try {
      await assert.rejects(
        sys.start(vm),
        (e) => isDreError(e) && e.errName === 'DRE_ERR_NO_TAP_AVAILABLE' && e.message.includes(`a link named ${tap} exists and is not a tap`),
      );
      assert.equal(await sys.status(vm), STATUS.STOP);
      assert.ok(existsSync(`/sys/class/net/${tap}/`), 'the other link is left alone');
    } finally {
      spawnSync('ip', ['link', 'del', tap]);
    }
  });

  it('gives a VM created with --no-network loopback only', async () => {
    await sys.start(lone);
    assert.equal(await sh(lone, 'ls /sys/class/net'), 'lo');
    await sys.stop(lone, { timeoutMs: 0 });
  });

  it('refuses a port taken by another container of the root, changing nothing', async () => {
    const other = uniqueName('vmport');
    await assert.rejects(
      sys.create(other, { port: hostPort }),
      (e) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT' && /taken by system container/.test(e.message),
    );
    assert.equal(sys.exists(other), false);
  });

  it('gives the address back on destroy', async () => {
    const { address } = await sys.info(vm);
    await sys.destroy(vm);
    const again = uniqueName('vmagain');
    try {
      await sys.create(again, {});
      assert.equal((await sys.info(again)).address, address, 'the freed address is handed out again');
    } finally {
      await removeGuest(again);
    }
  });
});

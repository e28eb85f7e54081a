import { distDir } from '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { daemonIn, hostCli, hostCliAsync, setUpTwoHosts, tearDownTwoHosts, type Host, type TwoHosts } from '../support/twohosts.js';
import { kernelNfsd } from '../../src/sys/nfsserver.js';
import { requireQemu } from './helpers.js';

// Two D-RE hosts (A, B) in network namespaces joined by a veth pair, an NFS server (ganesha) in a third.
let net: TwoHosts;
let A: Host;
let B: Host;
const SHARED = `mig-${process.pid}-s`;
const COPIED = `mig-${process.pid}-c`;

/** dre-sys as host h; asserts the exit status and returns stdout. */
function ok(h: Host, ...args: string[]): string {
  const r = hostCli(h, args);
  assert.equal(r.code, 0, `${h.ns}: dre-sys ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** dre-sys as host h that must fail with `code` (the absolute dre_err_t); returns stderr. */
function fails(h: Host, code: number, ...args: string[]): string {
  const r = hostCli(h, args);
  assert.equal(r.code, code, `${h.ns}: dre-sys ${args.join(' ')} should exit ${code}: ${r.stderr}`);
  return r.stderr;
}

/** A CA, a server certificate for the given IP addresses and a client certificate, in QEMU's file names. */
function makeCertificates(dir: string, ips: string[]): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=dre-test-ca', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem');
  for (const [role, ext] of [
    ['server', `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth`],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    writeFileSync(join(dir, `${role}.ext`), ext + '\n');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=dre-test-${role}`, '-keyout', `${role}-key.pem`, '-out', `${role}.csr`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${role}.csr`,
      '-CA',
      'ca-cert.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${role}.ext`,
      '-out',
      `${role}-cert.pem`,
    );
  }
  return dir;
}

/** Evaluates `expr` (with `s` = dre/sys, the spec layer) as host h; returns its JSON value. */
function spec(h: Host, expr: string): unknown {
  const script = `const s = await import('${join(distDir, 'src', 'spec', 'sys.js')}'); console.log(JSON.stringify(${expr}));`;
  const r = spawnSync('ip', ['netns', 'exec', h.ns, process.execPath, '--input-type=module', '-e', script], { env: h.env, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const status = (h: Host, name: string) => ok(h, 'status', name);
/** The guest's own view: seconds since it booted (an independent path: /proc/uptime inside the guest). */
const uptime = (h: Host, name: string) => Number(ok(h, 'exec', name, '--', 'cut', '-d', ' ', '-f1', '/proc/uptime'));
const guestFile = (h: Host, name: string, path: string) => ok(h, 'exec', name, '--', 'cat', path);

describe('live migration and NFS sharing between two D-RE hosts', () => {
  before(async () => {
    requireQemu();
    net = await setUpTwoHosts(process.env.DRE_TEST_TMP!);
    A = net.a;
    B = net.b;
    ok(A, 'create', SHARED, '--accel', 'tcg');
    ok(A, 'share', SHARED);
    ok(A, 'start', SHARED);
    ok(A, 'exec', SHARED, '--', 'sh', '-c', 'echo survived > /tmp/mark');
  });

  after(() => tearDownTwoHosts());

  it("serves the share with D-RE's nfs-server (ganesha in the server's namespace where the kernel has no nfsd), which refuses a second start", () => {
    const inServerNs = execFileSync('ip', ['netns', 'pids', net.nfsNs], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const commands = inServerNs.map((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
    if (!kernelNfsd()) assert.ok(commands.includes('ganesha.nfsd') && commands.includes('rpcbind'), commands.join(' '));
    assert.match(fails(net.server, 153, 'nfs-server', 'start', net.exportDir), /already serves/);
  });

  it('shares a container: its disk and record lie on the NFS export, none is left on the host', () => {
    const files = readdirSync(net.exportDir);
    assert.ok(files.includes(`${SHARED}.qcow2`) && files.includes(`${SHARED}.json`), files.join(' '));
    assert.ok(!existsSync(join(A.root, 'sys', 'containers', SHARED, 'disk.qcow2')));
  });

  it('migrates a shared running container to B and back: the guest keeps its uptime and tmpfs file', () => {
    const before = uptime(A, SHARED);
    ok(B, 'immigrate', SHARED, '5601');
    const r = hostCli(A, ['migrate', SHARED, B.addr, '5601']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sent, .* remaining|completed in .* downtime \d+ ms/);
    assert.equal(status(A, SHARED), 'STOP');
    assert.equal(status(B, SHARED), 'RUNNING');
    assert.equal(guestFile(B, SHARED, '/tmp/mark'), 'survived');
    assert.ok(uptime(B, SHARED) > before, 'the guest did not reboot');
    // B manages it now: a checkpoint lands in the shared image.
    ok(B, 'checkpoint', SHARED, 'onb');
    // The lease: A may not run, nor touch, the disk B runs.
    assert.match(fails(A, 116, 'start', SHARED), /run by host/);
    assert.match(fails(A, 116, 'checkpoints', SHARED), /run by host/);
    assert.equal(status(B, SHARED), 'RUNNING');
    // And back: B manages it now.
    ok(A, 'immigrate', SHARED, '5602');
    ok(B, 'migrate', SHARED, A.addr, '5602');
    assert.equal(status(B, SHARED), 'STOP');
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
    assert.match(ok(A, 'checkpoints', SHARED), /onb/);
    assert.match(fails(B, 116, 'checkpoints', SHARED), /run by host/);
  });

  it('migrates with its NIC: the target holds the same address and MAC, the guest answers there, no tap stays at the source', () => {
    const address = (JSON.parse(ok(A, 'list', '--json')) as { name: string; address: string | null }[]).find((r) => r.name === SHARED)?.address;
    assert.ok(address, 'the shared container has an address');
    const mac = ok(A, 'exec', SHARED, '--', 'cat', '/sys/class/net/eth0/address');
    ok(A, 'exec', SHARED, '--', 'sh', '-c', 'mkdir -p /tmp/www && echo nic-here > /tmp/www/index.html && httpd -p 80 -h /tmp/www');
    // Node's fetch inside the host's namespace (the host's static busybox wget crashes here), retried while ARP settles.
    const get = `for (let i = 0; i < 50; i++) { try { const r = await fetch('http://${address}/', { signal: AbortSignal.timeout(3000) }); process.stdout.write(await r.text()); process.exit(0); } catch { await new Promise((r) => setTimeout(r, 200)); } } process.exit(1);`;
    const fetchFrom = (h: Host) =>
      spawnSync('ip', ['netns', 'exec', h.ns, process.execPath, '--input-type=module', '-e', get], { encoding: 'utf8', timeout: 240_000 });
    const taps = (h: Host) =>
      (JSON.parse(execFileSync('ip', ['-n', h.ns, '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[])
        .map((l) => l.ifname)
        .filter((n) => /-t\d+$/.test(n));
    assert.equal(fetchFrom(A).stdout.trim(), 'nic-here', 'host A reaches the guest');
    assert.equal(taps(A).length, 1);
    ok(B, 'immigrate', SHARED, '5641');
    ok(A, 'migrate', SHARED, B.addr, '5641');
    assert.equal(status(B, SHARED), 'RUNNING');
    assert.deepEqual(taps(A), [], "the source's tap went with its QEMU");
    assert.equal(taps(B).length, 1);
    assert.equal(ok(B, 'exec', SHARED, '--', 'cat', '/sys/class/net/eth0/address'), mac);
    assert.equal((JSON.parse(ok(B, 'list', '--json')) as { name: string; address: string | null }[]).find((r) => r.name === SHARED)?.address, address);
    const r = fetchFrom(B);
    assert.equal(r.stdout.trim(), 'nic-here', `host B reaches the migrated guest's server on its address: ${r.stderr}`);
    ok(A, 'immigrate', SHARED, '5642');
    ok(B, 'migrate', SHARED, A.addr, '5642');
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.deepEqual(taps(B), []);
    assert.equal(fetchFrom(A).stdout.trim(), 'nic-here');
  });

  it('migrates over TLS (x509) when both hosts are given certificates, and a clear-text stream is refused there', () => {
    const dir = makeCertificates(join(process.env.DRE_TEST_TMP!, 'tls'), [A.addr, B.addr]);
    ok(B, 'immigrate', SHARED, '5611', '--tls', dir);
    fails(A, 151, 'migrate', SHARED, B.addr, '5611');
    assert.equal(status(A, SHARED), 'RUNNING');
    ok(B, 'immigrate', SHARED, '5612', '--tls', dir);
    ok(A, 'migrate', SHARED, B.addr, '5612', '--tls', dir);
    assert.equal(status(B, SHARED), 'RUNNING');
    assert.equal(guestFile(B, SHARED, '/tmp/mark'), 'survived');
    ok(A, 'immigrate', SHARED, '5613', '--tls', dir);
    ok(B, 'migrate', SHARED, A.addr, '5613', '--tls', dir);
    assert.equal(status(A, SHARED), 'RUNNING');
  });

  it('does the same through the spec layer: dre_sys_immigration_start / dre_sys_migration_start resolve to 0 or the code', () => {
    const port = 5620;
    assert.deepEqual(spec(B, `[await s.dre_sys_immigration_start('${SHARED}', ${port}), await s.dre_sys_immigration_start('nosuch', ${port + 1})]`), [0, -111]);
    const h = `await s.dre_sys_open('${SHARED}')`;
    assert.deepEqual(
      spec(
        A,
        `[await s.dre_sys_migration_start(${h}, 'bad_host!', ${port}), await s.dre_sys_unshare(${h}), await s.dre_sys_share(null), await s.dre_sys_migration_start(${h}, '${B.addr}', ${port})]`,
      ),
      [-156, -113, -201, 0],
    );
    assert.equal(status(B, SHARED), 'RUNNING');
    assert.deepEqual(spec(A, `[await s.dre_sys_immigration_start('${SHARED}', ${port + 2})]`), [0]);
    assert.deepEqual(spec(B, `[await s.dre_sys_migration_start(${h}, '${A.addr}', ${port + 2})]`), [0]);
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
  });

  it('gives the target what the source wrote after the target opened the image (its NFS driver never re-reads the length)', () => {
    ok(B, 'immigrate', SHARED, '5630');
    const announced = JSON.parse(readFileSync(join(net.exportDir, `${SHARED}.incoming`), 'utf8')) as { imageLength: number };
    const check = spawnSync('qemu-img', ['check', '-U', '--output=json', join(net.exportDir, `${SHARED}.qcow2`)], { encoding: 'utf8' });
    const used = (JSON.parse(check.stdout) as { 'image-end-offset': number })['image-end-offset'];
    assert.ok(announced.imageLength > used + 2 ** 28, `the target took the image as ${announced.imageLength} bytes: no room past its used ${used}`);
    // New clusters (and copies of those the checkpoint shares) land past where the image ended when B opened it.
    const sum = ok(A, 'exec', SHARED, '--', 'sh', '-c', 'dd if=/dev/urandom of=/root/late bs=1M count=8 2>/dev/null && sync && md5sum /root/late');
    ok(A, 'migrate', SHARED, B.addr, '5630');
    // Read back from B's disk, not from the guest's page cache.
    assert.equal(ok(B, 'exec', SHARED, '--', 'sh', '-c', 'echo 3 > /proc/sys/vm/drop_caches && md5sum /root/late'), sum);
    ok(A, 'immigrate', SHARED, '5631');
    ok(B, 'migrate', SHARED, A.addr, '5631');
    assert.equal(ok(A, 'exec', SHARED, '--', 'sh', '-c', 'echo 3 > /proc/sys/vm/drop_caches && md5sum /root/late'), sum);
  });

  it('cancels the switch-over when the image outgrew what the target opened; the guest runs on at the source', () => {
    ok(B, 'immigrate', SHARED, '5632');
    const announced = JSON.parse(readFileSync(join(net.exportDir, `${SHARED}.incoming`), 'utf8')) as { imageLength: number };
    // Past the target's room, as if the source had written that much since: lengthened through the NFS
    // server (which would not see a change made beside it); sparse, the image itself is untouched.
    const grow = `const { withNfs, parseNfsUrl } = await import('${join(distDir, 'src', 'sys', 'nfs.js')}');
      withNfs(parseNfsUrl('${net.nfsUrl}', 'test'), 'test', (c) => c.truncate('${SHARED}.qcow2', ${announced.imageLength + 2 ** 20}));`;
    execFileSync('ip', ['netns', 'exec', A.ns, process.execPath, '--input-type=module', '-e', grow], { env: A.env, stdio: ['ignore', 'ignore', 'inherit'] });
    assert.match(fails(A, 151, 'migrate', SHARED, B.addr, '5632'), /grew to \d+ bytes since the target opened it.*keeps running here/);
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
  });

  it('refuses a bad or unknown target host name with DRE_ERR_INVALID_HOSTNAME; the guest runs on', () => {
    assert.match(fails(A, 156, 'migrate', SHARED, 'bad_host!', '5603'), /not a valid host name/);
    assert.match(fails(A, 156, 'migrate', SHARED, 'no-such-host.invalid', '5603'), /does not resolve/);
    assert.equal(status(A, SHARED), 'RUNNING');
  });

  it('fails with DRE_ERR_NO_SOCKET_AVAILABLE when nothing listens on the target; the guest runs on', () => {
    assert.match(fails(A, 153, 'migrate', SHARED, B.addr, '5604'), /no host waits for it from the share on port 5604.*keeps running here/);
    // Announced on the share, but its QEMU is gone: QEMU's own connect fails.
    ok(B, 'immigrate', SHARED, '5604');
    process.kill(Number(ok(B, 'pid', SHARED)), 'SIGKILL');
    assert.match(fails(A, 153, 'migrate', SHARED, B.addr, '5604'), /nothing accepts the migration.*keeps running here/);
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
  });

  it('fails an immigration with DRE_ERR_NO_SOCKET_AVAILABLE when its port is taken on the target', async () => {
    daemonIn(B.ns, process.execPath, ['-e', "require('net').createServer().listen(5605, '0.0.0.0'); setInterval(() => {}, 1e6)"]);
    await new Promise((r) => setTimeout(r, 500));
    assert.match(fails(B, 153, 'immigrate', SHARED, '5605'), /port 5605 cannot be listened on/);
    assert.equal(status(B, SHARED), 'STOP');
  });

  it('fails an immigration with DRE_ERR_CONTAINER_NONEXISTENCE for a container neither the target nor the share has', () => {
    assert.match(fails(B, 111, 'immigrate', `nosuch-${process.pid}`, '5606'), /no such system container on this host or on its NFS share/);
  });

  it('cancels a migration that does not converge in the given time; the guest runs on at the source', () => {
    ok(B, 'immigrate', SHARED, '5607');
    // 1 MiB/s cannot carry ~90 MiB of guest RAM in 4 s.
    assert.match(fails(A, 151, 'migrate', SHARED, B.addr, '5607', '--bandwidth', '1', '--timeout', '4'), /did not converge within 4 s.*keeps running here/);
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
  });

  it('survives the target QEMU being killed half-way: a precise error, the guest runs on at the source', async () => {
    ok(B, 'immigrate', SHARED, '5608');
    const targetQemu = Number(ok(B, 'pid', SHARED));
    const m = hostCliAsync(A, ['migrate', SHARED, B.addr, '5608', '--bandwidth', '4', '--timeout', '120']);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(targetQemu, 'SIGKILL');
    const r = await m.done;
    assert.equal(r.code, 151, r.stderr);
    assert.match(r.stderr, /ended the migration half-way.*keeps running here/);
    assert.equal(status(A, SHARED), 'RUNNING');
    assert.equal(guestFile(A, SHARED, '/tmp/mark'), 'survived');
  });

  it('survives the source QEMU being killed half-way: STOPPED here, nothing runs there, and it starts again here with its disk', async () => {
    ok(A, 'exec', SHARED, '--', 'sh', '-c', 'echo on-disk > /root/kept; sync');
    ok(B, 'immigrate', SHARED, '5610');
    const sourceQemu = Number(ok(A, 'pid', SHARED));
    const m = hostCliAsync(A, ['migrate', SHARED, B.addr, '5610', '--bandwidth', '4', '--timeout', '120']);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(sourceQemu, 'SIGKILL');
    const r = await m.done;
    assert.equal(r.code, 114, r.stderr);
    assert.match(r.stderr, /QEMU ended during the migration.*stopped here/);
    assert.equal(status(A, SHARED), 'STOP');
    assert.equal(status(B, SHARED), 'STOP', 'the target got half a guest: it must not run it');
    assert.equal(ok(B, 'lease', SHARED), 'free', 'a stopped container holds no lease');
    ok(A, 'start', SHARED);
    assert.equal(guestFile(A, SHARED, '/root/kept'), 'on-disk');
    ok(A, 'exec', SHARED, '--', 'sh', '-c', 'echo survived > /tmp/mark'); // the RAM file the later tests read
  });

  it('fails to share with DRE_ERR_NFS_MOUNT_FAILED when the NFS server is unreachable or the export unknown; the container stays usable', () => {
    const local = `mig-${process.pid}-l`;
    ok(A, 'create', local, '--accel', 'tcg');
    const unreachable = { ...A, env: { ...A.env, DRE_SYS_NFS: 'nfs://10.251.9.99/export' } };
    assert.match(fails(unreachable, 154, 'share', local), /cannot mount nfs:\/\/10\.251\.9\.99\/export/);
    // An address on A's link to the server that nobody holds: no ARP answer, a silent server (bounded wait).
    const silent = { ...A, env: { ...A.env, DRE_SYS_NFS: 'nfs://10.251.2.7/export' } };
    assert.match(fails(silent, 154, 'share', local), /cannot mount nfs:\/\/10\.251\.2\.7\/export/);
    const noExport = { ...A, env: { ...A.env, DRE_SYS_NFS: `nfs://10.251.9.1/no/such/export` } };
    assert.match(fails(noExport, 154, 'share', local), /cannot mount/);
    assert.ok(existsSync(join(A.root, 'sys', 'containers', local, 'disk.qcow2')), 'the local disk is still there');
    assert.ok(!readdirSync(net.exportDir).some((f) => f.startsWith(local)));
    assert.equal(status(A, local), 'STOP');
    ok(A, 'snapshot', local, 'still-usable');
    ok(A, 'destroy', local);
  });

  it('migrates a container that is not shared with its disk copied, only when asked to, and carries its address and MAC when the target is told them', () => {
    const filler = `mig-${process.pid}-f`;
    ok(A, 'create', filler, '--accel', 'tcg'); // A's copy gets another address than B's own
    ok(A, 'create', COPIED, '--accel', 'tcg');
    ok(B, 'create', COPIED, '--accel', 'tcg');
    const nicOf = (h: Host) => JSON.parse(ok(h, 'info', COPIED, '--json')) as { address: string; mac: string };
    const source = nicOf(A);
    const before = nicOf(B);
    assert.ok(source.address && source.mac && before.address !== source.address && before.mac !== source.mac, JSON.stringify([source, before]));
    ok(A, 'start', COPIED);
    ok(A, 'exec', COPIED, '--', 'sh', '-c', 'echo on-disk > /root/persist && echo in-ram > /tmp/mark && sync');
    ok(A, 'exec', COPIED, '--', 'sh', '-c', 'mkdir -p /tmp/www && echo copied-nic > /tmp/www/index.html && httpd -p 80 -h /tmp/www');
    assert.match(fails(B, 101, 'immigrate', COPIED, '5609', '--address', source.address), /address and MAC together/);
    assert.match(fails(B, 101, 'immigrate', COPIED, '5609', '--address', source.address, '--mac', '01:00:5e:00:00:01'), /not a unicast MAC/);
    ok(B, 'immigrate', COPIED, '5609', '--address', source.address, '--mac', source.mac);
    const after = nicOf(B);
    assert.deepEqual([after.address, after.mac], [source.address, source.mac], "B's record took over the source's NIC");
    assert.match(fails(A, 101, 'migrate', COPIED, B.addr, '5609'), /disk is local to this host/);
    ok(A, 'migrate', COPIED, B.addr, '5609', '--copy-disk');
    assert.equal(status(A, COPIED), 'STOP');
    assert.equal(status(B, COPIED), 'RUNNING');
    assert.equal(guestFile(B, COPIED, '/tmp/mark'), 'in-ram');
    assert.equal(guestFile(B, COPIED, '/root/persist'), 'on-disk');
    assert.equal(guestFile(B, COPIED, '/sys/class/net/eth0/address'), source.mac);
    // The guest answers on its address from B's side (Node's fetch in B's namespace, retried while ARP settles).
    const get = `for (let i = 0; i < 50; i++) { try { const r = await fetch('http://${source.address}/', { signal: AbortSignal.timeout(3000) }); process.stdout.write(await r.text()); process.exit(0); } catch { await new Promise((r) => setTimeout(r, 200)); } } process.exit(1);`;
    const r = spawnSync('ip', ['netns', 'exec', B.ns, process.execPath, '--input-type=module', '-e', get], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.stdout.trim(), 'copied-nic', `host B reaches the migrated guest on its address: ${r.stderr}`);
    // The copy on B's disk is B's own: after a stop there it boots with the file, the address and the MAC.
    ok(B, 'stop', COPIED);
    ok(B, 'start', COPIED);
    assert.equal(guestFile(B, COPIED, '/root/persist'), 'on-disk');
    assert.equal(guestFile(B, COPIED, '/sys/class/net/eth0/address'), source.mac);
    assert.match(ok(B, 'exec', COPIED, '--', 'ip', '-4', 'addr', 'show', 'dev', 'eth0'), new RegExp(`inet ${source.address.replace(/\./g, '\\.')}/`));
    ok(B, 'stop', COPIED);
    ok(A, 'destroy', filler);
  });

  it('a host that died running a shared container keeps its lease until another host breaks it with lease --break', () => {
    assert.equal(status(A, SHARED), 'RUNNING');
    const holder = ok(B, 'lease', SHARED);
    assert.ok(holder.includes(`:${A.root} since `), holder);
    assert.match(fails(A, 113, 'lease', SHARED, '--break'), /running/, 'refused where it runs');
    // Host A "dies": its QEMU is killed, nobody stops the container or releases the lease.
    process.kill(Number(ok(A, 'pid', SHARED)), 'SIGKILL');
    assert.match(fails(B, 116, 'start', SHARED), /run by host/);
    assert.match(ok(B, 'lease', SHARED, '--break'), /broke the lease of .* \(since /);
    assert.equal(ok(B, 'lease', SHARED), 'free');
    ok(B, 'start', SHARED);
    ok(B, 'exec', SHARED, '--', 'true');
    assert.match(fails(A, 116, 'start', SHARED), /run by host/);
    ok(B, 'stop', SHARED);
    assert.match(fails(A, 111, 'lease', 'nosuch'), /no such system container/);
    ok(A, 'start', SHARED);
  });

  it('unshares a stopped container: its disk comes back to the host and leaves the share', () => {
    ok(A, 'stop', SHARED);
    ok(A, 'unshare', SHARED);
    const disk = join(A.root, 'sys', 'containers', SHARED, 'disk.qcow2');
    const check = JSON.parse(spawnSync('qemu-img', ['check', '--output=json', disk], { encoding: 'utf8' }).stdout) as {
      'image-end-offset': number;
      corruptions?: number;
    };
    assert.equal(check.corruptions ?? 0, 0);
    assert.ok(statSync(disk).size <= check['image-end-offset'], 'the room left for immigrations stays on the share');
    assert.deepEqual(
      readdirSync(net.exportDir).filter((f) => f.startsWith(SHARED)),
      [],
    );
    assert.match(ok(A, 'checkpoints', SHARED), /onb/, 'a checkpoint taken while shared comes back with the disk');
    // B's imported record now points at nothing: a precise error, not a broken boot.
    assert.match(fails(B, 111, 'start', SHARED), /no longer holds it/);
    ok(A, 'start', SHARED);
    assert.equal(status(A, SHARED), 'RUNNING');
    ok(A, 'exec', SHARED, '--', 'true');
  });
});

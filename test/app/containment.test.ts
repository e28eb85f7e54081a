/**
 * Containment of application containers, proven by attacks: each test runs an escape that worked
 * against privileged containers inside a real unprivileged one, and checks the refusal through the
 * kernel's own view (the errno, the uid map, /proc of the host, the host's files).
 */
import '../support/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appDriver as app } from '../../src/app/driver.js';
import { runtimeDir } from '../../src/app/dawareruntime.js';
import { readRecord } from '../../src/app/layout.js';
import { groupDir } from '../../src/core/cgroup.js';
import { cgroupRoot, containerGroup, stateRoot } from '../../src/core/paths.js';
import { waitFor } from '../../src/core/proc.js';
import { cli, cliPath, distDir, uniqueName } from '../support/env.js';

const made: string[] = [];
const work = mkdtempSync('/var/tmp/dre-containment-'); // on the host's root file system, beside /usr/lib
let attackBin = '';
let loop = '';

/** Runs a shell script in the container as its root; resolves to its exit status and output. */
function sh(name: string, script: string, input?: Buffer): { code: number; out: string } {
  const r = spawnSync(process.execPath, [cliPath('dre-app'), 'exec', name, '--', 'sh', '-c', script], {
    input: input ?? '',
    env: process.env,
    timeout: 60_000,
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function ok(args: string[]): string {
  const r = cli('dre-app', args);
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function running(prefix: string, privileged = false): Promise<string> {
  const n = uniqueName(prefix);
  await app.create(n, { network: false, privileged });
  made.push(n);
  await app.start(n);
  return n;
}

/** The host PID of the container's init (`dre-app pid`). */
const initPid = (name: string) => Number(ok(['pid', name]).trim());
const statusField = (pid: number, field: string) => new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';

before(() => {
  assert.equal(process.getuid?.(), 0, 'these tests drive LXC and need root');
  attackBin = join(work, 'handle');
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', attackBin, join(distDir, '..', 'test', 'app', 'attacks', 'handle.c')]);
});

after(async () => {
  for (const n of made.reverse()) {
    await app.stop(n, { timeoutMs: 0 }).catch(() => {});
    await app.destroy(n).catch(() => {});
  }
  if (loop) spawnSync('losetup', ['-d', loop]);
  rmSync(work, { recursive: true, force: true });
});

describe('application container containment', () => {
  let c = '';
  before(async () => {
    c = await running('jail');
  });

  it("maps the container root to this root's reserved subordinate range, never to host root", () => {
    // The root's record of its range, and the host's reservation of it, read as files.
    const range = JSON.parse(readFileSync(join(stateRoot(), 'app', 'idmap.json'), 'utf8')) as { uid: number; gid: number };
    assert.ok(range.uid >= 65536);
    assert.equal(readRecord(c)?.privileged, false);
    const inside = sh(c, 'cat /proc/self/uid_map /proc/self/gid_map; id -u');
    assert.equal(inside.code, 0, inside.out);
    assert.deepEqual(inside.out.trim().split(/\s+/).map(Number), [0, range.uid, 65536, 0, range.gid, 65536, 0]);
    // The host's view of the container's init: its uid is the mapped one.
    const uids = statusField(initPid(c), 'Uid').split(/\s+/).map(Number);
    assert.deepEqual(uids, [range.uid, range.uid, range.uid, range.uid]);
    const name = `dre-${cgroupRoot().slice('dre/'.length)}`;
    assert.match(readFileSync('/etc/subuid', 'utf8'), new RegExp(`^${name}:${range.uid}:65536$`, 'm'));
    assert.match(readFileSync('/etc/subgid', 'utf8'), new RegExp(`^${name}:${range.gid}:65536$`, 'm'));
  });

  it("loads LXC's seccomp profile and drops sys_rawio and sys_module", () => {
    const pid = initPid(c);
    assert.equal(statusField(pid, 'Seccomp'), '2');
    const bounding = BigInt(`0x${statusField(pid, 'CapBnd')}`);
    for (const [cap, bit] of [
      ['sys_module', 16n],
      ['sys_rawio', 17n],
      ['sys_time', 25n],
      ['mac_admin', 33n],
    ] as const) {
      assert.equal((bounding >> bit) & 1n, 0n, `${cap} is still in the bounding set`);
    }
    const devices = readFileSync(join(groupDir('devices', containerGroup('app', c))!, 'devices.list'), 'utf8');
    assert.doesNotMatch(devices, /^a \*:\* rwm$/m, 'the devices cgroup allows every device');
    assert.match(devices, /^c 1:3 rwm$/m);
  });

  it('cannot make, read or write a host block device or the kernel log', () => {
    const backing = join(work, 'disk.img');
    writeFileSync(backing, Buffer.concat([Buffer.from('HOST-DISK-MARKER\n'), Buffer.alloc(1024 * 1024 - 17)]));
    loop = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
    const rdev = execFileSync('stat', ['-c', '%t %T', loop], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .map((h) => parseInt(h, 16));
    const r = sh(
      c,
      `mknod /tmp/disk b ${rdev[0]} ${rdev[1]}; echo "mknod=$?"; mknod /tmp/kmsg c 1 11; echo "kmsg=$?"
      ls /dev/loop* /dev/kmsg 2>/dev/null; dd if=/tmp/disk bs=16 count=1 2>/dev/null; echo ESCAPED > /tmp/disk`,
    );
    assert.match(r.out, /mknod=1/);
    assert.match(r.out, /kmsg=1/);
    assert.match(r.out, /Operation not permitted/);
    assert.doesNotMatch(r.out, /HOST-DISK-MARKER/);
    assert.equal(readFileSync(backing).subarray(0, 17).toString(), 'HOST-DISK-MARKER\n', 'the host disk was written');
  });

  it('cannot open a host file by its handle through a bind mount (open_by_handle_at)', () => {
    const secret = join(work, 'secret');
    writeFileSync(secret, 'HOST-SECRET\n', { mode: 0o600 });
    const [type, hex] = execFileSync(attackBin, ['handle', secret], { encoding: 'utf8' }).trim().split(' ');
    const copied = sh(c, 'cat > /tmp/handle && chmod 755 /tmp/handle', readFileSync(attackBin));
    assert.equal(copied.code, 0, copied.out);
    // /opt/dre/lib is a bind of the host's /usr/lib..., on the same file system as the secret.
    const r = sh(c, `/tmp/handle open /opt/dre/lib ${type} ${hex}`);
    assert.doesNotMatch(r.out, /HOST-SECRET/);
    assert.match(r.out, /^EPERM$/m);
  });

  it('cannot write host sysctls or core_pattern, even through a fresh proc mount', () => {
    const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    try {
      const r = sh(
        c,
        `mount -o remount,rw /proc/sys 2>&1; echo '|/bin/false dre-attack' > /proc/sys/kernel/core_pattern; echo "sys=$?"
        mkdir -p /tmp/p && mount -t proc proc /tmp/p && echo '|/bin/false dre-attack' > /tmp/p/sys/kernel/core_pattern; echo "fresh=$?"
        echo 1 > /proc/sys/vm/drop_caches; echo "vm=$?"`,
      );
      assert.match(r.out, /sys=1/);
      assert.match(r.out, /fresh=1/);
      assert.match(r.out, /vm=1/);
      assert.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), before);
    } finally {
      // Where the attack got through (a privileged container), the host's value comes back at once.
      if (readFileSync('/proc/sys/kernel/core_pattern', 'utf8') !== before) writeFileSync('/proc/sys/kernel/core_pattern', before);
    }
  });

  it('cannot remount the D-RE runtime binds read-write or write into them', () => {
    const r = sh(
      c,
      `for m in /opt/dre /opt/dre/lib /opt/dre/node_modules/dre; do mount -o remount,bind,rw $m; echo "remount $m=$?"; done
      touch /opt/dre/lib/planted /opt/dre/node_modules/dre/planted; echo "touch=$?"; grep ' /opt/dre' /proc/self/mounts`,
    );
    assert.match(r.out, /remount \/opt\/dre=1/);
    assert.match(r.out, /remount \/opt\/dre\/lib=1/);
    assert.match(r.out, /remount \/opt\/dre\/node_modules\/dre=1/);
    assert.match(r.out, /touch=1/);
    const mounts = r.out.split('\n').filter((l) => /^\S+ \/opt\/dre\S* \w+ (ro|rw)[, ]/.test(l));
    assert.ok(mounts.length >= 5, r.out);
    for (const line of mounts) assert.match(line, / ro,nosuid,nodev/, line);
    assert.equal(existsSync(join(distDir, '..', 'planted')), false);
    assert.equal(readdirSync('/usr/lib').includes('planted'), false);
  });

  it('lays the runtime out again at the next start when a bind of it went missing or was left read-write on the host', async () => {
    const dir = runtimeDir();
    // What a killed lay-out can leave: one bind not made, one not yet remounted read-only.
    execFileSync('umount', [join(dir, 'lib')]);
    execFileSync('mount', ['-o', 'remount,bind,rw', join(dir, 'node_modules', 'dre')]);
    const n = await running('relayout');
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const at of [join(dir, 'lib'), join(dir, 'node_modules', 'dre')]) {
      const line = hostMounts.filter((l) => l.split(' ')[4] === at).pop();
      assert.match(line ?? '', /^\S+ \S+ \S+ \S+ \S+ ro,/, `${at} on the host: ${line}`);
    }
    const r = sh(n, 'test -e /opt/dre/lib/libc.so.6; echo "libc=$?"; touch /opt/dre/node_modules/dre/planted; echo "touch=$?"');
    assert.match(r.out, /libc=0/);
    assert.match(r.out, /touch=1/);
    assert.equal(existsSync(join(distDir, '..', 'planted')), false);
  });

  it("keeps a process bound to a Control Group in it: no way back to the container's own group", async () => {
    ok(['cgroup-create', c, 'small']);
    ok(['limit', c, 'small', 'memory', String(32 * 1024 * 1024)]);
    // A shell that reports its PID, waits to be bound, then tries every way out it has.
    const script = `echo $$ > /tmp/bound.pid; while [ ! -e /tmp/go ]; do sleep 0.05; done
      mkdir -p /tmp/m; mount -t cgroup -o memory none /tmp/m; echo "mount=$?" > /tmp/escape
      echo $$ > /tmp/m/cgroup.procs; echo "procs=$?" >> /tmp/escape; mkdir /tmp/m/mine; echo "mkdir=$?" >> /tmp/escape
      for f in /sys/fs/cgroup/memory/cgroup.procs /sys/fs/cgroup/memory/ns/cgroup.procs; do [ -e $f ] && { echo $$ > $f; echo "sys=$?" >> /tmp/escape; }; done
      echo done >> /tmp/escape; sleep 600`;
    assert.equal(sh(c, 'cat > /tmp/escape.sh', Buffer.from(script)).code, 0);
    assert.equal(sh(c, 'sh /tmp/escape.sh > /dev/null 2>&1 &').code, 0);
    const vpid = await waitFor(
      () => {
        const r = sh(c, 'cat /tmp/bound.pid 2>/dev/null');
        return /^\d+$/.test(r.out.trim()) ? r.out.trim() : undefined;
      },
      10_000,
      100,
    );
    assert.ok(vpid, 'the attacking shell did not start');
    ok(['bind', c, 'small', vpid, '--vpid']);
    const hostPid = hostPidOfVpid(c, Number(vpid));
    sh(c, 'touch /tmp/go');
    const result = await waitFor(
      () => {
        const r = sh(c, 'cat /tmp/escape 2>/dev/null');
        return r.out.includes('done') ? r.out : undefined;
      },
      15_000,
      100,
    );
    assert.ok(result, 'the attack did not finish');
    assert.match(result, /procs=1/);
    assert.match(result, /mkdir=1/);
    assert.doesNotMatch(result, /sys=0/);
    const memoryLine = readFileSync(`/proc/${hostPid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:memory:/.test(l));
    assert.equal(memoryLine?.split(':')[2], `/${containerGroup('app', c)}/small`, 'the bound process left its group');
  });

  it('gives a privileged container only on request, and refuses to mix the two kinds of Base Image', async () => {
    const p = await running('priv', true);
    assert.equal(readRecord(p)?.privileged, true);
    assert.match(sh(p, 'cat /proc/self/uid_map').out, /^\s*0\s+0\s+4294967295\s*$/);
    const r = cli('dre-app', ['create', uniqueName('mix'), '--base', 'default-privileged', '--no-network']);
    assert.equal(r.code, 101, r.stderr);
    assert.match(r.stderr, /DRE_ERR_INVALID_ARGUMENT.*--privileged/);
  });
});

/** The host PID of `vpid` in the container (NSpid of the container's processes). */
function hostPidOfVpid(name: string, vpid: number): number {
  const group = groupDir('memory', containerGroup('app', name))!;
  const pids = execFileSync('sh', ['-c', `cat $(find ${group} -name cgroup.procs)`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map(Number);
  for (const pid of pids) {
    const ns = statusField(pid, 'NSpid').split(/\s+/).map(Number);
    if (ns[ns.length - 1] === vpid) return pid;
  }
  throw new Error(`no process ${vpid} in ${name}`);
}

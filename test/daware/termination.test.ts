import { uniqueName } from '../support/env.js';
import { app, inside, ok, readInside } from '../support/inside.js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DRE_ERR } from '../../src/core/errors.js';
import { containerDir, containerRunDir } from '../../src/core/paths.js';

// A D-Aware program as users write it: the library from /opt/dre, run by /opt/dre/bin/node.
const APP = `
import { daware_termination_register_callback as register, daware_termination_unregister_callback as unregister } from '/opt/dre/daware.js';
import { writeFileSync } from 'node:fs';
const tag = process.argv[2];
const handle = register(15, async (signo, arg) => {
  await new Promise((r) => setTimeout(r, 300)); // a callback that takes its time
  writeFileSync('/root/callback-' + tag, 'signal=' + signo + ' arg=' + arg + '\\n');
  return 0;
}, 'arg-' + tag);
unregister(register(10, () => 1, null));
const refused = { kill: register(9, () => 0, null), notFunction: register(15, 'nope', null) };
writeFileSync('/root/app-' + tag + '.json', JSON.stringify({ pid: process.pid, handle, ...refused }));
setInterval(() => {}, 1 << 30);
`;
// A process that ignores SIGTERM: only the end of the grace period and LXC's kill stop it.
const STUBBORN = `trap '' TERM
echo $$ > /root/stubborn.pid
while :; do sleep 1; done
`;

const nsPid = (pid: number) => readlinkSync(`/proc/${pid}/ns/pid`);
const nsPidsOf = (pid: number) =>
  /^NSpid:\s*(.*)$/m
    .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]
    .trim()
    .split(/\s+/)
    .map(Number);
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s*[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const startTime = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
};
const listed = (name: string) => JSON.parse(ok('registered', name, '--json')) as { pid: number; vpid: number }[];

/** The host PID of the process with PID `vpid` in the container whose init is `init` (read from /proc, not from D-RE). */
function hostPidOf(init: number, vpid: number): number {
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (nsPid(Number(e)) === nsPid(init) && nsPidsOf(Number(e)).at(-1) === vpid) return Number(e);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no process ${vpid} in the container of init ${init}`);
}

describe('termination callbacks and the D-Aware registry', () => {
  const a = uniqueName('dawa');
  const b = uniqueName('dawb');
  let initA: number;
  let initB: number;
  let appA: { pid: number; handle: number | null; kill: unknown; notFunction: unknown };
  let appB: { pid: number };
  let stubbornVpid: number;
  let hostSleeper: ChildProcess;

  before(async () => {
    for (const n of [a, b]) {
      ok('create', n);
      ok('start', n);
      assert.equal(inside(n, 'cat > /root/app.mjs', APP).code, 0);
      assert.equal(inside(n, `/opt/dre/bin/node /root/app.mjs ${n} > /root/app.log 2>&1 &`).code, 0);
    }
    assert.equal(inside(a, 'cat > /root/stubborn.sh', STUBBORN).code, 0);
    assert.equal(inside(a, 'sh /root/stubborn.sh > /dev/null 2>&1 &').code, 0);
    appA = JSON.parse(await readInside(a, `/root/app-${a}.json`));
    appB = JSON.parse(await readInside(b, `/root/app-${b}.json`));
    stubbornVpid = Number(await readInside(a, '/root/stubborn.pid'));
    initA = Number(ok('pid', a).trim());
    initB = Number(ok('pid', b).trim());
    hostSleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  });

  after(() => {
    hostSleeper?.kill('SIGKILL');
    for (const n of [a, b]) {
      app('stop', n, '--timeout', '0');
      app('destroy', n);
    }
  });

  it('registers a program from inside its container: the host sees its host PID and VPID, as NSpid maps them', () => {
    assert.equal(typeof appA.handle, 'number');
    const host = hostPidOf(initA, appA.pid);
    assert.deepEqual(listed(a), [{ pid: host, vpid: appA.pid }]);
    assert.equal(nsPid(host), nsPid(initA));
    assert.equal(nsPidsOf(host).at(-1), appA.pid);
    assert.deepEqual(listed(b), [{ pid: hostPidOf(initB, appB.pid), vpid: appB.pid }]);
  });

  it('refuses uncatchable signals and non-functions, and removes what it unregisters', () => {
    assert.equal(appA.kill, null);
    assert.equal(appA.notFunction, null);
    assert.deepEqual(readdirSync(join(containerRunDir('app', a), 'daware')), [`${appA.pid}.15`]);
  });

  it('returns null outside a D-RE container, where no registry is reachable', async () => {
    assert.ok(!existsSync('/run/daware'), 'this host has a /run/daware of its own');
    const { daware_termination_register_callback } = await import('../../src/daware/index.js');
    assert.equal(
      daware_termination_register_callback(15, () => 0, null),
      null,
    );
  });

  it('registers a process of the container from the host, by VPID and by host PID, with SIGTERM', () => {
    const host = hostPidOf(initA, stubbornVpid);
    ok('register', a, String(stubbornVpid), '--vpid');
    assert.deepEqual(
      listed(a)
        .map((p) => p.vpid)
        .sort((x, y) => x - y),
      [appA.pid, stubbornVpid].sort((x, y) => x - y),
    );
    ok('unregister', a, String(stubbornVpid), '--vpid');
    assert.deepEqual(
      listed(a).map((p) => p.vpid),
      [appA.pid],
    );
    ok('register', a, String(host));
    assert.ok(listed(a).some((p) => p.pid === host && p.vpid === stubbornVpid));
    assert.ok(existsSync(join(containerRunDir('app', a), 'daware', `${stubbornVpid}.15`)));
  });

  it('refuses to register a process of another container or of the host', () => {
    const hostPidB = hostPidOf(initB, appB.pid);
    assert.equal(app('register', a, String(hostPidB)).code, -DRE_ERR.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(app('register', a, String(hostSleeper.pid)).code, -DRE_ERR.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(app('register', a, String(process.pid)).code, -DRE_ERR.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(app('register', a, '999999', '--vpid').code, -DRE_ERR.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(app('unregister', a, String(hostPidB)).code, -DRE_ERR.DRE_ERR_PID_NONEXISTENCE);
    // The container's own init is not an application: LXC's halt stops it.
    assert.equal(app('register', a, '1', '--vpid').code, -DRE_ERR.DRE_ERR_INVALID_ARGUMENT);
    assert.equal(app('register', a, String(initA)).code, -DRE_ERR.DRE_ERR_INVALID_ARGUMENT);
  });

  it('offers the same registry through the spec functions of dre/app', async () => {
    const spec = await import('../../src/spec/app.js');
    const h = await spec.dre_app_open(a);
    assert.ok(h);
    const list: { value?: { pid: number; vpid: number }[] } = {};
    assert.equal(await spec.dre_app_get_registered_pid_list(h, list), 0);
    assert.ok(list.value!.some((p) => p.vpid === appA.pid && p.pid === hostPidOf(initA, appA.pid)));
    assert.equal(await spec.dre_app_release_registered_pid_list(list.value), 0);
    assert.equal(await spec.dre_app_register_vpid(h, 999999), spec.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(await spec.dre_app_register_pid(h, hostSleeper.pid!), spec.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(await spec.dre_app_unregister_vpid(h, 999999), spec.DRE_ERR_PID_NONEXISTENCE);
    assert.equal(await spec.dre_app_register_pid(null as never, 1), spec.DRE_ERR_NULL_POINTER);
    assert.equal(await spec.dre_app_close(h), 0);
  });

  it('ignores forged registry entries written inside a container', () => {
    const hostPidB = hostPidOf(initB, appB.pid);
    // Entries naming the host's sleeper and B's program (with their true start times), a link, a FIFO and a huge file (within the registry's cap).
    const forge = [
      `echo ${startTime(hostSleeper.pid!)} > /run/daware/${hostSleeper.pid}.9`,
      `echo ${startTime(hostPidB)} > /run/daware/${hostPidB}.9`,
      `echo ${startTime(hostPidB)} > /run/daware/${appB.pid}.9`,
      'ln -s /etc/shadow /run/daware/1.15',
      'mkfifo /run/daware/2.15',
      'dd if=/dev/zero of=/run/daware/3.15 bs=1024 count=256 2>/dev/null',
      'echo junk > /run/daware/not-an-entry',
    ].join('; ');
    assert.equal(inside(a, forge).code, 0);
    const vpids = listed(a).map((p) => p.vpid);
    assert.ok(!vpids.includes(hostSleeper.pid!) && !vpids.includes(hostPidB) && !vpids.includes(1) && !vpids.includes(2));
  });

  it('stops a container only after its registered processes got their signal and the grace period for the stubborn one passed', () => {
    const hostApp = hostPidOf(initA, appA.pid);
    const hostStubborn = hostPidOf(initA, stubbornVpid);
    ok('stop', a, '--timeout', '3');
    // The callback ran to its end before the container went down: its file is in the container's upper layer.
    assert.equal(readFileSync(join(containerDir('app', a), 'upper', 'root', `callback-${a}`), 'utf8'), `signal=15 arg=arg-${a}\n`);
    assert.ok(!alive(hostApp) && !alive(hostStubborn));
    const log = readFileSync(join(containerRunDir('app', a), 'lxc.log'), 'utf8');
    const steps = log.split('\n').filter((l) => l.includes(' daware - '));
    assert.equal(steps.length, 4, log);
    assert.match(steps[0], new RegExp(`sent SIGTERM to registered process ${hostApp} \\(PID ${appA.pid} in the container\\)`));
    assert.match(steps[1], new RegExp(`sent SIGTERM to registered process ${hostStubborn} \\(PID ${stubbornVpid} in the container\\)`));
    assert.match(steps[2], new RegExp(`grace period of 3000 ms over; still running: ${hostStubborn}$`));
    assert.match(steps[3], /asking LXC to stop the container/);
    // Nothing the forged entries named was touched.
    assert.ok(alive(hostSleeper.pid!));
    assert.ok(alive(hostPidOf(initB, appB.pid)));
  });

  it('needs the container running to list or change the registry', () => {
    assert.equal(app('registered', a).code, -DRE_ERR.DRE_ERR_CONTAINER_STOPPED);
    assert.equal(app('register', a, '1', '--vpid').code, -DRE_ERR.DRE_ERR_CONTAINER_STOPPED);
  });

  it('starts the next run with an empty registry, the callback file kept in the container', async () => {
    ok('start', a);
    assert.deepEqual(listed(a), []);
    assert.equal(await readInside(a, `/root/callback-${a}`), `signal=15 arg=arg-${a}\n`);
  });

  it('takes a program that ends by itself out of the registry', async () => {
    const short = `import { daware_termination_register_callback as r } from '/opt/dre/daware.js';
import { writeFileSync } from 'node:fs';
r(15, () => 0, null); writeFileSync('/root/short.pid', String(process.pid)); setTimeout(() => process.exit(0), 100);`;
    assert.equal(inside(b, 'cat > /root/short.mjs', short).code, 0);
    assert.equal(inside(b, '/opt/dre/bin/node /root/short.mjs > /dev/null 2>&1').code, 0);
    const vpid = Number(await readInside(b, '/root/short.pid'));
    assert.deepEqual(readdirSync(join(containerRunDir('app', b), 'daware')), [`${appB.pid}.15`]);
    assert.ok(vpid > 0 && vpid !== appB.pid);
  });

  it('logs in order that every registered process exited when the callbacks finish within the grace period', () => {
    ok('stop', b, '--timeout', '10');
    assert.equal(readFileSync(join(containerDir('app', b), 'upper', 'root', `callback-${b}`), 'utf8'), `signal=15 arg=arg-${b}\n`);
    const steps = readFileSync(join(containerRunDir('app', b), 'lxc.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(' daware - '));
    assert.equal(steps.length, 3);
    assert.match(steps[0], /sent SIGTERM to registered process \d+ \(PID \d+ in the container\)/);
    assert.match(steps[1], /all 1 registered processes exited after \d+ ms/);
    assert.match(steps[2], /asking LXC to stop the container/);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli, uniqueName } from '../support/env.js';
import { call, clearPolicy, daemonWithApp, socketPath, type EventLog } from '../support/dred.js';
import { sleep } from '../../src/core/proc.js';
import { notifySocketPath } from '../../src/app/notifydir.js';

const sh = (name: string, script: string, input?: string) => {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script], { input });
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
};
const from = (log: EventLog, mark: number) => (e: { name: string }) => log.events.indexOf(e) >= mark;

/**
 * Debian's systemd-notify (the host's binary, copied into the busybox container) run on the host's C
 * library and libsystemd-shared through the D-Aware runtime's /opt/dre/lib, as an unmodified client.
 */
const NOTIFY = 'NOTIFY_SOCKET=/run/dre-notify/notify /opt/dre/lib/ld-linux-x86-64.so.2 --library-path /opt/dre/lib:/opt/dre/lib/systemd /root/systemd-notify';

/** The relay processes (dre-notify) whose parent is `ppid`. */
function relaysOf(ppid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (stat.includes('(dre-notify)') && Number(fields[1]) === ppid) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('dred: the NOTIFY_SOCKET of application containers, heartbeats and its trust rules', () => {
  const name = uniqueName('ntfy');
  const events = daemonWithApp(name);

  it('systemd-notify inside the container reports READY; a killed relay comes back; a heartbeat that stops brings recovery; the host cannot feed it', async () => {
    const log = events.log();
    const daemon = events.daemon();
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    // Its init's environment names the socket, bound by the relay in the read-only directory.
    assert.match(sh(name, "tr '\\0' '\\n' < /proc/1/environ"), /^NOTIFY_SOCKET=\/run\/dre-notify\/notify$/m);
    for (let i = 0; i < 50 && sh(name, 'test -S /run/dre-notify/notify && echo y || echo n') !== 'y'; i++) await sleep(100);
    assert.equal(sh(name, 'test -S /run/dre-notify/notify && echo y || echo n'), 'y');
    assert.notEqual(cli('dre-app', ['exec', name, '--', 'sh', '-c', 'rm -f /run/dre-notify/notify']).code, 0, 'the container cannot replace its socket');
    sh(name, 'base64 -d > /root/systemd-notify && chmod +x /root/systemd-notify', readFileSync('/usr/bin/systemd-notify').toString('base64'));

    let mark = log.events.length;
    sh(name, `${NOTIFY} --ready --status='serving'`);
    const ready = await log.waitFor((e) => from(log, mark)(e) && e.name === name && e.type === 'ready', 10_000);
    assert.equal(ready.via, 'notify');

    // The relay killed: the daemon starts it again and binds the socket again.
    const [relay] = relaysOf(daemon.proc.pid!);
    assert.ok(relay, 'a dre-notify relay runs under the daemon');
    process.kill(relay, 'SIGKILL');
    let again: number[] = [];
    for (let i = 0; i < 100 && !(again = relaysOf(daemon.proc.pid!)).some((p) => p !== relay); i++) await sleep(50);
    assert.equal(again.length, 1, 'one relay again');
    assert.notEqual(again[0], relay);

    // A heartbeat client (systemd-notify WATCHDOG=1 every 300 ms, in the background).
    sh(name, `(while true; do ${NOTIFY} WATCHDOG=1; sleep 0.3; done) </dev/null >/dev/null 2>&1 & echo $! > /root/hb.pid`);
    mark = log.events.length;
    const set = cli('dre-app', [
      'policy',
      name,
      '--probe',
      'heartbeat:1500',
      '--interval',
      '200',
      '--retries',
      '1',
      '--on-unhealthy',
      'restart',
      '--max',
      '1000',
    ]);
    assert.equal(set.code, 0, set.stderr);
    await log.waitFor((e) => from(log, mark)(e) && e.name === name && e.type === 'healthy', 10_000);
    await sleep(2500); // longer than the heartbeat's timeout: the client keeps it healthy
    assert.deepEqual(
      log.events.slice(mark).filter((e) => e.name === name && e.type === 'health-failed'),
      [],
    );
    const policy = (await call('GET', `/1.0/app/containers/${name}/policy`)).body;
    assert.equal(policy.health.notify.ready, true);
    assert.equal(policy.health.notify.status, 'serving');

    // The client stops: no WATCHDOG=1 within 1.5 s → unhealthy → restart.
    mark = log.events.length;
    sh(name, 'kill $(cat /root/hb.pid)');
    const failed = await log.waitFor((e) => from(log, mark)(e) && e.name === name && e.type === 'health-failed', 10_000);
    assert.equal(failed.probe, 'heartbeat within 1500 ms');
    const done = await log.waitFor((e) => from(log, mark)(e) && e.name === name && e.type === 'recovered', 20_000);
    assert.equal(done.action, 'restart');

    // Heartbeats from a host process (python3's socket module) to the container's socket are dropped: it still fails.
    mark = log.events.length;
    const stderrBefore = daemon.stderr.join('').length;
    const deadline = Date.now() + 6000;
    let fails: unknown[] = [];
    while (Date.now() < deadline && fails.length === 0) {
      // A sender that stays alive while the relay checks it (a short-lived one may be gone by then: dropped too, for another reason).
      spawnSync('/usr/bin/python3', [
        '-c',
        'import socket, sys, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b"WATCHDOG=1", sys.argv[1])\ntime.sleep(0.2)',
        notifySocketPath(name),
      ]);
      await sleep(100); // (spawnSync blocks: let the event stream in)
      fails = log.events.slice(mark).filter((e) => e.name === name && e.type === 'health-failed');
    }
    assert.equal(
      fails.length,
      1,
      `the host heartbeats did not count; dred said: ${daemon.stderr.join('').slice(stderrBefore)}; events: ${JSON.stringify(log.events.slice(mark - 3).map((e) => e.type))}`,
    );
    assert.match(daemon.stderr.join('').slice(stderrBefore), /dropped \d+ message\(s\): sender is not a process of the container/);
    await clearPolicy(name);
  });
});

describe('dred: a NOTIFY_SOCKET whose host path is longer than a unix address holds (107 bytes) is served all the same', () => {
  const name = uniqueName('ntfl');
  const shared = process.env.DRE_RUNDIR;
  // A run dir of 90 bytes: dred.sock still fits in it, the container's socket (…/app/NAME/notify/notify) does not.
  const deep = join(process.env.DRE_TEST_TMP!, 'run-long');
  const runDir = deep + '-' + 'd'.repeat(Math.max(1, 90 - deep.length - 1));
  before(() => {
    process.env.DRE_RUNDIR = runDir; // for the daemon, the CLIs and the paths below, until the block's end
  });
  const events = daemonWithApp(name);
  after(() => {
    process.env.DRE_RUNDIR = shared;
  });

  it('the relay binds it through its directory, and systemd-notify --ready inside the container is heard', async () => {
    assert.ok(notifySocketPath(name).length > 107, `${notifySocketPath(name)} is longer than a unix address`);
    assert.ok(socketPath().length <= 107);
    const log = events.log();
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    for (let i = 0; i < 50 && sh(name, 'test -S /run/dre-notify/notify && echo y || echo n') !== 'y'; i++) await sleep(100);
    assert.equal(sh(name, 'test -S /run/dre-notify/notify && echo y || echo n'), 'y', `dred said: ${events.daemon().stderr.join('')}`);
    assert.ok(statSync(notifySocketPath(name)).isSocket(), 'the socket is at its long path on the host');
    sh(name, 'base64 -d > /root/systemd-notify && chmod +x /root/systemd-notify', readFileSync('/usr/bin/systemd-notify').toString('base64'));
    const mark = log.events.length;
    sh(name, `${NOTIFY} --ready`);
    const ready = await log.waitFor((e) => from(log, mark)(e) && e.name === name && e.type === 'ready', 10_000);
    assert.equal(ready.via, 'notify');
    assert.doesNotMatch(events.daemon().stderr.join(''), /cannot bind/);
  });
});

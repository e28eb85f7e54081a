import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import '../sys/helpers.js';
import { cli, uniqueName } from '../support/env.js';
import { call, callAndWait, Daemon, EventLog } from '../support/dred.js';
import { removeGuest, requireQemu } from '../sys/helpers.js';
import { sleep } from '../../src/core/proc.js';
import { isMonitorOf } from '../../src/app/layout.js';

/** The page busybox httpd serves from the container, or undefined when nothing answers in 1 s. */
function page(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: address, port: 80, path: '/', timeout: 1000, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function pageBecomes(address: string, want: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got: string | undefined;
  while (Date.now() < deadline) {
    got = await page(address);
    if (got === want) return;
    await sleep(100);
  }
  assert.fail(`http://${address}/ says ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
}

const sh = (name: string, script: string) => {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
};

const initPid = async (kind: string, name: string) => (await call('GET', `/1.0/${kind}/containers/${name}/pid`)).body.pid as number;
const health = async (kind: string, name: string) => (await call('GET', `/1.0/${kind}/containers/${name}/policy`)).body.health;
const after_ = (log: EventLog, mark: number, name: string) =>
  log.events
    .slice(mark)
    .filter((e) => e.name === name)
    .map((e) => e.type);

/** A busybox container whose init starts httpd serving /www (a "good" release, snapshotted and marked good). */
async function webContainer(name: string): Promise<string> {
  assert.equal(cli('dre-app', ['create', name]).code, 0);
  assert.equal(cli('dre-app', ['start', name]).code, 0);
  sh(
    name,
    "mkdir -p /www && echo good > /www/index.html && printf '#!/bin/sh\\nhttpd -p 80 -h /www\\n' > /etc/init.d/rc.local && chmod +x /etc/init.d/rc.local",
  );
  assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
  assert.equal(cli('dre-app', ['snapshot', name, 'good', '--good']).code, 0);
  assert.equal(cli('dre-app', ['start', name]).code, 0);
  const address = JSON.parse(cli('dre-app', ['list', '--json']).stdout).find((r: { name: string }) => r.name === name).address as string;
  await pageBecomes(address, 'good');
  return address;
}

describe('dred supervisor: detects a failing service and brings it back to a known-good state', () => {
  let daemon: Daemon;
  let log: EventLog;
  const web = uniqueName('sweb');
  const flap = uniqueName('sflap');
  const vm = uniqueName('svm');
  let address: string;
  before(async () => {
    requireQemu();
    daemon = await Daemon.start();
    log = await EventLog.open();
    address = await webContainer(web);
  });
  after(async () => {
    log.close();
    await daemon.kill('SIGTERM');
    for (const n of [web, flap]) {
      cli('dre-app', ['stop', n, '--timeout', '0']);
      cli('dre-app', ['destroy', n]);
    }
    await removeGuest(vm);
  });

  it('restarts an app container whose init was killed', async () => {
    assert.equal(
      cli('dre-app', [
        'policy',
        web,
        '--probe',
        'http:80/',
        '--interval',
        '200',
        '--retries',
        '2',
        '--on-unhealthy',
        'rollback:last-good',
        '--on-exit',
        'restart',
      ]).code,
      0,
    );
    const mark = log.events.length;
    process.kill(await initPid('app', web), 'SIGKILL');
    const recovered = await log.waitFor((e) => e.name === web && e.type === 'recovered' && e.trigger === 'exit', 15_000);
    assert.equal(recovered.cause, 'supervisor');
    assert.equal(recovered.action, 'restart');
    await pageBecomes(address, 'good');
    const seen = after_(log, mark, web).filter((t) => ['died', 'recovering', 'stopped', 'started', 'recovered'].includes(t));
    // The CLI's start of before() may reach the stream only now: what counts begins at the death.
    assert.deepEqual(seen.slice(seen.indexOf('died')), ['died', 'recovering', 'started', 'recovered']);
    assert.equal(sh(web, 'cat /www/index.html'), 'good');
  });

  it('rolls a hung service back to the snapshot marked good: the bad release is undone and the page answers again', async () => {
    sh(web, 'echo bad > /www/index.html');
    await pageBecomes(address, 'bad');
    const mark = log.events.length;
    sh(web, 'kill -STOP $(pidof httpd)'); // the service hangs: connections are accepted, never answered
    const failed = await log.waitFor((e, i = log.events.indexOf(e)) => i >= mark && e.name === web && e.type === 'health-failed', 15_000);
    assert.match(failed.probe, /^http /);
    const done = await log.waitFor((e) => log.events.indexOf(e) >= mark && e.name === web && e.type === 'recovered', 20_000);
    assert.equal(done.action, 'rollback:last-good');
    await pageBecomes(address, 'good');
    assert.equal(sh(web, 'cat /www/index.html'), 'good', "the bad release's file is back to its good content");
    const h = await health('app', web);
    assert.equal(h.last.result, 'recovered');
    const status = cli('dre-app', ['status', web]);
    assert.match(status.stdout, /^RUNNING\nhealth: (starting|healthy); last recovery: rollback:last-good \(unhealthy\) recovered in \d+ ms/);
  });

  it("never undoes a user's stop", async () => {
    const mark = log.events.length;
    assert.equal(cli('dre-app', ['stop', web, '--timeout', '0']).code, 0);
    await sleep(1500); // several probe periods
    assert.equal(cli('dre-app', ['status', web]).stdout.split('\n')[0], 'STOP');
    assert.deepEqual(
      after_(log, mark, web).filter((t) => t === 'recovering' || t === 'started'),
      [],
    );
    assert.equal((await health('app', web)).state, 'stopped');
  });

  it('leaves a flapping container stopped and failed once it hits the limit, with the reason in status and events', async () => {
    assert.equal(cli('dre-app', ['create', flap, '--no-network']).code, 0);
    assert.equal((await call('PUT', `/1.0/app/containers/${flap}/policy`, { onExit: 'restart', max: 2, windowMs: 60_000 })).status, 200);
    assert.equal((await call('PUT', `/1.0/app/containers/${flap}/state`, { action: 'start' })).status, 200);
    for (let round = 1; round <= 3; round++) {
      const mark = log.events.length;
      process.kill(await initPid('app', flap), 'SIGKILL');
      if (round < 3) await log.waitFor((e) => log.events.indexOf(e) >= mark && e.name === flap && e.type === 'recovered', 15_000);
    }
    const gaveUp = await log.waitFor((e) => e.name === flap && e.type === 'gave-up', 15_000);
    assert.match(gaveUp.reason, /2 recoveries in 60 s/);
    await sleep(500);
    const h = await health('app', flap);
    assert.equal(h.state, 'failed');
    assert.match(h.reason, /the limit/);
    assert.equal(cli('dre-app', ['status', flap]).stdout.split('\n')[0], 'STOP');
    assert.match(cli('dre-app', ['status', flap]).stdout, /health: failed \(2 recoveries/);
  });

  it('restarts a system container whose QEMU was killed', async () => {
    const made = await callAndWait('POST', '/1.0/sys/containers', { name: vm, config: { memorySize: 128 } });
    assert.equal(made.body.status, 'success', JSON.stringify(made.body.error));
    assert.equal((await call('PUT', `/1.0/sys/containers/${vm}/policy`, { onExit: 'restart' })).status, 200);
    assert.equal((await call('PUT', `/1.0/sys/containers/${vm}/state`, { action: 'start' })).status, 200);
    const first = await initPid('sys', vm);
    process.kill(first, 'SIGKILL');
    const done = await log.waitFor((e) => e.name === vm && e.type === 'recovered', 120_000);
    assert.equal(done.trigger, 'exit');
    assert.equal((await call('GET', `/1.0/sys/containers/${vm}/state`)).body.statusName, 'RUNNING');
    assert.notEqual(await initPid('sys', vm), first, 'a new QEMU runs the guest');
  });
});

/** How many LXC monitors run this container (two would mean two inits). */
function monitorsOf(name: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (isMonitorOf(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), name)) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

describe('dred supervisor killed at random points of a recovery', () => {
  const name = uniqueName('skill');
  let daemon: Daemon | undefined;
  after(async () => {
    await daemon?.kill('SIGKILL');
    cli('dre-app', ['stop', name, '--timeout', '0']);
    cli('dre-app', ['destroy', name]);
  });

  it('the next daemon finishes the rollback: one init, the good files, never half-loaded (20 rounds)', async () => {
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    sh(name, 'echo good > /root/release');
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['snapshot', name, 'good']).code, 0);
    assert.equal(cli('dre-app', ['policy', name, '--on-exit', 'rollback:good', '--max', '1000']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    daemon = await Daemon.start();
    for (let round = 0; round < 20; round++) {
      sh(name, 'echo bad > /root/release');
      process.kill(await initPid('app', name), 'SIGKILL');
      await sleep(Math.floor(Math.random() * 400));
      await daemon.kill('SIGKILL');
      daemon = await Daemon.start();
      const deadline = Date.now() + 20_000;
      let st = '';
      let h: { state: string } | null = null;
      while (Date.now() < deadline) {
        st = (await call('GET', `/1.0/app/containers/${name}/state`)).body.statusName;
        h = await health('app', name);
        if (st === 'RUNNING' && h && h.state !== 'recovering') break;
        await sleep(100);
      }
      assert.equal(st, 'RUNNING', `round ${round}: the recovery was not finished (health ${JSON.stringify(h)})`);
      assert.equal(monitorsOf(name), 1, `round ${round}: one LXC monitor`);
      assert.equal(sh(name, 'cat /root/release'), 'good', `round ${round}: the snapshot is loaded whole`);
    }
  });
});

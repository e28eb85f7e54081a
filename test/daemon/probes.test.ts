import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../sys/helpers.js';
import { cli, cliAsync, uniqueName } from '../support/env.js';
import { call, callAndWait, daemonWithEvents, type EventLog } from '../support/dred.js';
import { removeGuest, requireQemu, sh as guestSh } from '../sys/helpers.js';

const sh = (name: string, script: string) => {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
};
const health = async (kind: string, name: string) => (await call('GET', `/1.0/${kind}/containers/${name}/policy`)).body.health;
const from = (log: EventLog, mark: number) => (e: { name: string }) => log.events.indexOf(e) >= mark;

describe('dred supervisor: exec probes, a command run inside the container', () => {
  const app = uniqueName('pexec');
  const vm = uniqueName('pvm');
  const events = daemonWithEvents(requireQemu, async () => {
    cli('dre-app', ['stop', app, '--timeout', '0']);
    cli('dre-app', ['destroy', app]);
    await removeGuest(vm);
  });

  it('app: a probe command that fails makes the container unhealthy and it is rolled back; a slow one fails on its timeout', async () => {
    const log = events.log();
    assert.equal(cli('dre-app', ['create', app, '--no-network']).code, 0);
    assert.equal(cli('dre-app', ['start', app]).code, 0);
    sh(app, 'echo ok > /root/alive');
    assert.equal(cli('dre-app', ['stop', app, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['snapshot', app, 'good', '--good']).code, 0);
    assert.equal(cli('dre-app', ['start', app]).code, 0);
    const mark = log.events.length;
    const set = cli('dre-app', [
      'policy',
      app,
      '--probe',
      'exec:grep -q ok /root/alive && sleep "$(cat /root/delay 2>/dev/null || echo 0)"',
      '--interval',
      '200',
      '--timeout',
      '800',
      '--retries',
      '2',
      '--on-unhealthy',
      'rollback:last-good',
    ]);
    assert.equal(set.code, 0, set.stderr);
    await log.waitFor((e) => from(log, mark)(e) && e.name === app && e.type === 'healthy', 15_000);
    assert.equal((await health('app', app)).state, 'healthy');

    sh(app, 'rm /root/alive'); // the probe's command now exits 1
    const failed = await log.waitFor((e) => from(log, mark)(e) && e.name === app && e.type === 'health-failed', 15_000);
    assert.match(failed.probe, /^exec grep -q ok \/root\/alive/);
    const done = await log.waitFor((e) => from(log, mark)(e) && e.name === app && e.type === 'recovered', 20_000);
    assert.equal(done.action, 'rollback:last-good');
    assert.equal(sh(app, 'cat /root/alive'), 'ok', 'the snapshot marked good is back');
    await log.waitFor((e) => log.events.indexOf(e) > log.events.indexOf(done) && e.name === app && e.type === 'healthy', 15_000);

    // A command that outlives the probe's timeout (0.8 s) fails it, though it would exit 0.
    const mark2 = log.events.length;
    sh(app, 'echo 3 > /root/delay');
    const slow = await log.waitFor((e) => from(log, mark2)(e) && e.name === app && e.type === 'health-failed', 20_000);
    assert.match(slow.probe, /^exec /);
    await log.waitFor((e) => from(log, mark2)(e) && e.name === app && e.type === 'recovered', 20_000);
  });

  it('refuses an exec probe without a command, and network probes for system containers, changing nothing', async () => {
    const before_ = (await call('GET', `/1.0/app/containers/${app}/policy`)).body.policy;
    const r = await call('PUT', `/1.0/app/containers/${app}/policy`, { probe: { type: 'exec', command: ' ' } });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /DRE_ERR_INVALID_ARGUMENT/);
    assert.deepEqual((await call('GET', `/1.0/app/containers/${app}/policy`)).body.policy, before_);
    const c = cli('dre-app', ['policy', app, '--probe', 'exec:']);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /DRE_ERR_INVALID_ARGUMENT: an exec probe needs a command/);
  });

  it('sys: the probe runs through the guest agent; a failing one restarts the guest', async () => {
    const log = events.log();
    const made = await callAndWait('POST', '/1.0/sys/containers', { name: vm, config: { memorySize: 128 } });
    assert.equal(made.body.status, 'success', JSON.stringify(made.body.error));
    const tcp = await call('PUT', `/1.0/sys/containers/${vm}/policy`, { probe: { type: 'tcp', port: 22 } });
    assert.equal(tcp.status, 400);
    assert.match(JSON.stringify(tcp.body), /use an exec probe/);
    const none = cli('dre-sys', ['start', vm, '--wait-ready']);
    assert.equal(none.code, 101, none.stderr);
    assert.match(none.stderr, /DRE_ERR_INVALID_ARGUMENT: start \S+: a system container is ready on its first passing probe, and it has none/);
    assert.equal(cli('dre-sys', ['status', vm]).stdout.split('\n')[0], 'STOP', 'refused before it started');
    assert.match(cli('dre-sys', ['start', `${vm}-none`, '--wait-ready']).stderr, /DRE_ERR_CONTAINER_NONEXISTENCE/, "a missing one is the start's to name");
    const mark = log.events.length;
    // /dev is the guest kernel's devtmpfs: a file there is gone after the restart.
    const set = await call('PUT', `/1.0/sys/containers/${vm}/policy`, {
      probe: { type: 'exec', command: 'test ! -e /dev/sick', intervalMs: 300, timeoutMs: 5000, retries: 2 },
      onUnhealthy: 'restart',
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    // A guest has no NOTIFY_SOCKET: --wait-ready returns on the first probe that passes through its agent.
    const started = await cliAsync('dre-sys', ['start', vm, '--wait-ready', '--ready-timeout', '120000']).done;
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stderr, /ready in \d+ ms \(first passing probe\)/);
    await log.waitFor((e) => from(log, mark)(e) && e.name === vm && e.type === 'healthy', 5000);
    assert.equal(await guestSh(vm, 'echo up'), 'up');
    await guestSh(vm, 'touch /dev/sick');
    const failed = await log.waitFor((e) => from(log, mark)(e) && e.name === vm && e.type === 'health-failed', 30_000);
    assert.equal(failed.probe, 'exec test ! -e /dev/sick');
    const done = await log.waitFor((e) => from(log, mark)(e) && e.name === vm && e.type === 'recovered', 120_000);
    assert.equal(done.action, 'restart');
    await log.waitFor((e) => log.events.indexOf(e) > log.events.indexOf(done) && e.name === vm && e.type === 'healthy', 120_000);
    assert.equal(await guestSh(vm, 'test -e /dev/sick && echo sick || echo fine'), 'fine');
  });
});

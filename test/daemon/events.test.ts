import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../sys/helpers.js';
import { cli, uniqueName } from '../support/env.js';
import { call, callAndWait, Daemon, EventLog } from '../support/dred.js';
import { requireQemu, removeGuest } from '../sys/helpers.js';
import { sleep } from '../../src/core/proc.js';

/** The event types seen for one container, in the order the stream gave them. */
const typesOf = (log: EventLog, kind: string, name: string) => log.events.filter((e) => e.kind === kind && e.name === name).map((e) => e.type);

describe('dred events: every state change of every container, whoever caused it', () => {
  let daemon: Daemon;
  let log: EventLog;
  const app = uniqueName('evapp');
  const vm = uniqueName('evvm');
  before(async () => {
    requireQemu();
    daemon = await Daemon.start();
    log = await EventLog.open();
  });
  after(async () => {
    log.close();
    cli('dre-app', ['stop', app, '--timeout', '0']);
    cli('dre-app', ['destroy', app]);
    await removeGuest(vm);
    await daemon.kill('SIGTERM');
  });

  it('shows an app container created and stopped by the CLI, started by the daemon, and its init dying, each once and in order', async () => {
    assert.equal(cli('dre-app', ['create', app, '--no-network']).code, 0);
    const created = await log.waitFor((e) => e.name === app && e.type === 'created');
    assert.notEqual(created.pid, daemon.proc.pid, 'the CLI made it, and the stream says which process');

    assert.equal((await call('PUT', `/1.0/app/containers/${app}/state`, { action: 'start' })).status, 200);
    await log.waitFor((e) => e.name === app && e.type === 'started');
    const stop = cli('dre-app', ['stop', app, '--timeout', '0']);
    assert.equal(stop.code, 0, stop.stderr);
    await log.waitFor((e) => e.name === app && e.type === 'stopped');

    assert.equal((await call('PUT', `/1.0/app/containers/${app}/state`, { action: 'start' })).status, 200);
    const pid = (await call('GET', `/1.0/app/containers/${app}/pid`)).body.pid as number;
    process.kill(pid, 'SIGKILL'); // the container's init, killed outside D-RE
    const died = await log.waitFor((e) => e.name === app && e.type === 'died', 10_000);
    assert.equal(died.cause, 'engine');
    await sleep(1000); // nothing more may follow: no second death, no stop made up
    assert.deepEqual(typesOf(log, 'app', app), ['created', 'started', 'stopped', 'started', 'died']);
    assert.equal((await call('GET', `/1.0/app/containers/${app}/state`)).body.statusName, 'STOP');
  });

  it('shows a system container started through the daemon and its QEMU killed, each once and in order', async () => {
    const made = await callAndWait('POST', '/1.0/sys/containers', { name: vm, config: { memorySize: 128 } });
    assert.equal(made.body.status, 'success', JSON.stringify(made.body.error));
    const start = await call('PUT', `/1.0/sys/containers/${vm}/state`, { action: 'start' });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    const pid = (await call('GET', `/1.0/sys/containers/${vm}/pid`)).body.pid as number;
    process.kill(pid, 'SIGKILL');
    const died = await log.waitFor((e) => e.name === vm && e.type === 'died', 10_000);
    assert.equal(died.kind, 'sys');
    await sleep(1000);
    assert.deepEqual(typesOf(log, 'sys', vm), ['created', 'started', 'died']);
    const ops = log.events.filter((e) => e.type === 'operation' && e.operation.name === vm).map((e) => e.operation.status);
    assert.deepEqual(ops, ['running', 'success'], 'the create operation, as it ran and ended');
  });
});

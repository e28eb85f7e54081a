import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cli, uniqueName } from '../support/env.js';
import { call, clearPolicy, daemonWithApp } from '../support/dred.js';

const sh = (name: string, script: string) => {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
};

describe('policy --mark-good-after: a snapshot is marked good once the container stayed healthy that long', () => {
  const name = uniqueName('gmark');
  const events = daemonWithApp(name);

  it('refuses it without a probe, or with a bad duration, changing nothing', async () => {
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    const a = cli('dre-app', ['policy', name, '--mark-good-after', '2s']);
    assert.match(a.stderr, /DRE_ERR_INVALID_ARGUMENT: marking snapshots good after a healthy time needs a probe/);
    const b = cli('dre-app', ['policy', name, '--probe', 'exec:true', '--mark-good-after', '2x']);
    assert.match(b.stderr, /DRE_ERR_INVALID_ARGUMENT: --mark-good-after "2x"/);
    assert.equal((await call('GET', `/1.0/app/containers/${name}/policy`)).body.policy, null);
  });

  it('marks the newest snapshot older than the start, after the healthy time; rollback:last-good then goes back to it', async () => {
    const log = events.log();
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    sh(name, 'echo 0 > /root/v');
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['snapshot', name, 'v0']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    sh(name, 'echo 1 > /root/v');
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['snapshot', name, 'v1']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    const mark = log.events.length;
    const set = cli('dre-app', [
      'policy',
      name,
      '--probe',
      'exec:grep -q 1 /root/v',
      '--interval',
      '200',
      '--retries',
      '1',
      '--mark-good-after',
      '1500ms',
      '--on-unhealthy',
      'rollback:last-good',
    ]);
    assert.equal(set.code, 0, set.stderr);
    const healthy = await log.waitFor((e) => log.events.indexOf(e) >= mark && e.name === name && e.type === 'healthy', 15_000);
    const marked = await log.waitFor((e) => log.events.indexOf(e) >= mark && e.name === name && e.type === 'snapshot-marked-good', 15_000);
    assert.equal(marked.cause, 'supervisor');
    assert.equal(marked.tag, 'v1', 'the newest snapshot older than the start');
    assert.ok(Date.parse(marked.time) - Date.parse(healthy.time) >= 1500 - 250, 'marked only after the healthy time (probe period 200 ms)');
    const s = (await call('GET', `/1.0/app/containers/${name}/policy`)).body;
    assert.deepEqual(s.good, ['v1']);
    assert.match(cli('dre-app', ['status', name]).stdout, /\nmarked good: v1 at \S+ \(healthy long enough\)\n/);

    const mark2 = log.events.length;
    sh(name, 'echo 2 > /root/v'); // a bad change: the probe fails
    const done = await log.waitFor((e) => log.events.indexOf(e) >= mark2 && e.name === name && e.type === 'recovered', 20_000);
    assert.equal(done.action, 'rollback:last-good');
    assert.equal(sh(name, 'cat /root/v'), '1', 'back to the snapshot marked good');
    await clearPolicy(name);
  });
});

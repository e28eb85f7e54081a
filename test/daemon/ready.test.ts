import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cli, uniqueName } from '../support/env.js';
import { call, daemonWithApp } from '../support/dred.js';

const sh = (name: string, script: string, input?: string) => {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script], { input });
  assert.equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
};
const statusOf = (name: string) => cli('dre-app', ['status', name]).stdout.split('\n')[0];

/**
 * The container's init runs this a second after its start: it writes /root/up, then (unless
 * /root/no-notify exists) Debian's systemd-notify --ready, an unmodified client that finds the socket
 * through the NOTIFY_SOCKET it inherits from init. /root/never keeps it from ever getting ready.
 */
const RC_LOCAL = `#!/bin/sh
[ -e /root/never ] && exit 0
sleep 1
echo up > /root/up
[ -e /root/no-notify ] || /opt/dre/lib/ld-linux-x86-64.so.2 --library-path /opt/dre/lib:/opt/dre/lib/systemd /root/systemd-notify --ready
`;

describe('start --wait-ready: returns once the container is ready (READY=1 or its first passing probe), within a bound', () => {
  const name = uniqueName('rdy');
  daemonWithApp(name);

  it('CLI: waits for READY=1 from systemd-notify run by the init', async () => {
    assert.equal(cli('dre-app', ['create', name, '--no-network']).code, 0);
    assert.equal(cli('dre-app', ['start', name]).code, 0);
    sh(name, 'base64 -d > /root/systemd-notify && chmod +x /root/systemd-notify', readFileSync('/usr/bin/systemd-notify').toString('base64'));
    sh(name, 'cat > /etc/init.d/rc.local && chmod +x /etc/init.d/rc.local', RC_LOCAL);
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    const r = cli('dre-app', ['start', name, '--wait-ready', '--ready-timeout', '20000']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ready in \d+ ms \(READY=1\)/);
    assert.equal(sh(name, 'cat /root/up'), 'up', 'the init had got as far as READY=1');
  });

  it('REST: waits for the first passing probe when nothing sends READY=1', async () => {
    sh(name, 'rm /root/up && touch /root/no-notify');
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['policy', name, '--probe', 'exec:test -e /root/up', '--interval', '200', '--on-unhealthy', 'none']).code, 0);
    const r = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'start', waitReady: true, readyTimeoutMs: 20_000 }, { timeoutMs: 30_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.statusName, 'RUNNING');
    assert.equal(r.body.ready.via, 'probe');
    assert.equal(sh(name, 'cat /root/up'), 'up');
  });

  it('past the bound: DRE_ERR_DEVICE_BUSY, and the container is left running', async () => {
    sh(name, 'touch /root/never');
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    assert.equal(cli('dre-app', ['policy', name, '--clear']).code, 0);
    const r = cli('dre-app', ['start', name, '--wait-ready', '--ready-timeout', '1500']);
    assert.equal(r.code, 151, r.stderr);
    assert.match(r.stderr, /DRE_ERR_DEVICE_BUSY: start \S+: started, but not ready within 1500 ms/);
    assert.equal(statusOf(name), 'RUNNING');
  });

  it('bad input changes nothing', async () => {
    assert.equal(cli('dre-app', ['stop', name, '--timeout', '0']).code, 0);
    const r = cli('dre-app', ['start', name, '--ready-timeout', '1000']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /DRE_ERR_INVALID_ARGUMENT: --ready-timeout goes with --wait-ready/);
    const z = cli('dre-app', ['start', name, '--wait-ready', '--ready-timeout', '0']);
    assert.match(z.stderr, /DRE_ERR_INVALID_ARGUMENT: the readiness timeout/);
    const s = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'stop', waitReady: true });
    assert.equal(s.status, 400);
    assert.equal(statusOf(name), 'STOP');
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import '../support/env.js';
import { Daemon } from '../support/dred.js';

/** A self-signed certificate and key made with openssl, as a client would make its own. */
function makeCert(dir: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${cn}.crt`);
  const key = join(dir, `${cn}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

type Outcome = { status: number; body: string } | { refused: string };

function get(port: number, client?: { cert: string; key: string }, plain = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, path: '/1.0', timeout: 5000 };
    const done = (res: import('node:http').IncomingMessage) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = plain
      ? httpRequest(opts, done)
      : httpsRequest({ ...opts, rejectUnauthorized: false, ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) }, done);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ refused: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end();
  });
}

describe('dred --listen: HTTPS only for clients whose certificate the daemon trusts', () => {
  let daemon: Daemon;
  let port: number;
  const dir = join(process.env.DRE_TEST_TMP!, 'tls');
  const certs = join(process.env.DRE_TEST_TMP!, 'client-certs');
  let trusted: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  before(async () => {
    mkdirSync(join(dir, 'trust'), { recursive: true, mode: 0o700 });
    mkdirSync(certs, { recursive: true });
    trusted = makeCert(certs, 'trusted-client');
    stranger = makeCert(certs, 'stranger');
    copyFileSync(trusted.cert, join(dir, 'trust', 'trusted-client.crt'));
    port = await freePort();
    daemon = await Daemon.start(['--listen', `127.0.0.1:${port}`, '--tls', dir]);
  });
  after(async () => {
    await daemon?.kill('SIGTERM');
  });

  it('serves a client with a trusted certificate', async () => {
    const r = await get(port, trusted);
    assert.ok('status' in r, JSON.stringify(r));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).server, 'dred');
  });

  it('refuses a certificate not in the trust store, no certificate, and plain HTTP: no answer at all', async () => {
    for (const [what, r] of [
      ['untrusted certificate', await get(port, stranger)],
      ['no certificate', await get(port)],
      ['plain HTTP', await get(port, undefined, true)],
    ] as const) {
      assert.ok('refused' in r, `${what}: got an answer ${JSON.stringify(r)}`);
    }
  });

  it('made its own server certificate, and a certificate added to the store is trusted without a restart', async () => {
    assert.match(readFileSync(join(dir, 'server.crt'), 'utf8'), /BEGIN CERTIFICATE/);
    copyFileSync(stranger.cert, join(dir, 'trust', 'stranger.crt'));
    const r = await get(port, stranger);
    assert.ok('status' in r && r.status === 200, JSON.stringify(r));
  });
});

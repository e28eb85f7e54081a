import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { uniqueName, cli } from '../support/env.js';
import { call, callAndWait, Daemon, socketPath } from '../support/dred.js';
import { Api, loadDocument, OPENAPI_PATH } from '../../src/daemon/api.js';
import { handlers } from '../../src/daemon/handlers.js';
import { checkHandlers, MAX_BODY_BYTES } from '../../src/daemon/server.js';
import { containersDir } from '../../src/core/paths.js';
import { sleep } from '../../src/core/proc.js';
import { isLocked } from '../../src/core/lock.js';

/** A concrete path for a documented template, with harmless values for its parameters. */
function concrete(template: string): string {
  return template
    .replace('{kind}', 'app')
    .replace(/\{(name|tag|cgroup|base|id)\}/g, 'nosuch')
    .replace(/\{(pid|vpid|type)\}/g, '1');
}

describe('dred: the API document and the routes served', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await Daemon.start();
  });
  after(async () => {
    await daemon.kill('SIGTERM');
  });

  it('is the document api/openapi.src.mjs makes (edit that, then regenerate)', () => {
    const made = execFileSync(process.execPath, [OPENAPI_PATH.replace(/openapi\.json$/, 'openapi.src.mjs')], { encoding: 'utf8' });
    assert.equal(made, readFileSync(OPENAPI_PATH, 'utf8'));
  });

  it('has a handler for every operation of api/openapi.json and no handler the document lacks', () => {
    const api = new Api(loadDocument());
    assert.doesNotThrow(() => checkHandlers(api));
    const ids = new Set(api.routes.map((r) => r.operationId));
    assert.deepEqual(
      Object.keys(handlers).filter((h) => !ids.has(h)),
      [],
    );
    assert.equal(ids.size, api.routes.length, 'operationIds are unique');
  });

  it('answers every documented route (with that route, not "no route"), for both kinds where the path has {kind}', async () => {
    const api = new Api(loadDocument());
    for (const r of api.routes) {
      if (r.operationId === 'getEvents') continue; // a stream: tested in events.test
      for (const kind of r.template.includes('{kind}') ? ['app', 'sys'] : ['']) {
        const path = concrete(kind ? r.template.replace('{kind}', kind) : r.template);
        const res = await call(r.method, path, r.validateBody ? {} : undefined);
        assert.ok(!(res.status === 404 && /^no route/.test(res.body?.message ?? '')), `${r.method} ${path}: ${JSON.stringify(res.body)}`);
        assert.ok(res.status !== 405, `${r.method} ${path} refused its own method`);
      }
    }
  });

  it('serves no route the document lacks: unknown paths are 404 and a wrong method 405, with the error body', async () => {
    const unknown = await call('GET', '/1.0/app/nothing');
    assert.equal(unknown.status, 404);
    assert.deepEqual(Object.keys(unknown.body).sort(), ['code', 'error', 'message']);
    assert.equal(unknown.body.error, 'DRE_ERR_INVALID_ARGUMENT');
    assert.equal((await call('GET', '/1.0/vm/containers')).status, 404, 'a kind other than app or sys');
    assert.equal((await call('GET', '/1.0/sys/containers/x/registered-pids')).status, 404, 'an app-only route under sys');
    const wrong = await call('PATCH', '/1.0/app/containers');
    assert.equal(wrong.status, 405);
  });
});

describe('dred: bad input and faults change nothing and the daemon keeps serving', () => {
  let daemon: Daemon;
  const name = uniqueName('dapi');
  before(async () => {
    daemon = await Daemon.start();
    const r = await callAndWait('POST', '/1.0/app/containers', { name, config: { network: false } });
    assert.equal(r.body.status, 'success', JSON.stringify(r.body));
  });
  after(async () => {
    cli('dre-app', ['stop', name, '--timeout', '0']);
    cli('dre-app', ['destroy', name]);
    await daemon.kill('SIGTERM');
  });

  const entries = () => readdirSync(containersDir('app')).sort();

  it('refuses malformed JSON, a non-object body and a body of the wrong shape with DRE_ERR_INVALID_ARGUMENT', async () => {
    const before = entries();
    for (const body of [
      '{nope',
      '[1,2]',
      '"text"',
      JSON.stringify({ name: 'x', config: { port: 'http' } }),
      JSON.stringify({ name: 7 }),
      JSON.stringify({ name: 'y', extra: true }),
    ]) {
      const r = await call('POST', '/1.0/app/containers', body);
      assert.equal(r.status, 400, body);
      assert.equal(r.body.error, 'DRE_ERR_INVALID_ARGUMENT', body);
      assert.equal(r.body.code, -101);
    }
    const r = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'explode' });
    assert.equal(r.body.error, 'DRE_ERR_INVALID_ARGUMENT');
    assert.deepEqual(entries(), before);
  });

  it('answers the spec code with a fitting HTTP status: 404 for no such container, 409 for a wrong state', async () => {
    const none = await call('GET', '/1.0/app/containers/nosuch/state');
    assert.deepEqual([none.status, none.body.error, none.body.code], [404, 'DRE_ERR_CONTAINER_NONEXISTENCE', -111]);
    const stopped = await call('GET', `/1.0/app/containers/${name}/pid`);
    assert.deepEqual([stopped.status, stopped.body.error], [409, 'DRE_ERR_CONTAINER_STOPPED']);
    const exists = await callAndWait('POST', '/1.0/app/containers', { name });
    assert.deepEqual([exists.body.status, exists.body.error.error], ['failure', 'DRE_ERR_CONTAINER_EXISTENCE']);
  });

  it('never turns a name into a path outside the state directories', async () => {
    const before = entries();
    for (const n of ['..', '..%2F..%2Fetc', '%2Fetc%2Fpasswd', '.hidden', 'a%00b']) {
      const r = await call('DELETE', `/1.0/app/containers/${n}`);
      assert.equal(r.status, 400, n);
      assert.equal(r.body.error, 'DRE_ERR_INVALID_ARGUMENT', n);
    }
    const bad = await call('GET', '/1.0/app/containers/%E0%A4%A');
    assert.equal(bad.body.error, 'DRE_ERR_INVALID_ARGUMENT');
    const snap = await call('POST', `/1.0/app/containers/${name}/snapshots`, { tag: '../../x' });
    assert.equal(snap.body.error, 'DRE_ERR_INVALID_ARGUMENT');
    assert.deepEqual(entries(), before);
  });

  it('refuses a body over 1 MiB with 413 and DRE_ERR_REQUEST_TOO_LONG, declared or not', async () => {
    const huge = JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES + 10) });
    const r = await call('POST', '/1.0/app/containers', huge);
    assert.deepEqual([r.status, r.body.error], [413, 'DRE_ERR_REQUEST_TOO_LONG']);
    // Chunked, without a length: refused once the limit is passed.
    const chunked = await new Promise<string>((resolve) => {
      const s = connect(socketPath());
      let got = '';
      s.on('data', (c) => (got += c.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.write('POST /1.0/app/containers HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n');
      const piece = 'a'.repeat(64 * 1024);
      for (let i = 0; i < 20; i++) s.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    });
    assert.match(chunked, /^HTTP\/1\.1 413/);
    assert.match(chunked, /DRE_ERR_REQUEST_TOO_LONG/);
    assert.equal((await call('GET', '/1.0')).status, 200);
  });

  it('keeps serving others while a slow client sends half its headers, and through a flood of 400 connections', async () => {
    const slow = connect(socketPath());
    slow.write('GET /1.0 HTTP/1.1\r\nHost: d\r\n'); // never finished
    const flood = await Promise.all(
      Array.from(
        { length: 400 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(socketPath(), () => resolve(s));
            s.on('error', () => resolve(s));
          }),
      ),
    );
    const r = await call('GET', `/1.0/app/containers/${name}/state`, undefined, { timeoutMs: 5000 });
    assert.equal(r.status, 200);
    assert.equal(r.body.statusName, 'STOP');
    for (const s of [slow, ...flood]) s.destroy();
  });

  it('finishes a start whose client disconnected mid-request, leaving a consistent container', async () => {
    const s = connect(socketPath());
    const body = JSON.stringify({ action: 'start' });
    s.write(`PUT /1.0/app/containers/${name}/state HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    // Hang up once the daemon is at work on it (it holds the container's lock; a start holds it for
    // tens of ms): a fixed 20 ms hung up before a loaded daemon had read the request at all.
    for (let i = 0; i < 2500 && !isLocked('app', name); i++) await sleep(2);
    s.destroy();
    let st = '';
    for (let i = 0; i < 200 && st !== 'RUNNING'; i++) {
      st = (await call('GET', `/1.0/app/containers/${name}/state`)).body.statusName;
      await sleep(50);
    }
    assert.equal(st, 'RUNNING', 'the start ran to its end');
    const stop = await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'stop', timeoutMs: 0 });
    assert.deepEqual([stop.status, stop.body.statusName], [200, 'STOP']);
    assert.equal(daemon.proc.exitCode, null, 'the daemon still runs');
  });

  it('builds a Base Image in the background over REST, with progress; a flavour the kind has not is refused and changes nothing', async () => {
    const basesBefore = (await call('GET', '/1.0/app/bases')).body.bases;
    for (const [kind, body] of [
      ['app', { flavour: 'default' }],
      ['sys', { flavour: 'debian', include: ['python3;rm'] }],
      ['sys', { flavour: 'default', name: 'mine' }],
      ['app', { flavour: 'debian', include: ['../etc'] }],
    ] as const) {
      const r = await call('POST', `/1.0/${kind}/base-builds`, body);
      assert.deepEqual([r.status, r.body.error], [400, 'DRE_ERR_INVALID_ARGUMENT'], `${kind} ${JSON.stringify(body)}`);
    }
    assert.deepEqual((await call('GET', '/1.0/app/bases')).body.bases, basesBefore);
    // A real build from the Debian archive (the .debs are cached from test/app/debian by then).
    const base = uniqueName('restdeb');
    const started = await call('POST', '/1.0/app/base-builds', { flavour: 'debian', name: base });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const stages = new Set<string>();
    let op;
    for (;;) {
      op = (await call('GET', `/1.0/operations/${started.body.id}`)).body;
      if (op.progress) stages.add(op.progress.stage);
      if (op.status !== 'running') break;
      await sleep(100);
    }
    assert.equal(op.status, 'success', JSON.stringify(op.error));
    assert.ok(stages.size > 1, `progress seen: ${[...stages].join(' | ')}`);
    assert.ok((await call('GET', '/1.0/app/bases')).body.bases.includes(base));
    assert.equal((await call('DELETE', `/1.0/app/bases/${base}`)).status, 200);
  });

  it("runs a command in the container over REST: its status and output come back, and a stopped container's is refused", async () => {
    const stopped = await call('POST', `/1.0/app/containers/${name}/exec`, { argv: ['true'] });
    assert.deepEqual([stopped.status, stopped.body.error], [409, 'DRE_ERR_CONTAINER_STOPPED']);
    assert.equal((await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'start' })).status, 200);
    const r = await call('POST', `/1.0/app/containers/${name}/exec`, { argv: ['sh', '-c', 'echo out; hostname >&2; exit 3'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 3);
    assert.equal(Buffer.from(r.body.stdout, 'base64').toString(), 'out\n');
    assert.equal(Buffer.from(r.body.stderr, 'base64').toString(), `${name}\n`, "the container's own hostname: it ran inside");
    assert.equal((await call('POST', `/1.0/app/containers/${name}/exec`, { argv: [] })).body.error, 'DRE_ERR_INVALID_ARGUMENT');
    assert.equal((await call('PUT', `/1.0/app/containers/${name}/state`, { action: 'stop', timeoutMs: 0 })).status, 200);
  });
});

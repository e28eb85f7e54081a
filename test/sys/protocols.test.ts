// Pure protocols, without root or QEMU: the QMP monitor and its typed errors and commands, and the
// guest agent's framing, each against a fake server on a unix socket in a temporary directory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { execInGuest, ping } from '../../src/sys/agent.js';
import { cont, migrateSetCapabilities, queryStatus } from '../../src/sys/qmp/commands.js';
import { isListenRefused, isTargetUnreachable, QmpClosed, QmpRefused, QmpTimeout } from '../../src/sys/qmp/errors.js';
import { Qmp, withQmp } from '../../src/sys/qmp/monitor.js';

const dir = mkdtempSync(join(tmpdir(), 'dre-protocols-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;

/** A server on a fresh socket path; `onLine` gets each line a client sends. */
async function fakeServer(onLine: (line: string, sock: Socket) => void, greeting?: string): Promise<{ path: string; server: Server; received: string[] }> {
  const path = join(dir, `s${++sockets}.sock`);
  const received: string[] = [];
  const server = createServer((sock) => {
    if (greeting) sock.write(greeting);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        received.push(line);
        onLine(line, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, received };
}

const GREETING = JSON.stringify({ QMP: { version: { qemu: { major: 8, minor: 2, micro: 0 } }, capabilities: [] } }) + '\n';

describe('the QMP monitor', () => {
  it('negotiates, matches replies to commands by id (in any order, split across chunks) and types the answers', async () => {
    const held: { id: unknown; sock: Socket }[] = [];
    const { path, server, received } = await fakeServer((line, sock) => {
      const msg = JSON.parse(line) as { execute: string; id: unknown };
      if (msg.execute === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: msg.id }) + '\n');
      else if (msg.execute === 'query-status') held.push({ id: msg.id, sock });
      else if (msg.execute === 'cont') {
        // Answered before the earlier query-status, and in two pieces.
        const reply = JSON.stringify({ return: {}, id: msg.id }) + '\n';
        sock.write(reply.slice(0, 5));
        setTimeout(() => {
          sock.write(reply.slice(5));
          for (const h of held) h.sock.write(JSON.stringify({ return: { status: 'paused', running: false }, id: h.id }) + '\n');
        }, 20);
      }
    }, GREETING);
    try {
      const q = await Qmp.connect(path);
      const [status] = await Promise.all([queryStatus(q), cont(q)]);
      assert.equal(status, 'paused');
      q.close();
      assert.deepEqual(
        received.map((l) => JSON.parse(l).execute),
        ['qmp_capabilities', 'query-status', 'cont'],
      );
    } finally {
      server.close();
    }
  });

  it('sends typed arguments as QEMU documents them', async () => {
    const { path, server, received } = await fakeServer((line, sock) => sock.write(JSON.stringify({ return: {}, id: JSON.parse(line).id }) + '\n'), GREETING);
    try {
      await withQmp(path, (q) => migrateSetCapabilities(q, { events: true, 'pause-before-switchover': false }));
      const sent = JSON.parse(received[1]) as { execute: string; arguments: unknown };
      assert.equal(sent.execute, 'migrate-set-capabilities');
      assert.deepEqual(sent.arguments, {
        capabilities: [
          { capability: 'events', state: true },
          { capability: 'pause-before-switchover', state: false },
        ],
      });
    } finally {
      server.close();
    }
  });

  it('reports a refusal as QmpRefused with its class, no answer as QmpTimeout, a closed connection as QmpClosed', async () => {
    const { path, server } = await fakeServer((line, sock) => {
      const msg = JSON.parse(line) as { execute: string; id: unknown };
      if (msg.execute === 'migrate-incoming')
        sock.write(JSON.stringify({ error: { class: 'GenericError', desc: 'Failed to bind socket: Address already in use' }, id: msg.id }) + '\n');
      if (msg.execute === 'quit') sock.destroy();
      // query-status: never answered
    }, GREETING);
    try {
      const q = await Qmp.connect(path);
      const refused = await q.execute('migrate-incoming', { uri: 'tcp:0.0.0.0:1' }).catch((e: unknown) => e);
      assert.ok(refused instanceof QmpRefused);
      assert.equal(refused.errorClass, 'GenericError');
      assert.equal(refused.command, 'migrate-incoming');
      assert.ok(isListenRefused(refused));
      const late = await queryStatus(q, 50).catch((e: unknown) => e);
      assert.ok(late instanceof QmpTimeout);
      assert.equal(late.timeoutMs, 50);
      const closed = await q.execute('quit').catch((e: unknown) => e);
      assert.ok(closed instanceof QmpClosed);
      assert.ok((await q.execute('cont').catch((e: unknown) => e)) instanceof QmpClosed, 'a command after the close fails at once');
      assert.ok(q.isClosed);
    } finally {
      server.close();
    }
  });

  it('delivers events by name, and waitEvent ends with undefined when QEMU goes away', async () => {
    const { path, server } = await fakeServer((line, sock) => {
      const msg = JSON.parse(line) as { execute: string; id: unknown };
      if (msg.execute === 'system_powerdown') {
        sock.write(JSON.stringify({ return: {}, id: msg.id }) + '\n');
        sock.write(JSON.stringify({ event: 'SHUTDOWN', data: { guest: true }, timestamp: { seconds: 1, microseconds: 2 } }) + '\n');
        setTimeout(() => sock.destroy(), 20);
      }
    }, GREETING);
    try {
      const q = await Qmp.connect(path);
      const shutdown = q.waitEvent('SHUTDOWN', 5_000);
      const never = q.waitEvent('RESUME', 5_000);
      await q.execute('system_powerdown');
      assert.deepEqual((await shutdown)?.data, { guest: true });
      assert.equal(await never, undefined);
    } finally {
      server.close();
    }
  });

  it("classifies a failed migration's reason", () => {
    assert.ok(isTargetUnreachable('Failed to connect to 10.0.0.9:4444: Connection refused'));
    assert.ok(isTargetUnreachable('No route to host'));
    assert.ok(!isTargetUnreachable('load of migration failed: Invalid argument'));
    assert.ok(!isListenRefused(new Error('Address already in use')), 'only a refusal QEMU sent counts');
  });
});

describe('the guest agent framing', () => {
  it('sends ping and exec requests with a fresh id, skips answers to abandoned requests, and decodes base64 output', async () => {
    const { path, server, received } = await fakeServer((line, sock) => {
      const [kind, id, script] = line.split(' ');
      sock.write(`A stale-id 0\n`); // an answer to someone else's earlier request
      if (kind === 'P') sock.write(`A ${id}\n`);
      if (kind === 'X') {
        assert.equal(Buffer.from(script, 'base64').toString(), `'printf' '%s' 'it'\\''s'\n`);
        sock.write(`A ${id} 3 .${Buffer.from('out\0bin').toString('base64')} .\n`);
      }
    });
    try {
      assert.equal(await ping(path, 2_000), true);
      const r = await execInGuest(path, ['printf', '%s', "it's"], 2_000);
      assert.equal(r.status, 3);
      assert.deepEqual(r.stdout, Buffer.from('out\0bin'));
      assert.equal(r.stderr.length, 0);
      const ids = received.map((l) => l.split(' ')[1]);
      assert.equal(new Set(ids).size, 2, 'every request has its own id');
    } finally {
      server.close();
    }
  });

  it('gives up on an agent that never answers, and ping says false', async () => {
    const { path, server } = await fakeServer(() => {});
    try {
      assert.equal(await ping(path, 100), false);
      await assert.rejects(execInGuest(path, ['true'], 100), /did not answer in 100 ms/);
    } finally {
      server.close();
    }
  });
});

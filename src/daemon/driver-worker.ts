/**
 * A worker thread of src/daemon/offload.ts: runs one system-driver call at a time, as the daemon's
 * main thread would, and answers with its value or its error as data.
 */
import { parentPort } from 'node:worker_threads';
import { isDreError } from '../core/errors.js';
import { withCause } from '../core/journal.js';
import { sysDriver } from '../sys/driver.js';
import type { WorkerCall, WorkerReply } from './offload.js';

const port = parentPort!;
port.on('message', (m: WorkerCall) => {
  void (async () => {
    let reply: WorkerReply;
    try {
      const fn = (sysDriver as unknown as Record<string, (...a: unknown[]) => unknown>)[m.method];
      reply = { id: m.id, value: await (m.cause ? withCause(m.cause, async () => fn(...m.args)) : fn(...m.args)) };
    } catch (e) {
      reply = { id: m.id, error: isDreError(e) ? { errName: e.errName, message: e.message } : { message: (e as Error)?.message ?? String(e) } };
    }
    port.postMessage(reply);
  })();
});

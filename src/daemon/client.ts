/** A client of a running dred over its unix socket: the event stream (GET /1.0/events, Server-Sent Events). */
import { request } from 'node:http';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import type { StreamEvent } from './events.js';
import { runRoot } from '../core/paths.js';

/** Where this root's daemon listens (src/cli/dred.ts serves it). */
export const daemonSocketPath = () => join(runRoot(), 'dred.sock');

/** One SSE message block ("event: T\ndata: {...}") as its event; comments and keep-alives are undefined. */
export function parseEventBlock(block: string): StreamEvent | undefined {
  const data = block
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trimStart())
    .join('\n');
  if (!data) return undefined;
  try {
    return JSON.parse(data) as StreamEvent;
  } catch {
    return undefined;
  }
}

/**
 * Streams the daemon's events to `onEvent` until `onEvent` returns false or `signal` aborts; resolves
 * then. No daemon (no socket, a refused one) is DRE_ERR_NO_SOCKET_AVAILABLE, as for the C interface.
 * `onOpen` is called once the daemon answered: every event from then on reaches `onEvent`.
 */
export function watchEvents(onEvent: (e: StreamEvent) => boolean | void, signal?: AbortSignal, onOpen?: () => void): Promise<void> {
  const path = daemonSocketPath();
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: '/1.0/events', headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `events: dred at ${path} answered ${res.statusCode}`));
      }
      let buffer = '';
      res.setEncoding('utf8');
      onOpen?.();
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
          const e = parseEventBlock(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (e && onEvent(e) === false) {
            req.destroy();
            return resolve();
          }
        }
      });
      res.on('end', () => reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `events: dred at ${path} closed the stream`)));
    });
    signal?.addEventListener('abort', () => {
      req.destroy();
      resolve();
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (signal?.aborted) return;
      reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `events: no D-RE daemon at ${path} (${e.code ?? e.message}); start dred`, e));
    });
    req.end();
  });
}

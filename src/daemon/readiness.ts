/**
 * `start --wait-ready`: a start that returns once the container is ready, i.e. the supervisor saw its
 * first passing probe after the start (`healthy`) or a process of it sent READY=1 on its
 * NOTIFY_SOCKET (`ready`). Both are events of dred, so waiting needs a daemon: the CLI and the
 * library follow its event stream (src/daemon/client.ts), the daemon's own REST start its hub.
 * Past the bound the wait fails with DRE_ERR_DEVICE_BUSY and the container is left running. A system
 * container has no NOTIFY_SOCKET: without a probe in its policy nothing could ever say it is ready, so
 * the start is refused before it begins.
 */
import { existsSync } from 'node:fs';
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { containerDir, type Kind } from '../core/paths.js';
import { readSupervision } from '../core/supervision.js';
import { watchEvents } from './client.js';
import type { StreamEvent } from './events.js';

/** How long --wait-ready waits by default. */
export const READY_TIMEOUT_MS = 30_000;

/** Subscribes `fn` to the daemon's events; resolves (to its unsubscribe) once every later event reaches `fn`. */
export type Subscribe = (fn: (e: StreamEvent) => void) => Promise<() => void>;

export interface Ready {
  /** What said so: the first passing probe, or READY=1 on the notify socket. */
  via: 'probe' | 'notify';
  /** From the start's beginning to the event. */
  ms: number;
}

/** Runs `start` and resolves once the container is ready (or rejects past `timeoutMs`, the container left running). */
export async function startWhenReady(kind: Kind, name: string, start: () => Promise<void>, subscribe: Subscribe, timeoutMs = READY_TIMEOUT_MS): Promise<Ready> {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 3_600_000)
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `the readiness timeout must be 1 to 3600000 ms, not ${timeoutMs}`);
  // (A container that does not exist is left to the start to say so.)
  if (kind === 'sys' && existsSync(containerDir(kind, checkName(name, 'container name'))) && !readSupervision(kind, name).policy?.probe)
    throw dreError(
      'DRE_ERR_INVALID_ARGUMENT',
      `start ${name}: a system container is ready on its first passing probe, and it has none: set one first (dre-sys policy ${name} --probe exec:CMD)`,
    );
  const began = new Date().toISOString();
  const t0 = performance.now();
  let onReady: (r: Ready) => void = () => undefined;
  const ready = new Promise<Ready>((resolve) => (onReady = resolve));
  const unsubscribe = await subscribe((e) => {
    if (e.type !== 'ready' && e.type !== 'healthy') return;
    if (e.kind !== kind || e.name !== name || e.time < began) return;
    onReady({ via: e.type === 'ready' ? 'notify' : 'probe', ms: Math.round(performance.now() - t0) });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await start();
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            dreError(
              'DRE_ERR_DEVICE_BUSY',
              `start ${name}: started, but not ready within ${timeoutMs} ms (no passing probe${kind === 'app' ? ', no READY=1 on its NOTIFY_SOCKET' : ''}); it keeps running`,
            ),
          ),
        Math.max(0, timeoutMs - (performance.now() - t0)),
      );
    });
    return await Promise.race([ready, late]);
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}

/** Subscribes through the daemon's event stream (no daemon: DRE_ERR_NO_SOCKET_AVAILABLE, before anything starts). */
export const streamSubscribe: Subscribe = (fn) =>
  new Promise((resolve, reject) => {
    const ac = new AbortController();
    watchEvents(fn, ac.signal, () => resolve(() => ac.abort())).catch(reject);
  });

/** The idiomatic API's `start --wait-ready`: `startReady(app, 'web', { timeoutMs: 5000 })` (needs dred). */
export const startReady = (d: { kind: Kind; start(name: string): Promise<void> }, name: string, opts: { timeoutMs?: number } = {}): Promise<Ready> =>
  startWhenReady(d.kind, name, () => d.start(name), streamSubscribe, opts.timeoutMs);

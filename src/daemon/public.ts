/**
 * `dre/daemon`: what a program asks of a running dred through the library (the idiomatic API of the
 * daemon's own features; `dre` itself works without a daemon):
 *
 *   import { app } from 'dre';
 *   import { startReady } from 'dre/daemon';
 *   const { via, ms } = await startReady(app, 'web', { timeoutMs: 5000 }); // READY=1 or the first passing probe
 */
export { startReady, READY_TIMEOUT_MS, type Ready } from './readiness.js';
export { watchEvents } from './client.js';

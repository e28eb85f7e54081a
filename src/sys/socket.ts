import { connect, type Socket } from 'node:net';
import { sleep } from '../core/proc.js';

/**
 * Connects to a unix socket served by QEMU. QEMU serves one client at a time and its listen backlog
 * is short: a connect refused with EAGAIN while others are queued is retried until `timeoutMs`.
 */
export async function connectUnix(path: string, timeoutMs: number): Promise<Socket> {
  const end = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        const timer = setTimeout(
          () => {
            s.destroy();
            reject(new Error(`${path}: no connection after ${timeoutMs} ms`));
          },
          Math.max(1, end - Date.now()),
        );
        s.once('connect', () => {
          clearTimeout(timer);
          resolve(s);
        });
        s.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() + delay >= end) throw e;
      await sleep(delay);
    }
  }
}

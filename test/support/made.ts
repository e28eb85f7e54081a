/** What a test file made and must remove whatever happens: free ports to use, containers and bases to remove. */
import { createServer } from 'node:net';
import { app } from '../../src/index.js';
import { STATUS } from '../../src/core/driver.js';

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Stops (killing) and destroys the containers, newest first, then removes the bases; what is gone already is skipped. */
export async function removeMade(containers: string[], bases: string[]): Promise<void> {
  for (const n of [...containers].reverse()) {
    try {
      if ((await app.status(n)) !== STATUS.STOP) await app.stop(n, { timeoutMs: 0 });
      await app.destroy(n);
    } catch {
      /* already gone */
    }
  }
  for (const b of [...bases].reverse()) await app.removeBase(b).catch(() => {});
}

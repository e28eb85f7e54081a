/** What a test file made and must remove whatever happens: containers and bases to remove. */
import { app } from '../../src/index.js';
import { STATUS } from '../../src/core/driver.js';

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

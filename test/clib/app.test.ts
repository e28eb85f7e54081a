import '../support/env.js';
import { appDriver as app } from '../../src/app/driver.js';
import { STATUS } from '../../src/core/driver.js';
import { vectorSuite } from './vectors.js';

/** Removes every container and base a run made (names start with its prefix), whatever state they are in. */
async function removeRun(prefix: string): Promise<void> {
  for (const name of (await app.list()).filter((n) => n.startsWith(prefix))) {
    try {
      if ((await app.status(name)) !== STATUS.STOP) await app.stop(name, { timeoutMs: 0 });
      await app.destroy(name);
    } catch {
      /* the sweep at exit removes what is left */
    }
  }
  for (const base of (await app.listBases()).filter((b) => b.startsWith(prefix))) await app.removeBase(base).catch(() => {});
}

vectorSuite('app', 41, removeRun);

import '../support/env.js';
import '../sys/helpers.js'; // DRE_SYS_ACCEL=tcg, for this process and the dred it starts
import { sysDriver as sys } from '../../src/sys/driver.js';
import { removeGuest, requireQemu } from '../sys/helpers.js';
import { vectorSuite } from './vectors.js';

/** Removes every guest and base a run made (names start with its prefix), whatever state they are in. */
async function removeRun(prefix: string): Promise<void> {
  for (const name of (await sys.list()).filter((n) => n.startsWith(prefix))) {
    await sys.unshare(name).catch(() => {});
    await removeGuest(name);
  }
  for (const base of (await sys.listBases()).filter((b) => b.startsWith(prefix))) await sys.removeBase(base).catch(() => {});
}

vectorSuite('sys', 37, removeRun, requireQemu);

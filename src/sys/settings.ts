/** Settings of a system container after create (`dre-sys config`): guest RAM and virtual CPUs (stopped only: QEMU's command line), autostart. */
import { STATUS, type Settings } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkInt } from '../core/names.js';
import { inspecting } from '../core/operation.js';
import { writeJsonAtomic } from '../core/store.js';
import { autostarts, setAutostart } from '../core/supervision.js';
import { recordPath } from './layout.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';

const MIB = 2 ** 20;

export async function settings(name: string): Promise<Settings> {
  const { n, rec } = inspecting('settings of', name, requireContainer);
  return { memory: rec.memoryMiB * MIB, cpus: rec.cpus ?? 1, port: null, autostart: autostarts('sys', n) };
}

export async function configure(name: string, changes: Partial<Settings>): Promise<void> {
  await changing('configure', name, async (n) => {
    const rec = requireContainer(n, 'configure');
    const next = { ...rec };
    if (changes.port !== undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: a system container has no SSH port to forward`);
    if (changes.memory !== undefined || changes.cpus !== undefined) await refuseUnless(n, 'change the memory or CPUs of', [STATUS.STOP]);
    if (changes.memory !== undefined) {
      const bytes = checkInt(changes.memory, 'memory (bytes)', 16 * MIB, 2 ** 31 * MIB);
      if (bytes % MIB !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: memory must be whole MiB (e.g. 512M)`);
      next.memoryMiB = bytes / MIB;
    }
    if (changes.cpus !== undefined) next.cpus = checkInt(changes.cpus, 'cpus', 1, 64);
    if (changes.autostart !== undefined) {
      if (typeof changes.autostart !== 'boolean') throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: autostart must be true or false`);
      setAutostart('sys', n, changes.autostart);
    }
    writeJsonAtomic(recordPath(n), next);
  });
}

/** Settings of a system container after create (`dre-sys config`): guest RAM, virtual CPUs and SSH port (stopped only: QEMU's command line, the lease), autostart. */
import { STATUS, type Settings } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkInt } from '../core/names.js';
import { setLeasePort } from '../core/network.js';
import { inspecting } from '../core/operation.js';
import { writeJsonAtomic } from '../core/store.js';
import { autostarts, setAutostart } from '../core/supervision.js';
import { recordPath } from './layout.js';
import { changing, MAX_CPUS } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';

const MIB = 2 ** 20;

export async function settings(name: string): Promise<Settings> {
  const { n, rec } = inspecting('settings of', name, requireContainer);
  return { memory: rec.memoryMiB * MIB, cpus: rec.cpus ?? 1, port: rec.port ?? null, autostart: autostarts('sys', n) };
}

export async function configure(name: string, changes: Partial<Settings>): Promise<void> {
  await changing('configure', name, async (n) => {
    const rec = requireContainer(n, 'configure');
    const next = { ...rec };
    if (changes.memory !== undefined || changes.cpus !== undefined || changes.port !== undefined)
      await refuseUnless(n, 'change the memory, CPUs or port of', [STATUS.STOP]);
    if (changes.port !== undefined) {
      if (!rec.address) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: it has no network (made with --no-network): no port to forward`);
      const port = changes.port === null ? null : checkInt(changes.port, 'port', 1, 65535);
      await setLeasePort('sys', n, port);
      next.port = port;
    }
    if (changes.memory !== undefined) {
      const bytes = checkInt(changes.memory, 'memory (bytes)', 16 * MIB, 2 ** 31 * MIB);
      if (bytes % MIB !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: memory must be whole MiB (e.g. 512M)`);
      next.memoryMiB = bytes / MIB;
    }
    if (changes.cpus !== undefined) next.cpus = checkInt(changes.cpus, 'cpus', 1, MAX_CPUS);
    if (changes.autostart !== undefined) {
      if (typeof changes.autostart !== 'boolean') throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: autostart must be true or false`);
      setAutostart('sys', n, changes.autostart);
    }
    writeJsonAtomic(recordPath(n), next);
  });
}

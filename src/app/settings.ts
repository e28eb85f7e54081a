/**
 * Settings of an application container after create (`dre-app config`): its memory and CPU limits
 * (kept in the record, written into LXC's config for each start, applied at once when it runs), its
 * SSH port (stopped only: the lease and the forwarder follow) and autostart.
 */
import { RESOURCE, STATUS, type Settings } from '../core/driver.js';
import { onlineCpus } from '../core/controlgroups.js';
import { dreError } from '../core/errors.js';
import { checkInt } from '../core/names.js';
import { changingContainer, inspecting } from '../core/operation.js';
import { writeJsonAtomic } from '../core/store.js';
import { autostarts, setAutostart } from '../core/supervision.js';
import { setLimit, unsetLimit } from './cgroups.js';
import { recordPath } from './layout.js';
import { writeLxcConfig } from './lxcconfig.js';
import { setLeasePort } from './network.js';
import { closePort } from './portforward.js';
import { observed, refuseUnless, requireContainer } from './state.js';

const MIN_MEMORY = 4 * 2 ** 20;

export async function settings(name: string): Promise<Settings> {
  const { n, rec } = inspecting('settings of', name, requireContainer);
  return { memory: rec.memory ?? null, cpus: rec.cpus ?? null, port: rec.port, autostart: autostarts('app', n) };
}

export async function configure(name: string, changes: Partial<Settings>): Promise<void> {
  let live = false;
  const rec = await changingContainer('app', 'configure', name, requireContainer, async (n, rec) => {
    const next = { ...rec };
    if (changes.memory !== undefined)
      next.memory = changes.memory === null ? null : checkInt(changes.memory, 'memory (bytes)', MIN_MEMORY, Number.MAX_SAFE_INTEGER);
    if (changes.cpus !== undefined) next.cpus = changes.cpus === null ? null : checkInt(changes.cpus, 'cpus', 1, onlineCpus().length);
    if (changes.port !== undefined) {
      refuseUnless(n, 'change the port of', [STATUS.STOP]);
      const port = changes.port === null ? null : checkInt(changes.port, 'port', 1, 65535);
      if (port !== null && !rec.address) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: port ${port} needs networking; the container has none`);
      closePort(n); // a forward a killed start or monitor left of the old port: stop finds forwards by the record's port
      await setLeasePort(n, port);
      next.port = port;
    }
    if (changes.autostart !== undefined) {
      if (typeof changes.autostart !== 'boolean') throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${n}: autostart must be true or false`);
      setAutostart('app', n, changes.autostart);
    }
    writeJsonAtomic(recordPath(n), next);
    writeLxcConfig(next);
    live = observed(n) !== STATUS.STOP;
    return next;
  });
  if (!live) return;
  // A running container gets its new limits at once (its lock is free again: setLimit takes it).
  if (changes.memory !== undefined)
    await (rec.memory ? setLimit(rec.name, { type: RESOURCE.MEMORY, bytes: rec.memory }) : unsetLimit(rec.name, { type: RESOURCE.MEMORY }));
  if (changes.cpus !== undefined)
    await (rec.cpus ? setLimit(rec.name, { type: RESOURCE.CPU, percent: rec.cpus * 100 }) : unsetLimit(rec.name, { type: RESOURCE.CPU }));
}

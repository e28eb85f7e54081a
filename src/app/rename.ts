/**
 * Renaming a stopped application container: its directory (LXC's, with its snapshots, layers and
 * supervision policy), its run dir (logs), its record, its network lease and LXC config, under the
 * locks of both names.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { changingContainer } from '../core/operation.js';
import { containerDir, containerRunDir } from '../core/paths.js';
import { writeJsonAtomic } from '../core/store.js';
import { recordPath } from './layout.js';
import { writeLxcConfig } from './lxcconfig.js';
import { renameLease } from './network.js';
import { unmountRegistry } from './registrydir.js';
import { refuseUnless, requireContainer } from './state.js';

const RECORD_STAGED = 'dre.json.renamed';

/**
 * Renames a stopped container. Refused: a running or suspended one (CONTAINER_RUNNING/SUSPENDED), a
 * new name in use (CONTAINER_EXISTENCE), a bad name (INVALID_ARGUMENT), the same name. The new record
 * is written beside the old before the directory moves, so the move and its record go together.
 */
export async function rename(name: string, newName: string): Promise<void> {
  const to = checkName(newName, 'new container name');
  await changingContainer('app', 'rename', name, requireContainer, async (n, rec) => {
    if (to === n) throw dreError('DRE_ERR_INVALID_ARGUMENT', `rename ${n}: the new name is the same`);
    refuseUnless(n, 'rename', [STATUS.STOP]);
    await withLock('app', to, `rename ${n} to`, async () => {
      if (existsSync(containerDir('app', to)))
        throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `rename ${n} to ${to}: an application container of that name exists`);
      const renamed = { ...rec, name: to };
      writeJsonAtomic(join(containerDir('app', n), RECORD_STAGED), renamed);
      await renameLease(n, to);
      unmountRegistry(n); // a stopped container's registry tmpfs may still be mounted in its run dir
      renameSync(containerDir('app', n), containerDir('app', to));
      renameSync(join(containerDir('app', to), RECORD_STAGED), recordPath(to));
      if (existsSync(containerRunDir('app', n))) {
        rmSync(containerRunDir('app', to), { recursive: true, force: true });
        renameSync(containerRunDir('app', n), containerRunDir('app', to));
      }
      writeLxcConfig(renamed);
    });
  });
}

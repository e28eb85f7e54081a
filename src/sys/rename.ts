/** Renaming a stopped system container: its directory (disk, snapshots, policy), its run dir and its record, under the locks of both names. */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { containerDir, containerRunDir } from '../core/paths.js';
import { renameLease } from '../core/network.js';
import { writeJsonAtomic } from '../core/store.js';
import { recordPath } from './layout.js';
import { changing } from './lifecycle.js';
import { refuseUnless } from './state.js';
import { isShared } from './lease.js';

const RECORD_STAGED = 'dre.json.renamed';

/** Renames a stopped container; refused for a running one, a taken name, the same name, or one shared over NFS (other hosts know it by name). */
export async function rename(name: string, newName: string): Promise<void> {
  const to = checkName(newName, 'new container name');
  await changing('rename', name, async (n, rec) => {
    if (to === n) throw dreError('DRE_ERR_INVALID_ARGUMENT', `rename ${n}: the new name is the same`);
    await refuseUnless(n, 'rename', [STATUS.STOP]);
    if (isShared(n)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `rename ${n}: it is shared over NFS, where other hosts know it by this name; unshare it first`);
    await withLock('sys', to, `rename ${n} to`, async () => {
      if (existsSync(containerDir('sys', to))) throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `rename ${n} to ${to}: a system container of that name exists`);
      writeJsonAtomic(join(containerDir('sys', n), RECORD_STAGED), { ...rec, name: to });
      await renameLease('sys', n, to); // its address and port (the MAC is in the record)
      renameSync(containerDir('sys', n), containerDir('sys', to));
      renameSync(join(containerDir('sys', to), RECORD_STAGED), recordPath(to));
      if (existsSync(containerRunDir('sys', n))) {
        rmSync(containerRunDir('sys', to), { recursive: true, force: true });
        renameSync(containerRunDir('sys', n), containerRunDir('sys', to));
      }
    });
  });
}

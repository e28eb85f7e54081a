/**
 * NFS sharing of system containers: the disk moves to the D-RE host's NFS server (QEMU opens it as
 * nfs://...), the record goes beside it so that other hosts can run the container, and a lease file
 * on the share says which host runs it (QEMU's NFS driver takes no image lock: D-RE does). The
 * records, leases and boot files these operations work on are in lease.ts.
 */
import { chmodSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { containerDir } from '../core/paths.js';
import { engineCause, lastLines, run } from '../core/run.js';
import { withRevertAsync } from '../core/revert.js';
import { writeJsonAtomic } from '../core/store.js';
import { baseDiskPath, localDiskPath } from './layout.js';
import { qemuUser } from './confine.js';
import { imageInfo, requireOwnBacking } from './image.js';
import {
  acquireLease,
  configuredNfs,
  guardFile,
  imageFile,
  imageIdentity,
  imageJson,
  importShared,
  incomingFile,
  isShared,
  leaseFile,
  onShare,
  readLease,
  readShare,
  recordFile,
  shareRecordPath,
  thisHost,
  type LeaseHolder,
  type ShareRecord,
} from './lease.js';
import { changing } from './lifecycle.js';
import { refuseUnless } from './state.js';
import { exportUrl, fileUrl, parseNfsUrl, withNfs, type NfsTarget } from './nfs.js';
import { claim, forget, inCluster, ownership, unclaim } from '../cluster/claims.js';

/** The share of container `name`, known here or found on this host's share (then known here from now on). */
async function sharedOrFail(name: string, what: string): Promise<{ n: string; sh: ShareRecord }> {
  const n = checkName(name, 'container name');
  if (!(await importShared(n, what))) throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${n}: no such system container here or on the share`);
  const sh = readShare(n);
  if (!sh) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${n}: it is not shared (a lease exists only on a share)`);
  return { n, sh };
}

/** Who holds the lease of shared container `name` now (undefined: nobody; the container may start anywhere). */
export async function leaseHolder(name: string): Promise<LeaseHolder | undefined> {
  const { n, sh } = await sharedOrFail(name, 'lease');
  const cluster = inCluster();
  if (cluster) return (await ownership(cluster, n, 'lease'))?.owner;
  return onShare(sh, `lease ${n}`, (c) => readLease(c, n));
}

/**
 * Breaks the lease of a shared container, whoever holds it: for a host that died while running it
 * (the lease has no expiry: D-RE has no daemon to renew one). Only the user can know that host is
 * down; breaking the lease of a host that still runs the container lets a second QEMU write the same
 * disk and destroys it. Refused while this host runs it. Returns the holder it removed.
 */
export async function breakLease(name: string): Promise<LeaseHolder | undefined> {
  const { n, sh } = await sharedOrFail(name, 'break the lease of');
  if (inCluster()) {
    throw dreError(
      'DRE_ERR_INVALID_ARGUMENT',
      `break the lease of ${n}: in a cluster a lease expires by itself when its host is lost; it is not broken by hand`,
    );
  }
  return changing('break the lease of', n, async () => {
    await refuseUnless(n, 'break the lease of', [STATUS.STOP]);
    return onShare(sh, `break the lease of ${n}`, (c) => {
      const holder = readLease(c, n);
      c.remove(leaseFile(n));
      c.remove(incomingFile(n)); // an immigration announced meanwhile waits for a guest that will not come
      return holder;
    });
  });
}

/** Before the image leaves the share (stopped, under this host's lease): the sparse room goes, so that only the image is copied. */
async function trimToImage(n: string, target: NfsTarget, what: string): Promise<void> {
  const check = await imageJson(['check'], fileUrl(target, imageFile(n)));
  const end = Number(check?.['image-end-offset']);
  if (!Number.isFinite(end) || end <= 0 || check?.['corruptions']) return; // unsure where it ends: copy it whole
  withNfs(target, what, (c) => {
    if ((c.size(imageFile(n)) ?? 0) > end) c.truncate(imageFile(n), end);
  });
}

async function qemuImg(what: string, args: string[]): Promise<void> {
  const r = await run('qemu-img', args, { timeoutMs: 600_000 });
  if (r.code !== 0) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: qemu-img ${args[0]} failed: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
}

/**
 * dre_sys_share: a stopped container's disk is flattened onto the share (its base folded in) and its
 * record put beside it; the local disk goes. A running container is refused (its disk is in use).
 */
export async function share(name: string): Promise<void> {
  await changing('share', name, async (n, rec) => {
    await refuseUnless(n, 'share', [STATUS.STOP]);
    if (isShared(n)) return;
    if (rec.rootfs !== null) throw dreError('DRE_ERR_INVALID_ARGUMENT', `share ${n}: it runs on rootfs ${rec.rootfs}, which D-RE does not copy to a share`);
    const target = configuredNfs(`share ${n}`);
    const url = exportUrl(target);
    const what = `share ${n}`;
    const user = qemuUser(what);
    const info = await imageInfo(localDiskPath(n), what, 'DRE_ERR_INVALID_ARGUMENT');
    requireOwnBacking(info, baseDiskPath(rec.base!), what, 'DRE_ERR_INVALID_ARGUMENT');
    const snaps = info.snapshots?.length ?? 0;
    if (snaps > 0)
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: its disk holds ${snaps} snapshot(s)/checkpoint(s), which a share does not carry; remove them first`);
    await withRevertAsync(async (revert) => {
      withNfs(target, what, (c) => {
        if (!c.writeText(recordFile(n), JSON.stringify({ ...rec, sharedBy: thisHost() }), true)) {
          throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `${what}: ${url} already holds a container named ${n}`);
        }
      });
      revert.add(() => withNfs(target, `undo ${what}`, (c) => c.remove(recordFile(n))));
      const part = `.${imageFile(n)}.part`;
      revert.add(() => withNfs(target, `undo ${what}`, (c) => c.remove(part)));
      await qemuImg(what, ['convert', '-q', '-O', 'qcow2', localDiskPath(n), fileUrl(target, part)]);
      withNfs(target, what, (c) => {
        c.rename(part, imageFile(n));
        imageIdentity(c, n, user, 'share');
      });
    });
    writeJsonAtomic(shareRecordPath(n), { url } satisfies ShareRecord);
    rmSync(localDiskPath(n), { force: true });
  });
}

/**
 * dre_sys_unshare: the image comes back as this host's local disk (standalone) and leaves the share.
 * Refused while another host holds the lease; this host holds it meanwhile so nobody starts it.
 */
export async function unshare(name: string): Promise<void> {
  await changing('unshare', name, async (n) => {
    await refuseUnless(n, 'unshare', [STATUS.STOP]);
    const sh = readShare(n);
    if (!sh) return;
    const what = `unshare ${n}`;
    const target = parseNfsUrl(sh.url, what);
    const cluster = inCluster();
    await withRevertAsync(async (revert) => {
      // Held meanwhile, so that no host starts it from the share while it is copied back.
      if (cluster) {
        await claim(cluster, n, what, false);
        revert.add(() => unclaim(cluster, n, `undo ${what}`, false));
      } else {
        withNfs(target, what, (c) => acquireLease(c, n, what));
        revert.add(() => withNfs(target, `undo ${what}`, (c) => c.remove(leaseFile(n))));
      }
      const local = join(containerDir('sys', n), '.disk.qcow2.unshare');
      revert.add(() => rmSync(local, { force: true }));
      await trimToImage(n, target, what);
      // A byte copy (not qemu-img convert): checkpoints taken while shared stay in the image.
      const r = await run('nfs-cp', [fileUrl(target, imageFile(n)), local], { timeoutMs: 600_000 });
      if (r.code !== 0) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: nfs-cp failed: ${lastLines(r.stderr || r.stdout)}`, engineCause('nfs-cp', r));
      chmodSync(local, 0o600);
      renameSync(local, localDiskPath(n));
    });
    rmSync(shareRecordPath(n), { force: true });
    withNfs(target, what, (c) => {
      for (const f of [imageFile(n), recordFile(n), incomingFile(n), leaseFile(n), guardFile(n)]) c.remove(f);
    });
    if (cluster) await forget(cluster, n, what);
  });
}

/**
 * The low floor of NFS sharing: the share record a shared container keeps here, the files beside
 * its image on the share (record, lease, incoming announcement), this host's identity and lease, and
 * what the launcher, the snapshots and migration need of a shared disk. The operations (share,
 * unshare, lease holder and break) are in share.ts, above the lifecycle.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { containerDir, containersDir, stateRoot } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { run } from '../core/run.js';
import { withRevertAsync } from '../core/revert.js';
import { buildAside } from '../core/staging.js';
import { readJson, writeJsonAtomic } from '../core/store.js';
import { baseExists, bootOf, DEFAULT_BASE, ensureDefaultBase } from './base.js';
import { localDiskPath, readRecord, recordPath, type SysRecord } from './layout.js';
import type { QemuUser } from './machine.js';
import { exportUrl, fileUrl, NfsClient, parseNfsUrl, withNfs, type NfsTarget } from './nfs.js';
import type { ShareFiles } from './storage.js';
import { claim, inCluster, myToken, passTo, unclaim } from '../cluster/claims.js';

/** Where a host keeps its NFS server setting, unless DRE_SYS_NFS gives it. */
const nfsConfigPath = () => join(stateRoot(), 'sys', 'nfs.json');

/** The NFS server this host shares containers on, as set: DRE_SYS_NFS, else $DRE_ROOT/sys/nfs.json `{ "url": ... }`; undefined when none is. */
export function nfsConfig(): string | undefined {
  return process.env.DRE_SYS_NFS || readJson<{ url?: string }>(nfsConfigPath())?.url || undefined;
}

/** The NFS export this host shares containers on (nfsConfig), parsed; none set → DRE_ERR_NFS_MOUNT_FAILED. */
export function configuredNfs(what: string): NfsTarget {
  const url = nfsConfig();
  if (!url) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: no NFS server configured (set DRE_SYS_NFS=nfs://SERVER/EXPORT or run dre-sys nfs-config URL)`);
  return parseNfsUrl(url, what);
}

/** Records the NFS server of this host after checking it can be mounted. */
export function setNfsConfig(url: string): void {
  requireRoot('set the NFS server');
  const target = parseNfsUrl(url, 'set the NFS server');
  withNfs(target, 'set the NFS server', () => undefined);
  mkdirSync(join(stateRoot(), 'sys'), { recursive: true, mode: 0o700 });
  writeJsonAtomic(nfsConfigPath(), { url });
}

/** What a shared container keeps locally: the share it lives on. */
export interface ShareRecord {
  url: string;
}

export const shareRecordPath = (n: string) => join(containerDir('sys', n), 'share.json');

/** Mounts the share a container lives on, runs `fn`, unmounts. */
export const onShare = <T>(sh: ShareRecord, what: string, fn: (c: ShareFiles) => T): T => withNfs(parseNfsUrl(sh.url, what), what, fn);
export const readShare = (n: string) => readJson<ShareRecord>(shareRecordPath(n));
export const isShared = (n: string) => existsSync(shareRecordPath(n));

// The files of container N on the share, side by side in the export's root.
export const imageFile = (n: string) => `${n}.qcow2`;
export const recordFile = (n: string) => `${n}.json`;
export const leaseFile = (n: string) => `${n}.lease`;
export const incomingFile = (n: string) => `${n}.incoming`;
export const guardFile = (n: string) => `${n}.guard`;

/** Who holds a lease: one D-RE host (its root), with a name for messages. */
export interface LeaseHolder {
  hostId: string;
  host: string;
  since?: string;
}

/** This D-RE host's identity on shares: made once per DRE_ROOT (two roots on one machine are two hosts). */
export function hostId(): string {
  const p = join(stateRoot(), 'sys', 'host-id');
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    mkdirSync(join(stateRoot(), 'sys'), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(p, randomUUID() + '\n', { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it first: theirs stands
    }
    return readFileSync(p, 'utf8').trim();
  }
}

export const thisHost = (): LeaseHolder => ({ hostId: hostId(), host: `${hostname()}:${stateRoot()}` });
export function readLease(c: ShareFiles, n: string): LeaseHolder | undefined {
  const text = c.readText(leaseFile(n));
  return text === undefined ? undefined : (JSON.parse(text) as LeaseHolder);
}

/** Takes the lease (an exclusive create on the server); a lease of another host → CONTAINER_BUSY. */
export function acquireLease(c: ShareFiles, n: string, what: string): void {
  const me = thisHost();
  if (c.writeText(leaseFile(n), JSON.stringify({ ...me, since: new Date().toISOString() }), true)) return;
  const holder = readLease(c, n);
  if (holder?.hostId === me.hostId) return;
  throw dreError(
    'DRE_ERR_CONTAINER_BUSY',
    `${what} ${n}: the shared container is run by host ${holder?.host ?? 'unknown'} (lease since ${holder?.since ?? '?'})`,
  );
}

/*
 * In a cluster, etcd decides who runs a shared container (cluster/ownership.ts) and the guard file
 * beside the image holds the fencing token of the last owner that wrote it. etcd's leases alone do
 * not exclude a host that was paused or cut off past its lease and goes on as if it still held it:
 * its token is older than the guard's, and every write D-RE makes to the image (boot, checkpoint,
 * snapshot, hand-over) reads the guard first and is refused. (The daemon also kills its own guests
 * before its lease can lapse: src/daemon/cluster.ts.)
 */
interface Guard extends LeaseHolder {
  token: number;
  /** Whether the guard's host runs the container (false once it stopped it). */
  running: boolean;
}

export function readGuard(c: ShareFiles, n: string): Guard | undefined {
  const text = c.readText(guardFile(n));
  return text === undefined ? undefined : (JSON.parse(text) as Guard);
}

/** Refuses `token` when the guard holds a newer one (a later owner wrote the image). */
function requireCurrent(c: ShareFiles, n: string, token: number, what: string): Guard | undefined {
  const g = readGuard(c, n);
  if (g && g.token > token) {
    throw dreError(
      'DRE_ERR_CONTAINER_BUSY',
      `${what} ${n}: fenced: host ${g.host} took the shared container over (token ${g.token}, this host's ${token}); this host does not write it`,
    );
  }
  return g;
}

/** The guard passes to `holder` with `token` (checked first: never back to an older token). */
function writeGuard(c: ShareFiles, n: string, token: number, holder: LeaseHolder, running: boolean, what: string): void {
  requireCurrent(c, n, token, what);
  c.writeText(guardFile(n), JSON.stringify({ ...holder, since: new Date().toISOString(), token, running } satisfies Guard));
}

/** Before a write to a running shared container's image (a checkpoint): in a cluster, only its current owner, with the current token, may. */
export async function requireOwnerHere(n: string, what: string): Promise<void> {
  const cluster = inCluster();
  const sh = readShare(n);
  if (!cluster || !sh) return;
  const token = await myToken(cluster, n, what);
  onShare(sh, `${what} ${n}`, (c) => requireCurrent(c, n, token, what));
}

/**
 * Gives up this host's lease (after stop, or a failed start), best effort; nothing when the container
 * is not shared or the lease is another's. In a cluster, only a `stopped` container is marked as
 * one that should not run: after a failed start another host may still fail it over.
 */
export async function releaseLease(n: string, opts: { stopped?: boolean } = {}): Promise<void> {
  const sh = readShare(n);
  if (!sh) return;
  const cluster = inCluster();
  try {
    onShare(sh, `release the lease of ${n}`, (c) => {
      const g = cluster && readGuard(c, n);
      if (g && g.hostId === cluster.hostId && g.running) c.writeText(guardFile(n), JSON.stringify({ ...g, running: false } satisfies Guard));
      if (!cluster && readLease(c, n)?.hostId === hostId()) c.remove(leaseFile(n));
    });
  } catch {
    /* share unreachable: the lease stays this host's (it may start the container again, or unshare it) */
  }
  if (cluster) {
    // etcd unreachable: the ownership lapses with this host's lease when the daemon cannot renew it either.
    await unclaim(cluster, n, 'release the lease of', opts.stopped === true).catch(() => undefined);
  }
}

/** What an immigration target announces on the share: who waits, on which port, and how long its QEMU took the image to be. */
interface Incoming extends LeaseHolder {
  port: number;
  imageLength: number;
}

/** The immigration target announces itself, its port and its QEMU's image length, so that the source can check them and hand it the lease. */
export function announceIncoming(n: string, port: number, imageLength: number): void {
  const sh = readShare(n);
  if (!sh) return;
  const incoming: Incoming = { ...thisHost(), port, imageLength };
  onShare(sh, `immigrate ${n}`, (c) => c.writeText(incomingFile(n), JSON.stringify(incoming)));
}

/**
 * Before a shared migration: some host must have started the immigration from the share on `port`
 * (a target running its own local copy of the container would otherwise get the guest on another disk).
 * Returns the image length the target's QEMU took (see `roomForImmigration`).
 */
export function requireIncoming(c: ShareFiles, n: string, port: number, what: string): number {
  const next = c.readText(incomingFile(n));
  const announced = next === undefined ? undefined : (JSON.parse(next) as Partial<Incoming>);
  if (announced?.port !== port || announced.hostId === hostId() || typeof announced.imageLength !== 'number') {
    throw dreError(
      'DRE_ERR_NO_SOCKET_AVAILABLE',
      `${what}: no host waits for it from the share on port ${port} (run dre-sys immigrate ${n} ${port} on the target first); it keeps running here`,
    );
  }
  return announced.imageLength;
}

/** The share of shared container `n`, mounted for a migration (closed by the caller). */
export const mountShareOf = (n: string, what: string): ShareFiles => NfsClient.mount(parseNfsUrl(readShare(n)!.url, what), what);

/**
 * The source's check at the paused switch-over, through the migration's mount (one NFS stat): a
 * reason to cancel when the image on the server outgrew the length the target's QEMU took.
 */
export function outgrownImage(c: ShareFiles, n: string, targetLength: number): () => string | undefined {
  return () => {
    const length = c.size(imageFile(n)) ?? 0;
    return length > targetLength
      ? `the shared image grew to ${length} bytes since the target opened it at ${targetLength} (it would read the rest as zeros); start the immigration there again`
      : undefined;
  };
}

/*
 * QEMU's NFS driver learns the image's length once, when it opens it, and reads past that length
 * as zeros, even after another host wrote there: it never asks again, not even when a migration
 * hands it the disk. An immigration target opens the image well before the guest arrives, while the
 * source goes on growing it (clusters copied on write after a checkpoint, new clusters, a
 * checkpoint's RAM). The target would read those clusters as zeros and write back tables built on
 * them (seen here: an ext4 root whose inode table vanished at the next boot). So the target opens an
 * image lengthened by sparse room for all the source may still add, and announces the length its
 * QEMU took; the source pauses before the switch-over and cancels it if the image outgrew that.
 */
/** qemu-img's JSON about the shared image (info or check), or undefined when it cannot say. */
export async function imageJson(args: string[], url: string): Promise<Record<string, unknown> | undefined> {
  const r = await run('qemu-img', [...args, '-U', '--output=json', url], { timeoutMs: 120_000 });
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const MiB = 2 ** 20;

/**
 * Before an immigration target opens the image: it is made as long as its used end plus the whole
 * virtual disk (every cluster copied or allocated once more), twice the guest's RAM (checkpoints)
 * and 64 MiB of tables. The room is sparse: it takes no space on the server. Asks qemu-img now;
 * returns the step that lengthens the file, for the caller's mount.
 */
async function roomForImmigration(n: string, rec: SysRecord, target: NfsTarget, what: string): Promise<(c: ShareFiles) => void> {
  const url = fileUrl(target, imageFile(n));
  const [info, check] = await Promise.all([imageJson(['info'], url), imageJson(['check'], url)]);
  const virtual = Number(info?.['virtual-size']);
  const end = Number(check?.['image-end-offset']);
  return (c) => {
    // Thrown here, after the caller's check that the share still holds the container.
    if (!Number.isFinite(virtual)) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what} ${n}: qemu-img cannot read ${url}`);
    const length = c.size(imageFile(n)) ?? 0;
    const used = Number.isFinite(end) && end > 0 ? end : length; // a check that cannot say: the file's own end
    const room = Math.ceil((used + virtual + 2 * rec.memoryMiB * MiB + 64 * MiB) / MiB) * MiB;
    if (length < room) c.truncate(imageFile(n), room);
  };
}

/**
 * After a completed migration: the lease passes to the host that announced itself as the target (in
 * a cluster: the ownership in etcd, by this host's token, and the guard with the new token).
 */
export async function handOverLease(n: string): Promise<LeaseHolder | undefined> {
  const sh = readShare(n);
  if (!sh) return undefined;
  const what = `hand over the lease of ${n}`;
  const announced = onShare(sh, what, (c) => {
    const text = c.readText(incomingFile(n));
    return text === undefined ? undefined : (JSON.parse(text) as LeaseHolder);
  });
  const cluster = inCluster();
  const passed = cluster && announced ? await passTo(cluster, n, await myToken(cluster, n, 'hand over'), announced.hostId, 'hand over') : undefined;
  return onShare(sh, what, (c) => {
    if (passed) writeGuard(c, n, passed.token, { hostId: announced!.hostId, host: passed.host }, true, 'hand over');
    else if (announced && !cluster) c.writeText(leaseFile(n), JSON.stringify({ ...announced, since: new Date().toISOString() }));
    else if (!cluster) c.remove(leaseFile(n)); // a target that did not announce itself: nobody holds it, any host may start it
    c.remove(incomingFile(n));
    return announced;
  });
}

/**
 * QEMU's NFS driver speaks AUTH_SYS with the uid and gid its nfs:// URL names (else its process's).
 * The image belongs to that identity (0600), which every host's QEMU uses for it whatever its local
 * dre-qemu uid is (both ends of a migration write the same file); records and leases stay root's.
 * The export's root gets search (not listing) for others so that identity may reach the image.
 * An image made before QEMU was confined (root's) is given to this host's QEMU user.
 */
export function imageIdentity(c: ShareFiles, n: string, user: QemuUser, what: string): { uid: number; gid: number } {
  const root = c.stat('');
  if (root && (root.mode & 0o001) === 0) c.chmod('', root.mode | 0o001);
  const st = c.stat(imageFile(n));
  if (!st) throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${n}: the share has no image ${imageFile(n)}`);
  if (st.uid !== 0 && st.gid !== 0) return st;
  c.chown(imageFile(n), user.uid, user.gid);
  if (st.mode !== 0o600) c.chmod(imageFile(n), 0o600);
  return user;
}

/** The image as this host's QEMU opens it: with the image owner's NFS identity, never root's. */
const qemuImageUrl = (target: NfsTarget, n: string, id: { uid: number; gid: number }) => `${fileUrl(target, imageFile(n))}?uid=${id.uid}&gid=${id.gid}`;

/**
 * Hook of launch: a shared container boots from its image on the share, under this host's lease; an
 * immigration only announces itself (the source holds the lease until the guest has moved).
 */
export async function sharedBootFiles(n: string, rec: SysRecord, what: string, incoming: boolean, user: QemuUser) {
  const sh = readShare(n);
  if (!sh) return undefined;
  const kernelBase = rec.base ?? DEFAULT_BASE;
  if (kernelBase === DEFAULT_BASE) await ensureDefaultBase();
  if (!baseExists(kernelBase))
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what} ${n}: its Base Image ${kernelBase} (for the kernel) is missing on this host`);
  const target = parseNfsUrl(sh.url, `${what} ${n}`);
  const makeRoom = incoming ? await roomForImmigration(n, rec, target, what) : undefined;
  // In a cluster the source of an immigration keeps the ownership until the guest has moved.
  const cluster = incoming ? undefined : inCluster();
  const id = await withRevertAsync(async (revert) => {
    const token = cluster && (await claim(cluster, n, what));
    if (cluster) revert.add(() => unclaim(cluster, n, what, false));
    return withNfs(target, `${what} ${n}`, (c) => {
      if (c.readText(recordFile(n)) === undefined)
        throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${n}: ${sh.url} no longer holds it (unshared by another host?)`);
      if (makeRoom) makeRoom(c);
      else if (token !== undefined) writeGuard(c, n, token, thisHost(), true, what);
      else acquireLease(c, n, what);
      return imageIdentity(c, n, user, what);
    });
  });
  const boot = bootOf(kernelBase);
  // Only the kernel and initramfs are local files; the image QEMU opens over NFS with its own identity.
  return { disk: qemuImageUrl(target, n, id), diskFormat: 'qcow2' as const, ...boot, writable: [], readable: [] };
}

/**
 * Where the container's disk is now: local, or (shared) its image on the NFS share, which QEMU and
 * qemu-img open as nfs:// (snapshots and checkpoints work on it there). Using a shared disk while
 * another host runs the container → DRE_ERR_CONTAINER_BUSY.
 */
export function diskPath(n: string): string {
  const sh = readShare(n);
  if (!sh) return localDiskPath(n);
  const target = parseNfsUrl(sh.url, `disk of ${n}`);
  withNfs(target, `disk of ${n}`, (c) => {
    const guard = inCluster() && readGuard(c, n);
    const holder = guard ? (guard.running ? guard : undefined) : readLease(c, n);
    if (holder && holder.hostId !== hostId())
      throw dreError('DRE_ERR_CONTAINER_BUSY', `${n}: the shared container is run by host ${holder.host}; its disk is not touched from here`);
  });
  return fileUrl(target, imageFile(n));
}

/**
 * A container this host does not know yet but the share holds: its record is copied here (made in a
 * staging directory and renamed into place), marked shared. Returns false when the share has none.
 */
export async function importShared(name: string, what: string): Promise<boolean> {
  const n = checkName(name, 'container name');
  if (readRecord(n)) return true;
  let target: NfsTarget;
  try {
    target = configuredNfs(what);
  } catch {
    return false; // no share configured: the container is simply unknown here
  }
  const text = withNfs(target, what, (c) => c.readText(recordFile(n)));
  if (text === undefined) return false;
  const { sharedBy: _ignored, ...rec } = JSON.parse(text) as SysRecord & { sharedBy?: unknown };
  return withLock('sys', n, what, async () => {
    if (readRecord(n)) return true;
    await buildAside(containersDir('sys'), n, (staging) => {
      writeJsonAtomic(join(staging, 'dre.json'), { ...rec, name: n });
      writeJsonAtomic(join(staging, 'share.json'), { url: exportUrl(target) } satisfies ShareRecord);
    });
    return existsSync(recordPath(n));
  });
}

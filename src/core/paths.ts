import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { isAbsolute, join, resolve } from 'node:path';

/** Which engine a container belongs to: application containers (LXC) or system containers (QEMU). */
export type Kind = 'app' | 'sys';

/** Persistent state (containers, bases, snapshots): `DRE_ROOT`, default /var/lib/dre. */
export function stateRoot(): string {
  return process.env.DRE_ROOT || '/var/lib/dre';
}

/** Runtime state (locks, sockets, pid files), gone after a reboot: `DRE_RUNDIR`, default /run/dre. */
export function runRoot(): string {
  return process.env.DRE_RUNDIR || '/run/dre';
}

/** The directory holding every container of a kind (for LXC, its lxcpath). */
export function containersDir(kind: Kind): string {
  return join(stateRoot(), kind, 'containers');
}

export function containerDir(kind: Kind, name: string): string {
  return join(containersDir(kind), name);
}

export function basesDir(kind: Kind): string {
  return join(stateRoot(), kind, 'bases');
}

export function baseDir(kind: Kind, name: string): string {
  return join(basesDir(kind), name);
}

/** Runtime files of one container (pid files, sockets, logs of the current run). */
export function containerRunDir(kind: Kind, name: string): string {
  return join(runRoot(), kind, name);
}

export function locksDir(): string {
  return join(runRoot(), 'locks');
}

/** A container's record, for both kinds: dre.json in its directory. */
export const containerRecordPath = (kind: Kind, name: string) => join(containerDir(kind, name), 'dre.json');

/** Staging area for half-made things; names starting with '.' are never listed. */
export function stagingPath(dir: string, name: string): string {
  return join(dir, `.staging-${name}-${process.pid}-${Date.now().toString(36)}`);
}

/**
 * The cgroup of this D-RE root, relative to each hierarchy's root: `dre/<id>`, with an id derived from
 * DRE_ROOT (or the `root` given) so that two roots never share a group.
 */
export function cgroupRoot(root = stateRoot()): string {
  let group = groupOfRoot.get(root);
  if (group === undefined) {
    // SHA-256 from @noble/hashes, not node:crypto: loading node:crypto costs a CLI 3–7 ms at every start.
    group = `dre/${bytesToHex(sha256(utf8ToBytes(resolve(root)))).slice(0, 10)}`;
    if (isAbsolute(root)) groupOfRoot.set(root, group);
  }
  return group;
}

/** cgroupRoot's answers (a create asks a dozen times); relative roots are not kept, as the cwd may change. */
const groupOfRoot = new Map<string, string>();

/** The cgroup above every container of a kind in this root: `dre/<id>/<kind>`. */
export function kindGroup(kind: Kind): string {
  return `${cgroupRoot()}/${kind}`;
}

/** A container's own cgroup (its limits apply here): `dre/<id>/<kind>/<name>`. */
export function containerGroup(kind: Kind, name: string): string {
  return `${kindGroup(kind)}/${name}`;
}

/** Downloads kept between builds (kernel and Debian packages): `DRE_CACHE_DIR`, default /var/cache/dre. */
export function cacheRoot(): string {
  return process.env.DRE_CACHE_DIR || '/var/cache/dre';
}

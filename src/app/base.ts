import { existsSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BASE, layBusyboxRoot, requireBusybox } from '../core/busybox.js';
import { dreError, type DreErrName } from '../core/errors.js';
import { baseDir, basesDir } from '../core/paths.js';
import { buildAside } from '../core/staging.js';
import { baseRecordCheck, readRecordOr } from '../core/records.js';
import { withLock, type ContainerLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { requireRoot } from '../core/privilege.js';
import { isDreError } from '../core/errors.js';
import { installDropbear } from './ssh.js';
import { confineDir, rootIdRange, shiftOwners, treeOwner, type IdRange } from './userns.js';

export { DEFAULT_BASE };
/** The same busybox system owned by host root, for `--privileged` containers (whose ids are not mapped). */
export const PRIVILEGED_DEFAULT_BASE = 'default-privileged';
/** Names D-RE builds itself; commit refuses them. */
export const BUILT_IN_BASES = [DEFAULT_BASE, PRIVILEGED_DEFAULT_BASE];

export const defaultBaseFor = (privileged: boolean) => (privileged ? PRIVILEGED_DEFAULT_BASE : DEFAULT_BASE);

/** The root file system of a Base Image (its lower layer). */
export function baseRootfs(base: string): string {
  return join(baseDir('app', base), 'rootfs');
}

/** What a committed Base Image holds besides its top layer `rootfs` (the default base has no record). */
export interface BaseRecord {
  /** The Base Image it stands on (its layers go under this one's); null for a base that stands alone. */
  parent: string | null;
  /** Its own layer directories inside the base directory, topmost first; the first is always `rootfs`. */
  layers: string[];
  /** The container and snapshot it was committed from. */
  from: { container: string; snapshot: string };
  created: string;
}

export const baseRecordPath = (base: string) => join(baseDir('app', base), 'base.json');

/** A committed base's record, checked (records.ts); a torn or hand-broken one → DRE_ERR_BASE_NONEXISTENCE naming the file. */
export function readBaseRecord(base: string): BaseRecord | undefined {
  const fix = `restore the file, or remove the base with dre-app rm-base ${base} once nothing stands on it`;
  return readRecordOr<BaseRecord>(baseRecordPath(base), baseRecordCheck, 'DRE_ERR_BASE_NONEXISTENCE', `Base Image ${base}`, fix);
}

/** A Base Image exists once its directory holds `rootfs` (it is renamed into place complete). */
export function baseExists(base: string): boolean {
  return existsSync(baseRootfs(base));
}

/** Every read-only layer a Base Image stands on, topmost first: its own, then its parent's, down to a base that stands alone. */
export function baseLowers(base: string): string[] {
  const dirs: string[] = [];
  const seen = new Set<string>();
  for (let b: string | null = base; b !== null && !seen.has(b);) {
    seen.add(b);
    const rec = readBaseRecord(b);
    dirs.push(...(rec?.layers ?? ['rootfs']).map((l) => join(baseDir('app', b!), l)));
    b = rec?.parent ?? null;
  }
  return dirs;
}

// Boot: mount what LXC did not (its /run holds the D-Aware registry), start syslogd, mark readiness, and nothing that waits on the network (no udhcpc).
const INITTAB = `::sysinit:/etc/init.d/rcS
::shutdown:/bin/sync
`;
const RCS = `#!/bin/sh
mkdir -p /run /tmp /var/log /var/run
grep -qs ' /run ' /proc/mounts || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run 2>/dev/null
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp 2>/dev/null
# The system logger D-Aware's DLOG_* reaches through /dev/log; the host reads the container's /var/log/messages.
syslogd -O /var/log/messages 2>/dev/null
[ -x /etc/init.d/rc.local ] && /etc/init.d/rc.local
touch /run/dre-booted
`;

/** Lays out a busybox system in `root` from the host's static busybox, offline, with SSH. */
async function layBusyboxRootfs(root: string): Promise<void> {
  await layBusyboxRoot(
    root,
    ['home', 'lib', 'opt'],
    {
      'etc/inittab': INITTAB,
      'etc/init.d/rcS': { text: RCS, mode: 0o755 },
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
      'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
      'etc/shadow': { text: 'root:*:19000:0:99999:7:::\n', mode: 0o600 },
      'etc/fstab': '',
      'etc/hosts': '127.0.0.1 localhost\n::1 localhost\n',
      'etc/profile': 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport HOME=/root\n',
    },
    'default base',
  );
  await installDropbear(root);
}

/**
 * Refuses a base whose files belong to the other kind of container: a privileged container would see
 * the mapped owners as plain numbers, an unprivileged one host-root files as nobody's.
 */
export function requireMatchingBase(base: string, range: IdRange | null, what: string): void {
  const owner = treeOwner(baseRootfs(base));
  if (owner === (range?.uid ?? 0)) return;
  throw dreError(
    'DRE_ERR_INVALID_ARGUMENT',
    range
      ? `${what}: Base Image ${base} belongs to privileged containers (its files are owned by host root); create with --privileged, or commit it from an unprivileged container`
      : `${what}: Base Image ${base} belongs to unprivileged containers (owned by host uid ${owner}); create without --privileged`,
  );
}

/**
 * Makes sure a built-in Base Image exists (other names: nothing to do), building it from busybox-static
 * when missing: `default` owned by the root's id range, `default-privileged` by host root.
 * Built in a staging directory and renamed into place, so a killed build never looks complete.
 */
export async function ensureBuiltInBase(base: string): Promise<void> {
  if (!BUILT_IN_BASES.includes(base) || baseExists(base)) return;
  const range = base === DEFAULT_BASE ? rootIdRange() : null;
  requireBusybox('default base');
  await buildAside(
    basesDir('app'),
    base,
    async (staging) => {
      await layBusyboxRootfs(join(staging, 'rootfs'));
      if (range) shiftOwners(join(staging, 'rootfs'), range);
      confineDir(staging, range);
    },
    // Another process finished the same build first: theirs is as good as ours.
    { dirMode: 0o711, ifTaken: () => {} },
  );
}

/**
 * Removes the device nodes a root brings in /dev (mmdebstrap's, a tarball's): LXC mounts the container's
 * own /dev over it (autodev), and the container's root could not make them again (an export unpacks
 * layers inside the id map, where mknod of a real device is refused).
 */
function removeDeviceNodes(dev: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dev);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dev, e);
    const st = lstatSync(p);
    if (st.isCharacterDevice() || st.isBlockDevice()) rmSync(p);
    else if (st.isDirectory()) removeDeviceNodes(p);
  }
}

/** Runs `fn` holding the Base Image's own lock (a build, an import, a commit or a removal of that name). */
export const withBaseLock = <T>(base: string, what: string, fn: (lock: ContainerLock) => Promise<T>) => withLock('app', `.base-${base}`, what, fn);

/**
 * Makes a new stand-alone Base Image `name` (a build or an import): `fill` lays its root file system
 * out in a staging directory as host root would own it; the tree is then given to this root's id range
 * (shifted, as the default base is) and renamed into place, so a failed or killed fill never leaves a
 * half base (the next one removes the staging entry). Failures that are not DRE errors become `code`.
 */
export async function installBase(
  base: unknown,
  what: string,
  fill: (rootfs: string, lock: ContainerLock) => Promise<void>,
  code: DreErrName = 'DRE_ERR_BASE_NONEXISTENCE',
): Promise<string> {
  const b = checkName(base, 'base name');
  const doing = `${what} ${b}`;
  requireRoot(doing);
  await withBaseLock(b, what, async (lock) => {
    if (BUILT_IN_BASES.includes(b) || baseExists(b))
      throw dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: a Base Image of that name exists (dre-app rm-base ${b} first)`);
    const range = rootIdRange();
    try {
      await buildAside(
        basesDir('app'),
        b,
        async (staging) => {
          await fill(join(staging, 'rootfs'), lock);
          removeDeviceNodes(join(staging, 'rootfs', 'dev'));
          shiftOwners(join(staging, 'rootfs'), range);
          confineDir(staging, range);
        },
        { dirMode: 0o711, ifTaken: () => dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: a Base Image of that name appeared meanwhile`) },
      );
    } catch (e) {
      if (isDreError(e)) throw e;
      throw dreError(code, `${doing}: ${(e as Error).message}`, e);
    }
  });
  return b;
}

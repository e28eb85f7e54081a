/**
 * Export and import of a system container as one file (docs/export-format.md, "System containers"):
 * a tar (zstd when asked) of a manifest, the container's qcow2 overlay (its snapshots and checkpoints
 * are internal qcow2 snapshots, so they travel inside it) and the files of its Base Image, each
 * with its size and sha256 in the manifest, checked before anything is made on import. A sys base's
 * disk stands alone (a commit flattens), so the chain is that one base. The base always travels, the
 * built-in `default` too: the overlay holds only the blocks written over the very disk it was made
 * on, and each host builds its own default (another ext4 UUID, other bytes), so an import uses the
 * target's `default` only when its files hash identical and otherwise brings the exported one in
 * as base `default-<12 hex of its disk's sha256>`: a VM never boots its overlay over another disk.
 * Whatever fails, nothing is left: the container is made aside and renamed into place, a base it
 * made is removed again, its address is released.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as archive from '../core/archive.js';
import type { ExportOptions, Members } from '../core/archive.js';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { record } from '../core/journal.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { claimNetwork, releaseNetwork } from '../core/network.js';
import { baseDir, basesDir, containerDir, containersDir, stagingPath } from '../core/paths.js';
import { bool, shape, str, strings, sysRecordCheck } from '../core/records.js';
import { withRevertAsync, type AsyncRevert } from '../core/revert.js';
import { buildAside, withScratch } from '../core/staging.js';
import { writeJsonAtomic } from '../core/store.js';
import { baseBoot, baseExists, DEFAULT_BASE, readBaseBoot, type BaseBoot } from './base.js';
import { removeCgroups } from './hostgroup.js';
import { imageInfo, readQcow2Header, requireOwnBacking, type ImageInfo } from './image.js';
import { baseDiskPath, CHECKPOINT_PREFIX, localDiskPath, SNAPSHOT_PREFIX, type SysRecord } from './layout.js';
import { isShared } from './lease.js';
import { changing } from './lifecycle.js';
import { filterTags } from './snapshots.js';
import { refuseUnless } from './state.js';
import { sysMac } from './tap.js';

export const EXPORT_FORMAT = 'dre-sys-export';
export const EXPORT_VERSION = 1;

/**
 * A Base Image's files, as the file carries them below `bases/NAME/`: its disk, D-RE's kernel and
 * initramfs unless the firmware boots the disk itself (an imported disk, imports.ts), and base.json.
 */
const baseFiles = (firmware: boolean) => ['disk.qcow2', ...(firmware ? [] : ['vmlinuz', 'initrd.img']), 'base.json'];
/** The files that make a base what it is; base.json only describes it (the default's says when it was built). */
const basePayload = (firmware: boolean) => baseFiles(firmware).filter((f) => f !== 'base.json');
const CONTAINER_DISK = 'container/disk.qcow2';

export interface Manifest {
  format: typeof EXPORT_FORMAT;
  version: number;
  created: string;
  /** The container's dre.json as it was. */
  record: SysRecord;
  /** Tags of its snapshots and checkpoints (internal snapshots of its disk, without their prefixes). */
  snapshots: string[];
  checkpoints: string[];
  /** Its Base Image (record.base); builtIn: the host-built `default`. */
  base: { name: string; builtIn: boolean };
  /** Every other member of the file: its path, size and sha256. */
  members: Members;
}

const manifestCheck = shape({
  ...archive.manifestFields(EXPORT_FORMAT, EXPORT_VERSION),
  record: sysRecordCheck,
  snapshots: strings,
  checkpoints: strings,
  base: shape({ name: str, builtIn: bool }),
});

const baseMember = (base: string, file: string) => `bases/${base}/${file}`;
const expectedMembers = (base: string, firmware: boolean) => [CONTAINER_DISK, ...baseFiles(firmware).map((f) => baseMember(base, f))].sort();
/** The file's base is booted by the firmware: it carries no kernel (the manifest says so by its members, base.json by its boot). */
const firmwareBooted = (m: Manifest) => m.members[baseMember(m.base.name, 'vmlinuz')] === undefined;

/** The disk's internal snapshots, by kind. */
const tagsOf = (info: ImageInfo) => ({
  snapshots: filterTags(info.snapshots ?? [], SNAPSHOT_PREFIX),
  checkpoints: filterTags(info.snapshots ?? [], CHECKPOINT_PREFIX),
});

/**
 * What is wrong with the qcow2 at `path` by its own header (read by D-RE: no qemu-img opens what an
 * untrusted header names): not qcow2, an external data file, or a backing file where `mayBack` is false.
 */
function qcow2Problem(path: string, mayBack: boolean): string | undefined {
  const head = readQcow2Header(path);
  if (!head) return 'is not a qcow2 image';
  if (head.externalData) return 'keeps its data in an external data file, which D-RE never makes';
  if (head.backing && !mayBack) return "names a backing file; a base's disk stands alone";
  return undefined;
}

/** Writes the stopped container `name` with its snapshots, checkpoints and Base Image into `file` (replaced whole, or not at all). */
export async function exportContainer(name: string, file: string, opts: ExportOptions = {}): Promise<void> {
  const { out, zstd } = archive.exportTarget(file, opts?.compress);
  await changing('export', name, async (n, rec, lock) => {
    const what = `export ${n}`;
    await refuseUnless(n, what, [STATUS.STOP]);
    if (rec.base === null)
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: it runs on rootfs ${rec.rootfs}, which is not D-RE's to carry; copy that image yourself`);
    if (isShared(n)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: it is shared over NFS, where its disk lives; unshare it first`);
    const base = rec.base;
    if (!baseExists(base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: its Base Image ${base} is missing`);
    // Root reads the disk and the base: their headers must be as D-RE made them (image.ts).
    for (const [disk, mayBack] of [
      [localDiskPath(n), true],
      [baseDiskPath(base), false],
    ] as const) {
      const wrong = qcow2Problem(disk, mayBack);
      if (wrong) throw dreError('DRE_ERR_CONTAINER_UNKNOWN_STATUS', `${what}: ${disk} ${wrong} (written by its QEMU?); refused`);
    }
    const info = await imageInfo(localDiskPath(n), what, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS');
    requireOwnBacking(info, baseDiskPath(base), what, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS');
    requireOwnBacking(await imageInfo(baseDiskPath(base), what, 'DRE_ERR_BASE_NONEXISTENCE'), undefined, `${what}: base ${base}`, 'DRE_ERR_BASE_NONEXISTENCE');
    await withScratch(`${out}.dre-export-${process.pid}`, async (staging) => {
      // Links to the files, which tar stores dereferenced: nothing is copied before the tar itself.
      const members: Members = {};
      const add = (member: string, path: string) => {
        mkdirSync(join(staging, member, '..'), { recursive: true, mode: 0o700 });
        symlinkSync(path, join(staging, member));
        members[member] = archive.memberOf(path);
      };
      add(CONTAINER_DISK, localDiskPath(n));
      for (const f of baseFiles(baseBoot(base).boot === 'firmware')) add(baseMember(base, f), join(baseDir('sys', base), f));
      const manifest: Manifest = {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        created: new Date().toISOString(),
        record: rec,
        ...tagsOf(info),
        base: { name: base, builtIn: base === DEFAULT_BASE },
        members,
      };
      writeJsonAtomic(join(staging, 'manifest.json'), manifest);
      await archive.writeArchive(what, out, staging, Object.keys(members), { zstd, dereference: true, lock });
    });
  });
}

/** Checks the manifest's shape and names, and every member against it: exactly the expected ones, each of its size and sha256. */
function verify(scratch: string, what: string): Manifest {
  const damaged = (why: string) => archive.damagedArchive(what, why);
  const m = archive.readManifest<Manifest>(scratch, manifestCheck, what);
  checkName(m.record.name, 'container name in the file');
  checkName(m.base.name, 'base name in the file');
  for (const t of [...m.snapshots, ...m.checkpoints]) checkName(t, 'snapshot or checkpoint tag in the file');
  if (m.record.base !== m.base.name || m.record.rootfs !== null)
    throw damaged(`the record stands on ${m.record.base ?? m.record.rootfs}, not base ${m.base.name}`);
  if (m.base.builtIn !== (m.base.name === DEFAULT_BASE)) throw damaged(`base ${m.base.name} is ${m.base.builtIn ? '' : 'not '}marked built-in`);
  const listed = Object.keys(m.members).sort();
  const want = expectedMembers(m.base.name, firmwareBooted(m));
  if (listed.join('\n') !== want.join('\n')) throw damaged(`it lists members ${listed.join(', ')}, not ${want.join(', ')}`);
  archive.verifyMembers(scratch, m.members, what);
  return m;
}

/**
 * The unpacked disks are qcow2 as D-RE makes them: the base's stands alone, the container's holds the
 * snapshots the manifest names; the base boots as its members say. Resolves to that boot (its base.json).
 */
async function verifyDisks(m: Manifest, scratch: string, what: string): Promise<BaseBoot> {
  const damaged = (why: string) => archive.damagedArchive(what, why);
  // Read by D-RE first: qemu-img info as root would open a data file the header names (any host path).
  for (const member of [baseMember(m.base.name, 'disk.qcow2'), CONTAINER_DISK]) {
    const wrong = qcow2Problem(join(scratch, member), member === CONTAINER_DISK);
    if (wrong) throw damaged(`${member} ${wrong}`);
  }
  const baseInfo = await imageInfo(join(scratch, baseMember(m.base.name, 'disk.qcow2')), what, 'DRE_ERR_INVALID_ARGUMENT');
  const info = await imageInfo(join(scratch, CONTAINER_DISK), what, 'DRE_ERR_INVALID_ARGUMENT');
  if (baseInfo.format !== 'qcow2' || info.format !== 'qcow2') throw damaged('a disk in it is not a qcow2 image');
  // Backing files are set here (the exported header names the source host's path); a data file never.
  requireOwnBacking(baseInfo, undefined, `${what}: base ${m.base.name}`, 'DRE_ERR_INVALID_ARGUMENT');
  requireOwnBacking({ ...info, 'backing-filename': undefined, 'full-backing-filename': undefined }, undefined, what, 'DRE_ERR_INVALID_ARGUMENT');
  const boot = readBaseBoot(join(scratch, baseMember(m.base.name, 'base.json')), `${what}: base ${m.base.name}`);
  if ((boot.boot === 'firmware') !== firmwareBooted(m))
    throw damaged(`base ${m.base.name} boots by ${boot.boot}, but the file carries ${firmwareBooted(m) ? 'no' : 'a'} kernel`);
  const { snapshots, checkpoints } = tagsOf(info);
  if (snapshots.join() !== [...m.snapshots].sort().join() || checkpoints.join() !== [...m.checkpoints].sort().join()) {
    throw damaged(`its disk holds snapshots [${snapshots}] and checkpoints [${checkpoints}], the manifest says [${m.snapshots}] and [${m.checkpoints}]`);
  }
  return boot;
}

/** Moves a file from the scratch directory to where it belongs (a copy across file systems). */
function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(from, to);
  }
  chmodSync(to, 0o600);
}

/**
 * The base the imported overlay goes on: an existing one of the same name whose payload hashes
 * identical, or the one in the file made here (its removal added to `revert`). A built-in `default`
 * that differs here comes in as `default-<hash>`; any other same-named base that differs is refused
 * (DRE_ERR_BASE_EXISTENCE). Resolves to the base's name on this host.
 */
async function placeBase(m: Manifest, boot: BaseBoot, scratch: string, what: string, revert: AsyncRevert): Promise<string> {
  const firmware = boot.boot === 'firmware';
  // A base here whose base.json cannot be read is not the same one (refused below, never used).
  const bootHere = (name: string) => {
    try {
      return baseBoot(name);
    } catch {
      return undefined;
    }
  };
  const sameAs = (name: string) =>
    baseExists(name) &&
    isDeepStrictEqual(bootHere(name), boot) &&
    basePayload(firmware).every((f) => archive.sha256File(join(baseDir('sys', name), f)) === m.members[baseMember(m.base.name, f)].sha256);
  if (m.base.builtIn && sameAs(DEFAULT_BASE)) return DEFAULT_BASE;
  const target = m.base.builtIn ? `${DEFAULT_BASE}-${m.members[baseMember(DEFAULT_BASE, 'disk.qcow2')].sha256.slice(0, 12)}` : m.base.name;
  const differs = () =>
    dreError(
      'DRE_ERR_BASE_EXISTENCE',
      `${what}: a different Base Image named ${target} exists here; remove it (dre-sys rm-base ${target}) or import where it is the same`,
    );
  await withLock('sys', `.base-${target}`, 'import base', async () => {
    if (existsSync(baseDir('sys', target))) {
      if (!sameAs(target)) throw differs();
      return;
    }
    const made = await buildAside(basesDir('sys'), target, (staging) => {
      for (const f of baseFiles(firmware)) moveFile(join(scratch, baseMember(m.base.name, f)), join(staging, f));
    });
    revert.add(() => rmSync(made, { recursive: true, force: true }));
  });
  return target;
}

/**
 * Makes a system container from an exported `file`, named `newName` or as it was exported; every
 * member is checked against the manifest first. DRE_ERR_INVALID_ARGUMENT for a damaged or truncated
 * file, DRE_ERR_CONTAINER_EXISTENCE for a taken name, DRE_ERR_BASE_EXISTENCE for a different base of
 * the same name; nothing is left behind on failure. Resolves to the name.
 */
export async function importContainer(file: string, newName?: string): Promise<string> {
  const src = archive.importSource(file);
  const n = newName === undefined || newName === null ? await archive.peekName(src, `import ${src}`) : checkName(newName, 'container name');
  const what = `import ${n} from ${src}`;
  await withLock('sys', n, 'import', async (lock) => {
    if (existsSync(containerDir('sys', n))) throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `${what}: a system container of that name exists`);
    removeCgroups(n); // left by a destroy that was killed half-way
    mkdirSync(containersDir('sys'), { recursive: true, mode: 0o700 });
    await withScratch(stagingPath(containersDir('sys'), `import-${n}`), (scratch) =>
      withRevertAsync(async (revert) => {
        await archive.unpackArchive(what, src, scratch, lock);
        const m = verify(scratch, what);
        const boot = await verifyDisks(m, scratch, what);
        const base = await placeBase(m, boot, scratch, what, revert);
        // Unsafe: only the header changes, to name this host's copy of the very disk it was made on.
        const disk = join(scratch, CONTAINER_DISK);
        await archive.mustRun(`${what}: rebase its disk on ${base}`, 'qemu-img', [
          'rebase',
          '-u',
          '-f',
          'qcow2',
          '-F',
          'qcow2',
          '-b',
          baseDiskPath(base),
          disk,
        ]);
        const networked = m.record.address !== null && m.record.address !== undefined;
        const lease = await claimNetwork('sys', n, networked, m.record.port ?? null);
        revert.add(() => releaseNetwork('sys', n));
        const { mac: _oldMac, ...kept } = m.record;
        const rec: SysRecord = {
          ...kept,
          name: n,
          base,
          address: lease.address,
          port: lease.port,
          ...(lease.address ? { mac: sysMac(n) } : {}),
          created: new Date().toISOString(),
        };
        const dir = await buildAside(containersDir('sys'), n, (staging) => {
          moveFile(disk, join(staging, 'disk.qcow2'));
          writeJsonAtomic(join(staging, 'dre.json'), rec);
        });
        revert.add(() => rmSync(dir, { recursive: true, force: true }));
        // A base removed while this was being made: undo (remove_base checks for users after moving the base away).
        if (!baseExists(base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: Base Image ${base} was removed meanwhile`);
      }),
    );
  });
  record('sys', n, 'imported', { file: src });
  return n;
}

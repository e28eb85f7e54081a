/**
 * Export and import of an application container as one file (docs/export-format.md): a tar (zstd
 * when asked) of a manifest and one tar per layer (the upper, every snapshot's layers, the layers of
 * its Base Images but the built-in ones), each with its size and sha256 in the manifest, checked
 * before anything is made on import. Layers are tarred and untarred inside the container's user
 * namespace (lxc-usernsexec with the root's id map), so the file holds the ids as seen inside and an
 * import into another root (another id range) lands owned by that root's ids with no shifting pass;
 * `--sort=name` makes a layer's tar depend on its files only, which is how an existing base of the
 * same name is found identical (or not). Whatever fails, nothing is left: the container is made aside
 * and renamed into place, bases it made are removed again, its address is released.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARCHIVE_TIMEOUT_MS,
  damagedArchive,
  exportTarget,
  importSource,
  listOf,
  manifestFields,
  mustRun,
  peekName,
  readManifest,
  unpackArchive,
  verifyMembers,
  writeArchive,
  type ExportOptions,
  type Members,
} from '../core/archive.js';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { record } from '../core/journal.js';
import { withLock, type ContainerLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { makeOwnedDir } from '../core/access.js';
import { baseDir, basesDir, containerDir, containersDir, stagingPath } from '../core/paths.js';
import { appRecordCheck, baseRecordCheck, shape, snapshotRecordCheck, str, strings, bool } from '../core/records.js';
import { lastLines, run } from '../core/run.js';
import { withRevertAsync, type AsyncRevert } from '../core/revert.js';
import { buildAside, withScratch } from '../core/staging.js';
import { writeFileAtomic, writeJsonAtomic } from '../core/store.js';
import { baseExists, BUILT_IN_BASES, ensureBuiltInBase, readBaseRecord, withBaseLock, type BaseRecord } from './base.js';
import { layerDir, upperDir, type AppRecord } from './layout.js';
import { tidy, readSnapshot, usableSnapshotTags, type SnapshotRecord } from './layers.js';
import { changing } from './lifecycle.js';
import { containerIdRange, renderLxcConfig } from './lxcconfig.js';
import { claimNetwork, releaseNetwork } from './network.js';
import { refuseUnless } from './state.js';
import { allowTraversal, confineDir, rootIdRange, type IdRange } from './userns.js';

export const EXPORT_FORMAT = 'dre-app-export';
export const EXPORT_VERSION = 1;

/** One base of the container's chain as the file carries it, topmost first in `Manifest.bases`. */
interface ExportedBase {
  name: string;
  /** Its layer directories (base.json's `layers`, or `rootfs` alone). */
  layers: string[];
  /** Its base.json, for a committed base; null for one that stands alone. */
  record: BaseRecord | null;
}

export interface Manifest {
  format: typeof EXPORT_FORMAT;
  version: number;
  created: string;
  privileged: boolean;
  record: AppRecord;
  snapshots: SnapshotRecord[];
  bases: ExportedBase[];
  /** The built-in base at the bottom of the chain (the target builds its own), or null. */
  builtInBase: string | null;
  /** Every other member of the file: its path, size and sha256. */
  members: Members;
}

const LAYER_ID = /^[0-9a-z]{1,16}$/;
const MEMBER_PATH = /^(container\/(upper|layers\/[0-9a-z]{1,16})|bases\/[^/]+\/[^/]+)\.tar$/;

const manifestCheck = shape({
  ...manifestFields(EXPORT_FORMAT, EXPORT_VERSION),
  privileged: bool,
  record: appRecordCheck,
  snapshots: listOf(snapshotRecordCheck),
  bases: listOf(shape({ name: str, layers: strings, record: (v) => (v === null ? undefined : baseRecordCheck(v)) })),
  builtInBase: (v) => (v === null || typeof v === 'string' ? undefined : 'a string or null'),
});

/** The command that runs tar as the container's root would (inside its id map), or as host root for a privileged container. */
function tarArgv(range: IdRange | null, args: string[]): [string, string[]] {
  // POSIX ACLs stay out: their entries name host ids that shifting did not change (see docs/export-format.md).
  const tar = ['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--xattrs-exclude=system.posix_acl_*', ...args];
  if (!range) return [tar[0], tar.slice(1)];
  return ['lxc-usernsexec', ['-m', `u:0:${range.uid}:${range.count}`, '-m', `g:0:${range.gid}:${range.count}`, '--', ...tar]];
}

/** Tars the layer `dir` (ids as seen inside) into `out`, hashing as it streams; resolves to its size and sha256. */
async function tarLayer(dir: string, out: string | null, range: IdRange | null, lock: ContainerLock): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const fd = out ? openSync(out, 'wx', 0o600) : undefined;
  let size = 0;
  try {
    // Sorted, without access and change times or pids in the pax headers: the same files give the same bytes.
    const [cmd, args] = tarArgv(range, [
      '-c',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '--sort=name',
      '-f',
      '-',
      '-C',
      dir,
      '.',
    ]);
    const r = await run(cmd, args, {
      timeoutMs: ARCHIVE_TIMEOUT_MS,
      inheritFds: [lock.fd],
      onStdout: (b) => {
        hash.update(b);
        size += b.length;
        if (fd !== undefined) writeSync(fd, b);
      },
    });
    if (r.code !== 0) throw dreError('DRE_ERR_DEVICE_BUSY', `tar of ${dir} failed: ${lastLines(r.stderr)}`, r);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Unpacks a layer tar into `dir` (made, owned by the mapped root) inside the id map. */
async function untarLayer(file: string, dir: string, range: IdRange | null, what: string): Promise<void> {
  makeOwnedDir(dir, range, 0o755);
  const fd = openSync(file, 'r');
  try {
    const [cmd, args] = tarArgv(range, ['-x', '-f', '-', '-C', dir]);
    await mustRun(`${what}: unpack ${file}`, cmd, args, { stdinFd: fd });
  } finally {
    closeSync(fd);
  }
}

/** The container's base chain, topmost first, down to a stand-alone or built-in base. */
function baseChain(rec: AppRecord): { bases: ExportedBase[]; builtIn: string | null } {
  const bases: ExportedBase[] = [];
  const seen = new Set<string>();
  for (let b: string | null = rec.base; b !== null && !seen.has(b);) {
    seen.add(b);
    if (BUILT_IN_BASES.includes(b)) return { bases, builtIn: b };
    if (!baseExists(b)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `export ${rec.name}: its Base Image ${b} is missing`);
    const r: BaseRecord | null = readBaseRecord(b) ?? null;
    bases.push({ name: b, layers: r?.layers ?? ['rootfs'], record: r });
    b = r?.parent ?? null;
  }
  return { bases, builtIn: null };
}

/** Writes the stopped container `name` with its snapshots and Base Images into `file` (replaced whole, or not at all). */
export async function exportContainer(name: string, file: string, opts: ExportOptions = {}): Promise<void> {
  const { out, zstd } = exportTarget(file, opts?.compress);
  await changing('export', name, async (n, rec, lock) => {
    const what = `export ${n}`;
    refuseUnless(n, what, [STATUS.STOP]);
    tidy(rec);
    const range = containerIdRange(rec);
    await withScratch(`${out}.dre-export-${process.pid}`, async (staging) => {
      mkdirSync(join(staging, 'container', 'layers'), { recursive: true, mode: 0o700 });
      const members: Manifest['members'] = {};
      const add = async (path: string, dir: string) => (members[path] = await tarLayer(dir, join(staging, path), range, lock));
      const snapshots = usableSnapshotTags(n).map((t) => readSnapshot(n, t)!);
      const layerIds = [...new Set([...(rec.layers ?? []), ...snapshots.flatMap((s) => s.layers)])];
      await add('container/upper.tar', upperDir(n));
      for (const id of layerIds) await add(`container/layers/${id}.tar`, layerDir(n, id));
      const { bases, builtIn } = baseChain(rec);
      for (const b of bases) {
        mkdirSync(join(staging, 'bases', b.name), { recursive: true, mode: 0o700 });
        for (const l of b.layers) await add(`bases/${b.name}/${l}.tar`, join(baseDir('app', b.name), l));
      }
      const manifest: Manifest = {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        created: new Date().toISOString(),
        privileged: range === null,
        record: rec,
        snapshots,
        bases,
        builtInBase: builtIn,
        members,
      };
      writeJsonAtomic(join(staging, 'manifest.json'), manifest);
      await writeArchive(what, out, staging, Object.keys(members), { zstd, lock });
    });
  });
}

/** Checks the manifest's shape and names, and every member against it: present, the same size and sha256, nothing more. */
function verify(scratch: string, what: string): Manifest {
  const damaged = (why: string) => damagedArchive(what, why);
  const m = readManifest<Manifest>(scratch, manifestCheck, what);
  for (const b of m.bases) {
    checkName(b.name, 'base name in the file');
    if (!b.layers.every((l) => /^[A-Za-z0-9._-]+$/.test(l) && l !== '.' && l !== '..')) throw damaged(`base ${b.name} names a bad layer`);
  }
  if (m.builtInBase !== null && !BUILT_IN_BASES.includes(m.builtInBase)) throw damaged(`${m.builtInBase} is not a built-in base`);
  for (const s of m.snapshots) {
    checkName(s.tag, 'snapshot tag in the file');
    if (!s.layers.every((l) => LAYER_ID.test(l))) throw damaged(`snapshot ${s.tag} names a bad layer`);
  }
  if (!(m.record.layers ?? []).every((l) => LAYER_ID.test(l))) throw damaged('the record names a bad layer');
  for (const p of Object.keys(m.members)) if (!MEMBER_PATH.test(p)) throw damaged(`member ${p} is not a layer`);
  verifyMembers(scratch, m.members, what);
  const need = (p: string) => {
    if (!(p in m.members)) throw damaged(`the manifest lists no member ${p}`);
  };
  need('container/upper.tar');
  for (const id of new Set([...(m.record.layers ?? []), ...m.snapshots.flatMap((s) => s.layers)])) need(`container/layers/${id}.tar`);
  for (const b of m.bases) for (const l of b.layers) need(`bases/${b.name}/${l}.tar`);
  return m;
}

/**
 * Makes the bases of the chain the target lacks (bottom first); an existing base of the same name is
 * used when its layers tar to the same bytes, refused (DRE_ERR_BASE_EXISTENCE) otherwise. The removal
 * of each base it makes goes to `revert`, the caller's undo.
 */
async function importBases(m: Manifest, scratch: string, range: IdRange | null, what: string, revert: AsyncRevert): Promise<void> {
  if (m.builtInBase) await ensureBuiltInBase(m.builtInBase);
  for (const b of [...m.bases].reverse()) {
    await withBaseLock(b.name, 'import base', async (lock) => {
      if (baseExists(b.name)) {
        for (const l of b.layers) {
          const dir = join(baseDir('app', b.name), l);
          const same = existsSync(dir) && (await tarLayer(dir, null, range, lock)).sha256 === m.members[`bases/${b.name}/${l}.tar`].sha256;
          if (!same)
            throw dreError(
              'DRE_ERR_BASE_EXISTENCE',
              `${what}: a different Base Image named ${b.name} exists here; remove it (dre-app rm-base ${b.name}) or import where it is the same`,
            );
        }
        return;
      }
      const made = await buildAside(
        basesDir('app'),
        b.name,
        async (staging) => {
          makeOwnedDir(staging, null, 0o711); // passable for the mapped root's tar until confined
          for (const l of b.layers) await untarLayer(join(scratch, 'bases', b.name, `${l}.tar`), join(staging, l), range, what);
          if (b.record) writeJsonAtomic(join(staging, 'base.json'), b.record);
          confineDir(staging, range);
        },
        { dirMode: 0o711 },
      );
      revert.add(() => rmSync(made, { recursive: true, force: true }));
    });
  }
}

/**
 * Makes a container from an exported `file`, named `newName` or as it was exported; every member is
 * checked against the manifest first. DRE_ERR_INVALID_ARGUMENT for a damaged or truncated file,
 * DRE_ERR_CONTAINER_EXISTENCE for a taken name; nothing is left behind on failure. Resolves to the name.
 */
export async function importContainer(file: string, newName?: string): Promise<string> {
  const src = importSource(file);
  const what0 = `import ${src}`;
  const n = newName === undefined || newName === null ? await peekName(src, what0) : checkName(newName, 'container name');
  const what = `import ${n} from ${src}`;
  await withLock('app', n, 'import', async (lock) => {
    if (existsSync(containerDir('app', n))) throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `${what}: an application container of that name exists`);
    mkdirSync(containersDir('app'), { recursive: true, mode: 0o711 });
    await withScratch(stagingPath(containersDir('app'), `import-${n}`), (scratch) =>
      withRevertAsync(async (revert) => {
        await unpackArchive(what, src, scratch, lock);
        const m = verify(scratch, what);
        const range = m.privileged ? null : rootIdRange();
        if (range) allowTraversal();
        await importBases(m, scratch, range, what, revert);
        const { address } = await claimNetwork(n, m.record.address !== null && m.record.address !== undefined, m.record.port);
        revert.add(() => releaseNetwork(n));
        const rec: AppRecord = { ...m.record, name: n, address, created: new Date().toISOString(), privileged: m.privileged };
        await buildAside(
          containersDir('app'),
          n,
          async (staging) => {
            makeOwnedDir(staging, null, 0o711); // passable for the mapped root's tar until confined
            await untarLayer(join(scratch, 'container', 'upper.tar'), join(staging, 'upper'), range, what);
            if (range) makeOwnedDir(join(staging, 'work'), range, 0o700);
            mkdirSync(join(staging, 'layers'), { mode: 0o711 });
            for (const id of new Set([...(rec.layers ?? []), ...m.snapshots.flatMap((s) => s.layers)])) {
              await untarLayer(join(scratch, 'container', 'layers', `${id}.tar`), join(staging, 'layers', id), range, what);
            }
            mkdirSync(join(staging, 'snapshots'), { mode: 0o700 });
            for (const s of m.snapshots) writeJsonAtomic(join(staging, 'snapshots', `${s.tag}.json`), s);
            mkdirSync(join(staging, 'rootfs'), { mode: 0o755 });
            writeJsonAtomic(join(staging, 'dre.json'), rec);
            writeFileAtomic(join(staging, 'config'), renderLxcConfig(rec), 0o644);
            confineDir(staging, range);
          },
          { dirMode: 0o711 },
        );
      }),
    );
  });
  record('app', n, 'imported', { file: src });
  return n;
}

/**
 * Base Images from a root file system or an image the user already has: a directory or a tarball
 * (copied or unpacked as they are, owners kept), or an OCI image, as a layout directory or an
 * `oci-archive` tarball, unpacked with Debian's umoci (an archive is first copied into a layout by
 * skopeo). The result is an ordinary stand-alone base, owned by this root's id range (installBase).
 */
import { existsSync, lstatSync, mkdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dreError } from '../core/errors.js';
import { lastLines, run } from '../core/run.js';
import type { ContainerLock } from '../core/lock.js';
import { withScratch } from '../core/staging.js';
import { installBase } from './base.js';

export type ImportFormat = 'rootfs' | 'oci';

export interface ImportOptions {
  /** What the source holds; default: found out (an OCI layout has `oci-layout` at its top). */
  format?: ImportFormat;
  /** The OCI image's tag; default: its only one, else `latest`. */
  tag?: string;
}

/** Unpacking a large image is given this long. */
const IMPORT_TIMEOUT_MS = 30 * 60_000;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/; // the OCI distribution spec's tag grammar

/** Runs one step of an import; a failure is DRE_ERR_BASE_NONEXISTENCE with the tool's last lines. */
async function step(what: string, cmd: string, args: string[], lock: ContainerLock): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: IMPORT_TIMEOUT_MS, inheritFds: [lock.fd] }).catch((e: Error) => {
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: ${e.message}`, e);
  });
  if (r.code !== 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: ${cmd} failed: ${lastLines(r.stderr || r.stdout)}`, r);
  return r.stdout;
}

/** Whether a tarball holds an OCI layout (its `oci-layout` file at the top). */
async function tarIsOci(file: string): Promise<boolean> {
  const r = await run('tar', ['-tf', file, 'oci-layout'], { timeoutMs: IMPORT_TIMEOUT_MS });
  return r.code === 0;
}

/** The tag to unpack: the one asked for, the layout's only one, or `latest`. */
async function pickTag(layout: string, tag: string | undefined, what: string, lock: ContainerLock): Promise<string> {
  if (tag !== undefined) return tag;
  const tags = (await step(`${what}: list the image's tags`, 'umoci', ['ls', '--layout', layout], lock)).split('\n').filter(Boolean);
  if (tags.length === 1) return tags[0];
  if (tags.includes('latest')) return 'latest';
  throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the image has ${tags.length === 0 ? 'no tag' : `tags ${tags.join(', ')}`}; name one with --tag`);
}

/** Unpacks an OCI image (layout or archive) into `rootfs` through a scratch directory beside it. */
async function unpackOci(source: string, isDir: boolean, rootfs: string, tag: string | undefined, what: string, lock: ContainerLock): Promise<void> {
  await withScratch(join(rootfs, '..', 'oci'), async (scratch) => {
    let layout = source;
    if (!isDir) {
      // skopeo reads the archive and writes a layout; the tag it is stored under inside is kept.
      layout = join(scratch, 'layout');
      const t = tag === undefined ? '' : `:${tag}`;
      await step(`${what}: read the OCI archive`, 'skopeo', ['copy', '--quiet', `oci-archive:${source}${t}`, `oci:${layout}:${tag ?? 'latest'}`], lock);
      tag ??= 'latest';
    }
    const t = await pickTag(layout, tag, what, lock);
    const bundle = join(scratch, 'bundle');
    await step(`${what}: unpack the OCI image`, 'umoci', ['unpack', '--image', `${layout}:${t}`, bundle], lock);
    renameSync(join(bundle, 'rootfs'), rootfs);
  });
}

/**
 * Imports `source` (a directory, a tarball, an OCI layout or archive) as the Base Image `name`.
 * DRE_ERR_INVALID_ARGUMENT for a missing source or a bad tag, DRE_ERR_BASE_EXISTENCE for a taken name,
 * DRE_ERR_BASE_NONEXISTENCE when the source cannot be read (nothing is left behind).
 */
export async function importBase(name: string, source: string, opts: ImportOptions = {}): Promise<void> {
  if (typeof source !== 'string' || source === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', 'import base: no source given');
  const { format, tag } = opts ?? {};
  if (format !== undefined && format !== 'rootfs' && format !== 'oci')
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `import base: format must be rootfs or oci, not ${JSON.stringify(format)}`);
  if (tag !== undefined && (typeof tag !== 'string' || !TAG.test(tag)))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `import base: ${JSON.stringify(tag)} is not an OCI tag`);
  const src = resolve(source);
  let st;
  try {
    st = lstatSync(src);
  } catch {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `import base ${name}: ${src} does not exist`);
  }
  if (!st.isDirectory() && !st.isFile()) throw dreError('DRE_ERR_INVALID_ARGUMENT', `import base ${name}: ${src} is neither a directory nor a file`);
  await installBase(
    name,
    'import base',
    async (rootfs, lock) => {
      const what = `import base ${name} from ${src}`;
      const oci = format === 'oci' || (format === undefined && (st.isDirectory() ? existsSync(join(src, 'oci-layout')) : await tarIsOci(src)));
      if (oci) return unpackOci(src, st.isDirectory(), rootfs, tag, what, lock);
      if (st.isDirectory()) {
        // cp -a keeps owners, modes, links, device nodes and xattrs; the copy is ours, the source stays the user's.
        await step(what, 'cp', ['-a', '--', src, rootfs], lock);
        return;
      }
      mkdirSync(rootfs, { mode: 0o755 });
      // GNU tar finds the compression itself, keeps numeric owners, refuses members outside the directory.
      await step(what, 'tar', ['-x', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs, '-f', src], lock);
    },
    'DRE_ERR_BASE_NONEXISTENCE',
  );
}

/**
 * What the export files of both kinds share (docs/export-format.md): a tar (zstd when asked) whose
 * first member is `manifest.json`, listing every other member with its size and sha256; an import
 * unpacks the whole file aside and checks the manifest's shape and every member against it before
 * anything is made. The kinds differ in what their members are (app/archive.ts, sys/archive.ts).
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { dreError, isDreError, type DreError } from './errors.js';
import type { ContainerLock } from './lock.js';
import { checkName } from './names.js';
import { requireRoot } from './privilege.js';
import { int, shape, str, type Check } from './records.js';
import { engineCause, lastLines, run, type RunOptions } from './run.js';
import { replaceFile } from './staging.js';

/** How long one tar (or other tool) of an export or import may take. */
export const ARCHIVE_TIMEOUT_MS = 60 * 60_000;

/** The size and sha256 of each member, by its path in the file. */
export type Members = Record<string, { size: number; sha256: string }>;

export const listOf =
  (c: Check): Check =>
  (v) =>
    Array.isArray(v) ? v.map(c).find(Boolean) : 'a list';

/** The checks of a manifest's own fields: its format and version (exactly these), when it was made, and its members. */
export const manifestFields = (format: string, version: number): Record<string, Check> => ({
  format: (v) => (v === format ? undefined : `"${format}"`),
  version: int(version, version),
  created: str,
  members: membersCheck,
});

/** The manifest's `members` field. */
export const membersCheck: Check = (v) =>
  typeof v === 'object' && v !== null
    ? Object.values(v)
        .map(shape({ size: int(0, Number.MAX_SAFE_INTEGER), sha256: str }))
        .find(Boolean)
    : 'an object';

/** Runs a tool of an export or import; a failure → DRE_ERR_INVALID_ARGUMENT naming `what`. */
export async function mustRun(what: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: ARCHIVE_TIMEOUT_MS, ...opts });
  if (r.code !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${cmd} failed: ${lastLines(r.stderr)}`, r);
}

/** How an export writes its file. */
export interface ExportOptions {
  /** zstd-compress the file; default: when its name ends in .zst or .tzst. */
  compress?: boolean;
}

/** The file an export writes: its absolute path (its directory must exist) and whether it is zstd-compressed (asked, or named .zst/.tzst). */
export function exportTarget(file: unknown, compress: boolean | undefined): { out: string; zstd: boolean } {
  if (typeof file !== 'string' || file === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', 'export: no file given');
  const out = resolve(file);
  let dirOk = false;
  try {
    dirOk = statSync(dirname(out)).isDirectory();
  } catch {
    /* missing */
  }
  if (!dirOk) throw dreError('DRE_ERR_INVALID_ARGUMENT', `export: ${dirname(out)} is not a directory`);
  return { out, zstd: compress ?? /\.t?zst$/.test(out) };
}

/** The file an import reads: its absolute path, after checking the caller is root and it is a regular file. */
export function importSource(file: unknown): string {
  if (typeof file !== 'string' || file === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', 'import: no file given');
  const src = resolve(file);
  requireRoot(`import ${src}`);
  let st;
  try {
    st = lstatSync(src);
  } catch {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `import: ${src} does not exist`);
  }
  if (!st.isFile()) throw dreError('DRE_ERR_INVALID_ARGUMENT', `import: ${src} is not a regular file`);
  return src;
}

/**
 * Writes `staging`'s manifest.json (first: an import reads it before the rest) and `members` into
 * `out`, replaced whole or not at all; `dereference` stores what symbolic links in `staging` point at.
 */
export async function writeArchive(
  what: string,
  out: string,
  staging: string,
  members: string[],
  opts: { zstd: boolean; dereference?: boolean; lock: ContainerLock },
): Promise<void> {
  const flags = [...(opts.zstd ? ['--zstd'] : []), ...(opts.dereference ? ['--dereference'] : [])];
  await replaceFile(out, (tmp) =>
    mustRun(what, 'tar', ['-c', ...flags, '-f', tmp, '-C', staging, 'manifest.json', ...members], { inheritFds: [opts.lock.fd] }),
  );
}

/** Unpacks the whole file into `scratch` (tar finds the compression by itself); a truncated or non-tar file fails here. */
export async function unpackArchive(what: string, src: string, scratch: string, lock: ContainerLock): Promise<void> {
  const r = await run('tar', ['-x', '--no-same-owner', '-f', src, '-C', scratch], { timeoutMs: ARCHIVE_TIMEOUT_MS, inheritFds: [lock.fd] });
  if (r.code !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the file is damaged, truncated or not a D-RE export: ${lastLines(r.stderr)}`, r);
}

/** Reads the manifest alone (the first member) to learn the container's name before taking its lock. */
export async function peekName(file: string, what: string): Promise<string> {
  const r = await run('tar', ['-x', '-O', '--occurrence=1', '-f', file, 'manifest.json'], { timeoutMs: ARCHIVE_TIMEOUT_MS });
  try {
    if (r.code === 0) return checkName(JSON.parse(r.stdout).record?.name, 'container name in the file');
  } catch (e) {
    if (isDreError(e)) throw e;
  }
  throw dreError(
    'DRE_ERR_INVALID_ARGUMENT',
    `${what}: the file is damaged or not a D-RE export: ${lastLines(r.stderr) || 'its manifest.json cannot be read'}`,
    engineCause('tar', r),
  );
}

/** The error of a file that is not what its manifest says. */
export const damagedArchive = (what: string, why: string): DreError =>
  dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the file is damaged or not a D-RE export: ${why}`);

/** The unpacked manifest.json, checked against `check`. */
export function readManifest<M>(scratch: string, check: Check, what: string): M {
  let m: M;
  try {
    m = JSON.parse(readFileSync(join(scratch, 'manifest.json'), 'utf8')) as M;
  } catch (e) {
    throw damagedArchive(what, `its manifest.json cannot be read (${(e as Error).message})`);
  }
  const wrong = check(m);
  if (wrong) throw damagedArchive(what, `manifest.json: ${wrong}`);
  return m;
}

/** Every regular file below `dir`, as paths relative to it; anything else (a link, a device) is a damaged file. */
function memberFiles(dir: string, what: string): string[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) files.push(relative(dir, p));
      else throw damagedArchive(what, `it holds ${relative(dir, p)}, which is not a regular file`);
    }
  };
  walk(dir);
  return files.sort();
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Size and sha256 of the file at `path`, as the manifest lists a member. */
export const memberOf = (path: string) => ({ size: statSync(path).size, sha256: sha256File(path) });

/** The unpacked file holds exactly the listed members besides manifest.json (no more, none missing), each of its listed size and sha256. */
export function verifyMembers(scratch: string, members: Members, what: string): void {
  const files = memberFiles(scratch, what).filter((f) => f !== 'manifest.json');
  const extra = files.filter((f) => !(f in members));
  if (extra.length > 0) throw damagedArchive(what, `it holds ${extra[0]}, which the manifest does not list`);
  for (const p of Object.keys(members).sort()) {
    if (!files.includes(p)) throw damagedArchive(what, `member ${p} is missing (a truncated file?)`);
    const size = lstatSync(join(scratch, p)).size;
    if (size !== members[p].size) throw damagedArchive(what, `member ${p} has ${size} bytes, the manifest says ${members[p].size}`);
    if (sha256File(join(scratch, p)) !== members[p].sha256) throw damagedArchive(what, `member ${p} does not match its sha256`);
  }
}

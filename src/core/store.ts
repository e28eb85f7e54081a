import {
  closeSync,
  constants as fsc,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeSync,
  mkdirSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { isAlive } from './proc.js';
import { sortNames } from './names.js';

/** Writes `data` to the file at `path`, opened with `flag`, and fsyncs it. */
function writeSynced(path: string, data: string | Buffer, mode: number, flag: 'w' | 'wx'): void {
  const fd = openSync(path, flag, mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file so that readers see the old or the new content, never a part (write, fsync, rename). */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeSynced(tmp, data, mode, 'w');
  renameSync(tmp, path);
}

/**
 * Writes a new file into a directory no reader sees yet (buildAside's staging directory): no temporary
 * name, since nobody can see it half-written, and an fsync, so its data is on disk before the directory
 * is renamed into view. What a power loss then loses is the whole directory, never its content.
 */
export function writeStagedFile(path: string, data: string | Buffer, mode = 0o600): void {
  writeSynced(path, data, mode, 'wx');
}

/** Writes `text` atomically unless the file already holds exactly that (no needless rename, mtime kept). */
export function writeIfChanged(path: string, text: string, mode = 0o600): void {
  try {
    if (readFileSync(path, 'utf8') === text) return;
  } catch {
    /* missing or unreadable: write it */
  }
  writeFileAtomic(path, text, mode);
}

/** How D-RE writes a JSON record: two-space indents and a final newline. */
export const jsonText = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, jsonText(value));
}

/** Reads a JSON file, or returns undefined when it does not exist. */
export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** Names of the finished entries of a directory: staging entries (starting with '.') are left out. */
export function listEntries(dir: string): string[] {
  try {
    return sortNames(readdirSync(dir).filter((n) => !n.startsWith('.')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Removes what killed operations left in `dir`: `.staging-*` entries whose maker is gone. */
export function removeStaging(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of entries) {
    const m = /^\.staging-.*-(\d+)-[0-9a-z]+$/.exec(n);
    if (m && !isAlive(Number(m[1]))) rmSync(join(dir, n), { recursive: true, force: true });
  }
}

/**
 * Reads a file someone else controls (a container's registry, a confined QEMU's run dir): only a regular
 * file, never through a link, never blocking on a FIFO or a device (fstat after a non-blocking open),
 * at most `maxBytes` from `position` (a negative one counts from the end). undefined when it is not that.
 */
export function readUntrustedFile(path: string, maxBytes: number, position = 0): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const from = position < 0 ? Math.max(0, st.size + position) : position;
    const buf = Buffer.alloc(Math.min(maxBytes, Math.max(0, st.size - from)));
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, from)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Made aside, then renamed into place: the one way D-RE makes a directory that others may see (a
 * container, a base, a checkpoint). A build killed half-way leaves only a `.staging-*` entry of a
 * dead process, which the next build in the same directory removes; a reader never sees half of it.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stagingPath } from './paths.js';
import { removeStaging } from './store.js';

/** How buildAside makes and publishes its directory. */
export interface AsideOptions {
  /** The mode of `dir` if it has to be made (default 0o700; 0o711 where a mapped root must pass it). */
  dirMode?: number;
  /** The mode the staging directory is made with (default 0o700). */
  mode?: number;
  /**
   * The name appeared meanwhile (the rename failed with ENOTEMPTY or EEXIST): the error to throw, or
   * nothing when the other one is as good as this one (a built-in base another process finished first).
   * Without it, the rename's own error is thrown.
   */
  ifTaken?: (e: unknown) => Error | void;
}

const isTaken = (e: unknown) => ['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '');

/**
 * Builds `dir/name` in a fresh staging directory with `build` and renames it into place. The staging
 * directory goes whatever happens; what a rename onto a taken name does is `opts.ifTaken`'s to say.
 */
export async function buildAside(dir: string, name: string, build: (staging: string) => void | Promise<void>, opts: AsideOptions = {}): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: opts.dirMode ?? 0o700 });
  removeStaging(dir);
  const staging = stagingPath(dir, name);
  const final = join(dir, name);
  try {
    mkdirSync(staging, { mode: opts.mode ?? 0o700 });
    await build(staging);
    try {
      renameSync(staging, final);
    } catch (e) {
      if (!opts.ifTaken || !isTaken(e)) throw e;
      const err = opts.ifTaken(e);
      if (err) throw err;
    }
    return final;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Moves `dir/name` out of sight (a staging name) and returns that path: what a removal does first, so
 * a killed removal leaves a staging entry, never a half-removed directory. Throws the rename's error.
 */
export function moveAside(dir: string, name: string): string {
  const trash = stagingPath(dir, name);
  renameSync(join(dir, name), trash);
  return trash;
}

/**
 * Runs `work` with the scratch directory `path` (made fresh, mode 0700; what is unpacked or gathered on
 * the way, never published), removed whatever happens. Its parent must exist.
 */
export async function withScratch<T>(path: string, work: (scratch: string) => Promise<T>): Promise<T> {
  rmSync(path, { recursive: true, force: true });
  try {
    mkdirSync(path, { mode: 0o700 });
    return await work(path);
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Replaces `file` whole or not at all: `write` makes the temporary file it is given (beside `file`, so
 * the rename stays on one file system), which is renamed over `file` once written, or removed.
 */
export async function replaceFile(file: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await write(tmp);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Made aside, then renamed into place: the one way D-RE makes a directory that others may see (a
 * container, a base, a checkpoint). A build killed half-way leaves only a `.staging-*` entry of a
 * dead process, which the next build in the same directory removes; a reader never sees half of it.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stagingPath } from './paths.js';
import { removeStaging } from './store.js';

/**
 * Builds `dir/name` in a fresh staging directory with `build` and renames it into place. The staging
 * directory goes whatever happens; a rename that fails (the name appeared meanwhile) throws as
 * `taken` says, or as the rename's own error.
 */
export async function buildAside(dir: string, name: string, build: (staging: string) => void | Promise<void>, taken?: (e: unknown) => Error): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeStaging(dir);
  const staging = stagingPath(dir, name);
  const final = join(dir, name);
  try {
    mkdirSync(staging, { mode: 0o700 });
    await build(staging);
    try {
      renameSync(staging, final);
    } catch (e) {
      throw taken ? taken(e) : e;
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

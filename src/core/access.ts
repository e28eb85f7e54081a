/** Who may reach D-RE's directories: the owners and search bits both drivers give their engines. */
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';

/** A host uid and gid. */
export interface Owner {
  uid: number;
  gid: number;
}

/** Makes a directory (if missing) owned by `owner` (null: left as made, host root's) with exactly `mode`. */
export function makeOwnedDir(dir: string, owner: Owner | null, mode = 0o755): void {
  mkdirSync(dir, { recursive: true, mode });
  if (owner) chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, mode);
}

/** Makes `dir` (if missing) and adds the search bits `bits` (e.g. 0o001: passable by others) to its mode. */
export function addSearch(dir: string, bits: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 | bits });
  const mode = statSync(dir).mode & 0o7777;
  if ((mode & bits) !== bits) chmodSync(dir, mode | bits);
}

/**
 * The busybox root both kinds' default Base Image is laid out from, offline: the host's static busybox,
 * its applet links, and the files each kind gives (an application container's init, users and SSH; a
 * guest's init, agent and power button). What differs is the kind's; the layout is written here once.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dreError } from './errors.js';
import { engineCause, lastLines, run } from './run.js';

/** The name of the Base Image used when a container names no base, for both kinds. */
export const DEFAULT_BASE = 'default';

/** Where Debian's busybox-static puts its static binary. */
export const BUSYBOX = '/bin/busybox';

/** The directories of every busybox root (a kind adds its own). */
const ROOT_DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/init.d', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'mnt', 'var/log'];

/** Files a kind writes into the root, by path inside it: the text, with its mode when not 0o644. */
export type RootFiles = Record<string, string | { text: string; mode: number }>;

/** Writes `text` to `path` with exactly `mode` (the umask does not narrow it). */
export function writeText(path: string, text: string, mode = 0o644): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
}

/** Refuses to build (`what`) on a host without busybox-static, before anything is made. */
export function requireBusybox(what: string): void {
  if (!existsSync(BUSYBOX)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: ${BUSYBOX} is missing; install Debian's busybox-static`);
}

/** Copies the host's static busybox to `dir/bin/busybox` (mode 0755); `dir/bin` must exist. */
export function copyBusybox(dir: string): void {
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
}

/**
 * Lays out a busybox system in `root`: the directories (the common ones and `extraDirs`), busybox and a
 * link to it for each of its applets, then `files`. `what` names the build in errors.
 */
export async function layBusyboxRoot(root: string, extraDirs: string[], files: RootFiles, what: string): Promise<void> {
  for (const d of [...ROOT_DIRS, ...extraDirs]) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'root'), 0o700);
  copyBusybox(root);
  const listing = await run(BUSYBOX, ['--list-full'], { timeoutMs: 300_000 });
  if (listing.code !== 0)
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: busybox --list-full failed: ${lastLines(listing.stderr)}`, engineCause('busybox', listing));
  for (const applet of listing.stdout.split('\n').filter(Boolean)) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    const link = join(root, applet);
    if (!existsSync(link)) symlinkSync('/bin/busybox', link);
  }
  for (const [path, file] of Object.entries(files)) {
    if (typeof file === 'string') writeText(join(root, path), file);
    else writeText(join(root, path), file.text, file.mode);
  }
}

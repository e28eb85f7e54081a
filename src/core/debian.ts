/**
 * The one mmdebstrap plan both kinds build their Debian Base Images with: the release and packages
 * checked, the archive the host's apt reaches, minbase plus the kind's packages, the downloaded .debs
 * kept in one cache on the host (`sync-in` before apt runs, `sync-out` after), so a second build of
 * either kind on one machine downloads nothing. mmdebstrap runs in a mount and PID namespace of its
 * own that dies with us: a killed build leaves no mount and no process behind, only a staging
 * directory that the next build removes (core/staging.ts). What each kind adds to the root is its
 * own (app/debian.ts, sys/debian.ts); the first-boot SSH host keys are common to both.
 */
import { chmodSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dreError } from './errors.js';
import { cacheRoot } from './paths.js';
import { lastLines, run } from './run.js';

export interface DebianBaseOptions {
  /** The Debian release (suite or codename); default bookworm. */
  release?: string;
  /** Packages to install besides the kind's own (systemd-sysv, openssh-server, ...). */
  include?: string[];
  /** The archive; default DRE_DEBIAN_MIRROR or http://deb.debian.org/debian. */
  mirror?: string;
  /** 'inherit': mmdebstrap writes its own progress to our stderr (a terminal); a function: each line of it. */
  progress?: 'inherit' | ((line: string) => void);
}

/** A checked build: the release, the full package list, the archive's source lines. */
export interface DebianPlan {
  release: string;
  packages: string[];
  sources: string[];
}

export const DEFAULT_DEBIAN_BASE = 'debian';
export const DEFAULT_RELEASE = 'bookworm';
/** A whole mmdebstrap run (download included) is given this long. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** Where downloaded .debs are kept between builds, for both kinds. */
export const debCacheDir = () => join(cacheRoot(), 'debs');

const DEBIAN_NAME = /^[a-z0-9][a-z0-9+.-]{0,99}$/; // Debian policy 5.6.1 (package names); also fits suites
const MIRROR = /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~/-]*)?$/;

/** The build plan: `own` are the kind's packages, installed before those the caller includes. */
export function debianBuildPlan(opts: DebianBaseOptions, own: readonly string[]): DebianPlan {
  const release = opts.release ?? DEFAULT_RELEASE;
  if (typeof release !== 'string' || !DEBIAN_NAME.test(release))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `build Debian base: release ${JSON.stringify(release)} is not a Debian suite name`);
  const include = opts.include ?? [];
  if (!Array.isArray(include)) throw dreError('DRE_ERR_INVALID_ARGUMENT', 'build Debian base: include must be a list of package names');
  for (const p of include) {
    if (typeof p !== 'string' || !DEBIAN_NAME.test(p))
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `build Debian base: ${JSON.stringify(p)} is not a Debian package name`);
  }
  const mirror = opts.mirror ?? (process.env.DRE_DEBIAN_MIRROR || 'http://deb.debian.org/debian');
  if (typeof mirror !== 'string' || !MIRROR.test(mirror))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `build Debian base: mirror ${JSON.stringify(mirror)} is not an http(s) URL`);
  const sources = [`deb ${mirror} ${release} main`];
  if (!['sid', 'unstable', 'experimental'].includes(release)) {
    sources.push(`deb ${mirror} ${release}-updates main`);
    // The security archive sits beside the main one on Debian's own mirrors.
    if (/\/debian\/?$/.test(mirror)) sources.push(`deb ${mirror.replace(/\/debian\/?$/, '/debian-security')} ${release}-security main`);
  }
  return { release, packages: [...new Set([...own, ...include])], sources };
}

/** mmdebstrap's arguments: minbase plus the packages, the cache synced in and out, no .deb left in the root. */
export function mmdebstrapArgs(plan: DebianPlan, rootfs: string, cache: string): string[] {
  if (/[^\w./-]/.test(cache))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `build Debian base: the cache directory ${cache} has characters a hook line cannot carry`);
  return [
    '--mode=root',
    '--variant=minbase',
    `--include=${plan.packages.join(',')}`,
    // Keep what apt fetched until sync-out has saved it; then take it out of the base.
    '--skip=download/empty',
    '--skip=essential/unlink',
    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
    `--setup-hook=sync-in ${cache} /var/cache/apt/archives/`,
    `--customize-hook=sync-out /var/cache/apt/archives ${cache}`,
    '--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin',
    plan.release,
    rootfs,
    ...plan.sources,
  ];
}

/** Splits a byte stream into whole lines for a line-by-line progress callback. */
export function lineSplitter(each: (line: string) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    const lines = (rest + chunk.toString()).split(/\r?\n|\r/);
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) each(l);
  };
}

/**
 * Runs mmdebstrap for `plan` into `rootfs` (which must not exist yet), with the shared cache. In its
 * own mount and PID namespaces: mmdebstrap's /proc, /sys and /dev mounts stay out of the host's view,
 * and everything it started dies with it; setpriv ties it to our life (a killed build stops).
 * `inheritFds` (a held lock) stay open in it. Fails as DRE_ERR_BASE_NONEXISTENCE with its last lines.
 */
export async function runMmdebstrap(
  plan: DebianPlan,
  rootfs: string,
  doing: string,
  opts: { progress?: DebianBaseOptions['progress']; inheritFds?: number[] } = {},
): Promise<void> {
  const cache = debCacheDir();
  mkdirSync(cache, { recursive: true, mode: 0o755 });
  const args = mmdebstrapArgs(plan, rootfs, cache);
  const progress = opts.progress;
  const r = await run(
    'setpriv',
    ['--pdeathsig', 'KILL', 'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', 'mmdebstrap', ...args],
    {
      timeoutMs: BUILD_TIMEOUT_MS,
      inheritFds: opts.inheritFds,
      stderr: progress === 'inherit' ? 'inherit' : 'pipe',
      onStderr: typeof progress === 'function' ? lineSplitter(progress) : undefined,
    },
  ).catch((e: Error) => {
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: ${e.message}`, e);
  });
  if (r.code !== 0) {
    const why = lastLines(r.stderr) || `mmdebstrap exited ${r.code}${r.signal ? ` (${r.signal})` : ''}; see its output above`;
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: mmdebstrap failed: ${why}`, r);
  }
}

/** Writes a file into the root (its directories made as root's 0755), with `mode`. */
export function writeRootFile(rootfs: string, path: string, text: string, mode = 0o644): void {
  const file = join(rootfs, path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
}

/** Installs the systemd unit `name` under /etc/systemd/system and enables it for each target in `wantedBy` (the links systemctl enable makes). */
export function installUnit(rootfs: string, name: string, text: string, wantedBy: string[] = []): void {
  writeRootFile(rootfs, `etc/systemd/system/${name}`, text);
  for (const target of wantedBy) enableUnit(rootfs, name, target, `/etc/systemd/system/${name}`);
}

/** Links `unit` (at `path` inside the root) into `target`'s wants, as `systemctl enable` does. */
export function enableUnit(rootfs: string, unit: string, target: string, path: string): void {
  const wants = join(rootfs, 'etc/systemd/system', `${target}.wants`);
  mkdirSync(wants, { recursive: true, mode: 0o755 });
  rmSync(join(wants, unit), { force: true });
  symlinkSync(path, join(wants, unit));
}

/**
 * The unit that makes a system's own SSH host keys at its first boot: `ssh-keygen -A` (every type),
 * or only `types` (each its own ssh-keygen).
 */
const hostKeysUnit = (types?: string[]) => `[Unit]
Description=D-RE: make this system's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
${(types ?? ['-A']).map((t) => (t === '-A' ? 'ExecStart=/usr/bin/ssh-keygen -A' : `ExecStart=/usr/bin/ssh-keygen -q -t ${t} -N "" -f /etc/ssh/ssh_host_${t}_key`)).join('\n')}

[Install]
WantedBy=multi-user.target
`;

/**
 * Takes mmdebstrap's SSH host keys out of the root: a base must not hand every container the same
 * keys; each makes its own at its first boot, of every type, or only of `types` (sshd then told to
 * load only those: an RSA key takes half a minute to make under software emulation).
 */
export function firstBootHostKeys(rootfs: string, types?: string[]): void {
  for (const f of readdirSync(join(rootfs, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(rootfs, 'etc/ssh', f));
  installUnit(rootfs, 'dre-ssh-host-keys.service', hostKeysUnit(types), ['multi-user.target']);
  if (types) writeRootFile(rootfs, 'etc/ssh/sshd_config.d/dre-host-keys.conf', types.map((t) => `HostKey /etc/ssh/ssh_host_${t}_key\n`).join(''));
}

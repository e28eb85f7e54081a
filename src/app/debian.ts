/**
 * Debian Base Images for application containers, built with Debian's `mmdebstrap` from the archive:
 * a minbase system with systemd as init (halted gracefully, init.ts), OpenSSH serving port 22 (the
 * container's `port` forwards to it, as for the busybox base), and the address LXC gives eth0 (no
 * networkd or ifupdown to undo it). Packages are kept in a cache on the host (`sync-in` before apt
 * runs, `sync-out` after), so a second build on one machine downloads nothing. mmdebstrap runs in a
 * mount and PID namespace of its own that dies with us: a killed build leaves no mount and no process
 * behind, only a staging directory that the next build removes (installBase).
 */
import { chmodSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { cacheRoot } from '../core/paths.js';
import { lastLines, run } from '../core/run.js';
import { installBase } from './base.js';

export interface DebianBaseOptions {
  /** The Debian release (suite or codename); default bookworm. */
  release?: string;
  /** Packages to install besides systemd-sysv and openssh-server. */
  include?: string[];
  /** The archive; default DRE_DEBIAN_MIRROR or http://deb.debian.org/debian. */
  mirror?: string;
  /** 'inherit': mmdebstrap writes its own progress to our stderr (a terminal); a function: each line of it. */
  progress?: 'inherit' | ((line: string) => void);
}

export const DEFAULT_DEBIAN_BASE = 'debian';
export const DEFAULT_RELEASE = 'bookworm';
/** What every Debian base holds on top of minbase: systemd as init, an SSH server. */
export const DEBIAN_PACKAGES = ['systemd-sysv', 'openssh-server'];
/** A whole build (download included) is given this long. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** Where downloaded .debs are kept between builds. */
export const debCacheDir = () => join(cacheRoot(), 'debs');

const DEBIAN_NAME = /^[a-z0-9][a-z0-9+.-]{0,99}$/; // Debian policy 5.6.1 (package names); also fits suites
const MIRROR = /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~/-]*)?$/;

// Host keys are made by each container at its first boot: a base must not hand every container the same keys.
const HOST_KEYS_UNIT = `[Unit]
Description=D-RE: make this container's own SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;

/** The checked build arguments: release, the full package list, the archive's source lines. */
export function debianBuildPlan(opts: DebianBaseOptions): { release: string; packages: string[]; sources: string[] } {
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
  return { release, packages: [...new Set([...DEBIAN_PACKAGES, ...include])], sources };
}

/** mmdebstrap's arguments: minbase plus the packages, the cache synced in and out, no .deb left in the root. */
export function mmdebstrapArgs(plan: ReturnType<typeof debianBuildPlan>, rootfs: string, cache: string): string[] {
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

/** What D-RE adds to the root mmdebstrap made: per-container SSH host keys, the hostname left to LXC. */
function customize(rootfs: string): void {
  for (const f of readdirSync(join(rootfs, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(rootfs, 'etc/ssh', f));
  const unit = join(rootfs, 'etc/systemd/system/dre-ssh-host-keys.service');
  writeFileSync(unit, HOST_KEYS_UNIT);
  chmodSync(unit, 0o644);
  mkdirSync(join(rootfs, 'etc/systemd/system/multi-user.target.wants'), { recursive: true, mode: 0o755 });
  symlinkSync('/etc/systemd/system/dre-ssh-host-keys.service', join(rootfs, 'etc/systemd/system/multi-user.target.wants/dre-ssh-host-keys.service'));
  // The build host's name would become every container's: LXC's lxc.uts.name is the container's name.
  rmSync(join(rootfs, 'etc/hostname'), { force: true });
}

/** Splits a byte stream into whole lines for a line-by-line progress callback. */
function lineSplitter(each: (line: string) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    const lines = (rest + chunk.toString()).split(/\r?\n|\r/);
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) each(l);
  };
}

/**
 * Builds the Debian Base Image `name` (default `debian`) with mmdebstrap. DRE_ERR_BASE_EXISTENCE when
 * it exists; DRE_ERR_BASE_NONEXISTENCE with mmdebstrap's last lines when the build fails (nothing is left).
 */
export async function buildDebianBase(name: string = DEFAULT_DEBIAN_BASE, opts: DebianBaseOptions = {}): Promise<void> {
  const plan = debianBuildPlan(opts ?? {});
  await installBase(name, 'build Debian base', async (rootfs, lock) => {
    const cache = debCacheDir();
    mkdirSync(cache, { recursive: true, mode: 0o755 });
    const args = mmdebstrapArgs(plan, rootfs, cache);
    const progress = opts.progress;
    // Own mount and PID namespaces: mmdebstrap's /proc, /sys and /dev mounts stay out of the host's
    // view, and everything it started dies with it; setpriv ties it to our life (a killed build stops).
    const r = await run(
      'setpriv',
      ['--pdeathsig', 'KILL', 'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', 'mmdebstrap', ...args],
      {
        timeoutMs: BUILD_TIMEOUT_MS,
        inheritFds: [lock.fd],
        stderr: progress === 'inherit' ? 'inherit' : 'pipe',
        onStderr: typeof progress === 'function' ? lineSplitter(progress) : undefined,
      },
    ).catch((e: Error) => {
      throw dreError('DRE_ERR_BASE_NONEXISTENCE', `build Debian base ${name}: ${e.message}`, e);
    });
    if (r.code !== 0) {
      const why = lastLines(r.stderr) || `mmdebstrap exited ${r.code}${r.signal ? ` (${r.signal})` : ''}; see its output above`;
      throw dreError('DRE_ERR_BASE_NONEXISTENCE', `build Debian base ${name}: mmdebstrap failed: ${why}`, r);
    }
    customize(rootfs);
  });
}

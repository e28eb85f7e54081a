/**
 * Debian Base Images for application containers, built with Debian's `mmdebstrap` from the archive
 * (the plan, the shared .deb cache and the confined run are core/debian.ts): a minbase system with
 * systemd as init (halted gracefully, init.ts), OpenSSH serving port 22 (the container's `port`
 * forwards to it, as for the busybox base), and the address LXC gives eth0 (no networkd or ifupdown
 * to undo it). A killed build leaves no mount and no process behind, only a staging directory that
 * the next build removes (installBase).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { debianBuildPlan as plan, DEFAULT_DEBIAN_BASE, firstBootHostKeys, runMmdebstrap, type DebianBaseOptions } from '../core/debian.js';
import { installBase } from './base.js';

export { debCacheDir, mmdebstrapArgs, DEFAULT_DEBIAN_BASE, DEFAULT_RELEASE, type DebianBaseOptions } from '../core/debian.js';

/** What every Debian application base holds on top of minbase: systemd as init, an SSH server. */
export const DEBIAN_PACKAGES = ['systemd-sysv', 'openssh-server'];

/** The checked build arguments of an application base: release, the full package list, the archive's source lines. */
export const debianBuildPlan = (opts: DebianBaseOptions) => plan(opts, DEBIAN_PACKAGES);

/** What D-RE adds to the root mmdebstrap made: per-container SSH host keys, the hostname left to LXC. */
function customize(rootfs: string): void {
  firstBootHostKeys(rootfs);
  // The build host's name would become every container's: LXC's lxc.uts.name is the container's name.
  rmSync(join(rootfs, 'etc/hostname'), { force: true });
}

/**
 * Builds the Debian Base Image `name` (default `debian`) with mmdebstrap. DRE_ERR_BASE_EXISTENCE when
 * it exists; DRE_ERR_BASE_NONEXISTENCE with mmdebstrap's last lines when the build fails (nothing is left).
 */
export async function buildDebianBase(name: string = DEFAULT_DEBIAN_BASE, opts: DebianBaseOptions = {}): Promise<void> {
  const p = debianBuildPlan(opts ?? {});
  await installBase(name, 'build Debian base', async (rootfs, lock) => {
    await runMmdebstrap(p, rootfs, `build Debian base ${name}`, { progress: opts?.progress, inheritFds: [lock.fd] });
    customize(rootfs);
  });
}

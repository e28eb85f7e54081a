/**
 * Debian VM Base Images (`dre-sys base build debian`): a Debian root made with mmdebstrap from the
 * archive the host's apt reaches (the plan and the .deb cache shared with application bases,
 * core/debian.ts), holding Debian's cloud kernel (`linux-image-cloud-amd64`, installed in the guest),
 * systemd as init with udev, OpenSSH, and D-RE's guest agent, power-button reader and network set-up
 * as services (debianguest.ts). The base boots the guest's own kernel with D-RE's busybox initramfs
 * made from that kernel's modules (guest.ts: virtio, the NIC, the agent's port, the ACPI button); its
 * root disk is made from the directory with `mkfs.ext4 -d` and converted to qcow2, mounting nothing on
 * the host. The build happens in a staging directory renamed into place: a failed or killed build
 * leaves no base (the next one removes the staging entry), and mmdebstrap dies with the build.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { debianBuildPlan, DEFAULT_DEBIAN_BASE, firstBootHostKeys, runMmdebstrap, type DebianBaseOptions, type DebianPlan } from '../core/debian.js';
import { dreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { baseDir, basesDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { run } from '../core/run.js';
import { buildAside } from '../core/staging.js';
import { writeJsonAtomic } from '../core/store.js';
import { DEFAULT_BASE, KERNEL_METAPACKAGE, makeInitramfs, makeRootDisk } from './base.js';
import { layDebianGuest } from './debianguest.js';
import { GUEST_MODULES } from './guest.js';

export { DEFAULT_DEBIAN_BASE };

/**
 * What every Debian VM base holds on top of minbase: systemd as init and udev (device units, the
 * NIC's name), OpenSSH, the cloud kernel, e2fsprogs (resize2fs grows the root to a larger disk).
 */
export const SYS_DEBIAN_PACKAGES = ['systemd-sysv', 'udev', 'openssh-server', KERNEL_METAPACKAGE, 'e2fsprogs'];

/** The checked build of a Debian VM base: release, packages, the archive's sources. */
export const sysDebianBuildPlan = (opts: DebianBaseOptions): DebianPlan => debianBuildPlan(opts, SYS_DEBIAN_PACKAGES);

/** Free space the root file system gets beyond what the build put in it (a larger disk: create --disk-size). */
const FREE_MIB = 512;

/** The guest's kernel in the root mmdebstrap made: the version, its vmlinuz and its modules, checked for what D-RE's initramfs loads. */
function guestKernel(rootfs: string, doing: string): { version: string; vmlinuz: string; modules: string } {
  const versions = readdirSync(join(rootfs, 'lib/modules')).filter((v) => existsSync(join(rootfs, 'boot', `vmlinuz-${v}`)));
  if (versions.length !== 1)
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: the root holds ${versions.length} kernels (${versions.join(', ') || 'none'}); one is needed`);
  const version = versions[0];
  const modules = join(rootfs, 'lib/modules', version);
  const missing = GUEST_MODULES.filter((m) => !existsSync(join(modules, m)));
  if (missing.length > 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: kernel ${version} has no ${missing.join(', ')}`);
  // The initramfs mounts the root ext4 before it has loaded anything but the modules above.
  const builtin = readFileSync(join(modules, 'modules.builtin'), 'utf8').split('\n');
  if (!builtin.includes('kernel/fs/ext4/ext4.ko')) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: kernel ${version} does not build ext4 in`);
  return { version, vmlinuz: join(rootfs, 'boot', `vmlinuz-${version}`), modules };
}

/** The ext4's size for the root: what it holds, a fifth more for the file system's own metadata, FREE_MIB free; in whole 64 MiB. */
async function rootSize(rootfs: string, doing: string): Promise<string> {
  const r = await run('du', ['-s', '-x', '-B1M', rootfs], { timeoutMs: 300_000 });
  const used = Number(r.stdout.split(/\s/)[0]);
  if (r.code !== 0 || !Number.isFinite(used)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: du ${rootfs} failed: ${r.stderr.trim()}`);
  return `${Math.ceil((used * 1.2 + FREE_MIB) / 64) * 64}M`;
}

/**
 * Builds the Debian VM Base Image `name` (default `debian`). DRE_ERR_BASE_EXISTENCE when it exists
 * (or is the built-in base's name); DRE_ERR_BASE_NONEXISTENCE with the failing tool's last lines when
 * the build fails, leaving nothing.
 */
export async function buildDebianBase(name: string = DEFAULT_DEBIAN_BASE, opts: DebianBaseOptions = {}): Promise<void> {
  const b = checkName(name, 'base name');
  const plan = sysDebianBuildPlan(opts ?? {});
  const doing = `build Debian VM base ${b}`;
  requireRoot(doing);
  const exists = () => dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: a Base Image of that name exists (dre-sys rm-base ${b} first)`);
  if (b === DEFAULT_BASE) throw dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: ${DEFAULT_BASE} is the built-in base's name`);
  const progress = opts?.progress;
  // Our own steps as lines: after mmdebstrap's display on a terminal, or to the caller's function.
  const step = (line: string) =>
    typeof progress === 'function' ? progress(line) : progress === 'inherit' ? process.stderr.write(`dre-sys: ${line}\n`) : undefined;
  await withLock('sys', `.base-${b}`, 'build Debian base', async (lock) => {
    if (existsSync(baseDir('sys', b))) throw exists();
    await buildAside(
      basesDir('sys'),
      b,
      async (staging) => {
        const rootfs = join(staging, 'rootfs');
        step(`mmdebstrap: Debian ${plan.release} with ${plan.packages.join(', ')}`);
        await runMmdebstrap(plan, rootfs, doing, { progress, inheritFds: [lock.fd] });
        firstBootHostKeys(rootfs, ['ed25519', 'ecdsa']);
        layDebianGuest(rootfs);
        const kernel = guestKernel(rootfs, doing);
        copyFileSync(kernel.vmlinuz, join(staging, 'vmlinuz'));
        step(`making the initramfs from kernel ${kernel.version}`);
        await makeInitramfs(join(staging, 'initramfs'), kernel.modules, join(staging, 'initrd.img'), doing);
        // Debian's own initramfs is not what boots (D-RE's is): not carried in every disk.
        for (const f of readdirSync(join(rootfs, 'boot'))) if (f.startsWith('initrd.img-')) rmSync(join(rootfs, 'boot', f));
        await makeRootDisk(rootfs, join(staging, 'disk.qcow2'), await rootSize(rootfs, doing), step, doing);
        for (const p of [rootfs, join(staging, 'initramfs')]) rmSync(p, { recursive: true, force: true });
        writeJsonAtomic(join(staging, 'base.json'), {
          flavour: 'debian',
          release: plan.release,
          packages: plan.packages,
          kernel: kernel.version,
          built: new Date().toISOString(),
        });
      },
      { ifTaken: exists }, // another build of that name finished meanwhile
    );
    step(`Debian VM base ${b} ready in ${baseDir('sys', b)}`);
  });
}

import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUSYBOX, copyBusybox, DEFAULT_BASE, layBusyboxRoot, requireBusybox, writeText } from '../core/busybox.js';
import { dreError } from '../core/errors.js';
import { baseDir, basesDir } from '../core/paths.js';
import { lastLines, run, engineCause } from '../core/run.js';
import { buildAside, moveAside } from '../core/staging.js';
import { writeJsonAtomic } from '../core/store.js';
import { AGENT, GUEST_MODULES, INITRAMFS_INIT, INITTAB, POWERBUTTON, RCS } from './guest.js';
import { baseDiskPath, baseInfoPath, baseInitrdPath, baseKernelPath, type SysRecord } from './layout.js';

export { DEFAULT_BASE };
/** Debian's metapackage for its cloud kernel: NVMe, ext4 and the 8250 console built in. */
export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';
/** Size of the default root file system (sparse: the qcow2 stores only what is written). */
const ROOTFS_SIZE = '256M';

/** Where downloaded kernel packages are kept, so repeated builds and CI runs reuse them. */
export function cacheDir(): string {
  return process.env.DRE_CACHE_DIR || '/var/cache/dre';
}

export type Progress = (step: string) => void;

/**
 * Runs a build step's tool (tied to our life: a killed build leaves none writing on); `doing` names the build in its error.
 */
async function mustIn(doing: string, what: string, cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await run('setpriv', ['--pdeathsig', 'KILL', cmd, ...args], { timeoutMs: opts.timeoutMs ?? 300_000, cwd: opts.cwd });
  if (r.code !== 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: ${what} failed: ${lastLines(r.stderr || r.stdout)}`, engineCause(cmd, r));
  return r.stdout;
}

const must = (what: string, cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}) =>
  mustIn('build default base', what, cmd, args, opts);

const cachedKernelDebs = () =>
  readdirSync(cacheDir())
    .filter((f) => /^linux-image-.*-cloud-amd64_.*\.deb$/.test(f) && !f.startsWith(`${KERNEL_METAPACKAGE}_`))
    .sort();

/** The concrete kernel package the metapackage points at (e.g. linux-image-6.1.0-56-cloud-amd64). */
async function kernelPackageName(): Promise<string | undefined> {
  const r = await run('apt-cache', ['depends', KERNEL_METAPACKAGE], { timeoutMs: 60_000 });
  return /Depends:\s*(linux-image-\S+)/.exec(r.stdout)?.[1];
}

/** The cached kernel .deb, fetched with `apt-get download` when the cache has none (apt-get update only if that fails). */
async function kernelDeb(progress: Progress): Promise<string> {
  mkdirSync(cacheDir(), { recursive: true, mode: 0o755 });
  let debs = cachedKernelDebs();
  if (debs.length === 0) {
    for (const refresh of [false, true]) {
      if (refresh) {
        progress('apt-get update');
        await must('apt-get update', 'apt-get', ['update', '-q']);
      }
      const pkg = await kernelPackageName();
      if (!pkg) continue;
      progress(`downloading ${pkg}`);
      const r = await run('apt-get', ['download', '-q', pkg], { cwd: cacheDir(), timeoutMs: 600_000 });
      debs = cachedKernelDebs();
      if (r.code === 0 && debs.length > 0) break;
    }
  }
  if (debs.length === 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `build default base: could not download ${KERNEL_METAPACKAGE} into ${cacheDir()}`);
  return join(cacheDir(), debs[debs.length - 1]);
}

/**
 * Makes the initramfs (an uncompressed newc cpio, made by busybox): busybox, /init and the modules it
 * loads, taken from `modulesDir` (the kernel's /lib/modules/VERSION). The same for every base: a
 * Debian VM's is made from its own kernel's modules.
 */
export async function makeInitramfs(dir: string, modulesDir: string, target: string, doing = 'build default base'): Promise<void> {
  requireBusybox(doing);
  mkdirSync(join(dir, 'bin'), { recursive: true, mode: 0o755 });
  mkdirSync(join(dir, 'modules'), { mode: 0o755 });
  copyBusybox(dir);
  for (const m of GUEST_MODULES) copyFileSync(join(modulesDir, m), join(dir, 'modules', m.split('/').pop()!));
  writeText(join(dir, 'init'), INITRAMFS_INIT, 0o755);
  const files = ['.', 'bin', 'bin/busybox', 'init', 'modules', ...GUEST_MODULES.map((m) => `modules/${m.split('/').pop()}`)];
  const r = await run(BUSYBOX, ['cpio', '-o', '-H', 'newc', '-F', target], { cwd: dir, input: files.join('\n') + '\n' });
  if (r.code !== 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: busybox cpio failed: ${lastLines(r.stderr)}`, engineCause('cpio', r));
}

/**
 * Makes the base's root disk from the directory `root`, without mounting anything: an ext4 of `size`
 * (sparse) filled by `mkfs.ext4 -d`, converted to the qcow2 `disk` (only what was written is stored).
 */
export async function makeRootDisk(root: string, disk: string, size: string, progress: Progress, doing = 'build default base'): Promise<void> {
  progress(`making the ext4 image (${size})`);
  const raw = `${disk}.raw`;
  try {
    await mustIn(doing, 'mkfs.ext4', 'mkfs.ext4', ['-q', '-F', '-L', 'dre-root', '-d', root, raw, size], { timeoutMs: 900_000 });
    progress('converting to qcow2');
    await mustIn(doing, 'qemu-img convert', 'qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk], { timeoutMs: 900_000 });
    chmodSync(disk, 0o600);
  } finally {
    rmSync(raw, { force: true });
  }
}

/** The host's resize2fs (e2fsprogs), copied into the guest with the libraries it loads: the guest grows its root ext4 online to a larger disk. */
const RESIZE2FS = '/sbin/resize2fs';

/** Copies a host program and the shared libraries `ldd` names for it into the guest's root, at the same paths. */
async function copyWithLibraries(root: string, program: string): Promise<void> {
  const out = await must(`ldd ${program}`, 'ldd', [program]);
  const libs = [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]);
  for (const file of [program, ...libs]) {
    mkdirSync(join(root, dirname(file)), { recursive: true, mode: 0o755 });
    copyFileSync(file, join(root, file));
    chmodSync(join(root, file), 0o755);
  }
}

/** Lays out the guest's root: busybox-static and its applet links, resize2fs, and the init files. */
async function layRootfs(root: string): Promise<void> {
  await layBusyboxRoot(
    root,
    [],
    {
      'etc/inittab': INITTAB,
      'etc/init.d/rcS': { text: RCS, mode: 0o755 },
      'sbin/dre-powerbutton': { text: POWERBUTTON, mode: 0o755 },
      'sbin/dre-agent': { text: AGENT, mode: 0o755 },
      'etc/hostname': 'dre-guest\n',
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
      'etc/group': 'root:x:0:\n',
      'etc/profile': 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root\n',
    },
    'build default base',
  );
  await copyWithLibraries(root, RESIZE2FS);
}

/**
 * Builds the default Base Image: the kernel package unpacked (not installed), a busybox root laid out
 * in a directory, made into ext4 with `mkfs.ext4 -d` and converted to qcow2; nothing is mounted.
 * Built in a staging directory and renamed into place; with `replace`, an existing one is swapped out.
 */
export async function buildDefaultBase(progress: Progress = () => {}, replace = false): Promise<void> {
  requireBusybox('build default base');
  const target = await buildAside(
    basesDir('sys'),
    DEFAULT_BASE,
    async (staging) => {
      const deb = await kernelDeb(progress);
      progress(`unpacking ${deb.split('/').pop()}`);
      const pkg = join(staging, 'pkg');
      mkdirSync(pkg, { recursive: true, mode: 0o700 });
      await must('dpkg-deb -x', 'dpkg-deb', ['-x', deb, pkg]);
      const version = readdirSync(join(pkg, 'lib/modules'))[0];
      const kernel = readdirSync(join(pkg, 'boot')).find((f) => f.startsWith('vmlinuz-'));
      if (!version || !kernel) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `build default base: ${deb} holds no kernel`);
      copyFileSync(join(pkg, 'boot', kernel), join(staging, 'vmlinuz'));
      progress('making the initramfs');
      await makeInitramfs(join(staging, 'initramfs'), join(pkg, 'lib/modules', version), join(staging, 'initrd.img'));
      progress('laying out the busybox root file system');
      await layRootfs(join(staging, 'rootfs'));
      await makeRootDisk(join(staging, 'rootfs'), join(staging, 'disk.qcow2'), ROOTFS_SIZE, progress);
      for (const p of [pkg, join(staging, 'rootfs'), join(staging, 'initramfs')]) rmSync(p, { recursive: true, force: true });
      writeJsonAtomic(join(staging, 'base.json'), { kernel: version, package: deb.split('/').pop(), built: new Date().toISOString() });
      // The old one leaves by rename (the caller made sure no container stands on it).
      if (replace && existsSync(baseDir('sys', DEFAULT_BASE))) rmSync(moveAside(basesDir('sys'), DEFAULT_BASE), { recursive: true, force: true });
    },
    // Another process finished the same build first: theirs is as good as ours.
    { ifTaken: () => {} },
  );
  progress(`default base ready in ${target}`);
}

/** Makes sure the default Base Image exists, building it when missing. */
export async function ensureDefaultBase(progress?: Progress): Promise<void> {
  if (baseExists(DEFAULT_BASE)) return;
  await buildDefaultBase(progress);
}

/** How a Base Image boots, from its base.json (bases made before these fields: D-RE's kernel, with the agent). */
export interface BaseBoot {
  /**
   * 'kernel': D-RE's kernel and initramfs beside the disk boot it directly (ext4 on the whole disk);
   * 'firmware': the disk's own boot loader, through the firmware (SeaBIOS), as an imported cloud image.
   */
  boot: 'kernel' | 'firmware';
  /** Its guests run D-RE's agent. False for an imported disk: start returns once it booted, exec asks first. */
  agent: boolean;
}

/** The boot a base.json at `path` describes; DRE_ERR_BASE_NONEXISTENCE when it cannot be read. */
export function readBaseBoot(path: string, what: string): BaseBoot {
  let info: unknown;
  try {
    info = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what}: its base.json cannot be read (${(e as Error).message})`, e);
  }
  const o = (typeof info === 'object' && info !== null ? info : {}) as Partial<Record<keyof BaseBoot, unknown>>;
  return { boot: o.boot === 'firmware' ? 'firmware' : 'kernel', agent: o.agent !== false };
}

/** The boot of Base Image `base` (its base.json). */
export const baseBoot = (base: string): BaseBoot => readBaseBoot(baseInfoPath(base), `Base Image ${base}`);

/**
 * What QEMU boots for a guest of `base`, from one read of its base.json: D-RE's kernel and
 * initramfs (none when the firmware boots the disk's own loader), and whether its guests run the agent.
 */
export function bootOf(base: string): { kernel?: string; initrd?: string; agent: boolean } {
  const b = baseBoot(base);
  return { ...(b.boot === 'firmware' ? {} : { kernel: baseKernelPath(base), initrd: baseInitrdPath(base) }), agent: b.agent };
}

/** A guest that may run no D-RE agent: a --rootfs image, or one on an imported base. */
export function mayLackAgent(rec: SysRecord): boolean {
  return rec.rootfs !== null || (rec.base !== null && !baseBoot(rec.base).agent);
}

export function baseExists(base: string): boolean {
  if (!existsSync(baseDiskPath(base)) || !existsSync(baseInfoPath(base))) return false;
  if (existsSync(baseKernelPath(base)) && existsSync(baseInitrdPath(base))) return true;
  // No kernel: a base only when the firmware boots it (its base.json read only then).
  try {
    return baseBoot(base).boot === 'firmware';
  } catch {
    return false; // a base.json that cannot be read: not a usable base
  }
}

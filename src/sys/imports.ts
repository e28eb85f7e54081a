/**
 * A Base Image from a disk the user already has: a qcow2 or raw image (a file or a block device),
 * copied into the base as a stand-alone qcow2 (`qemu-img convert`; the user's file is only read).
 * How it boots is found from its first sectors, or told: an ext4 file system on the whole disk is
 * booted by D-RE's kernel and initramfs (those of the default base, as a --rootfs image is); a disk
 * with a partition table (MBR or GPT) by the firmware, through its own boot loader, as a cloud image
 * is. Neither runs D-RE's agent for sure: start returns once the guest has booted (qemu.ts readiness),
 * and exec asks for the agent first.
 */
import { chmodSync, closeSync, copyFileSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dreError } from '../core/errors.js';
import { withLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { baseDir, basesDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { engineCause, lastLines, run } from '../core/run.js';
import { buildAside } from '../core/staging.js';
import { writeJsonAtomic } from '../core/store.js';
import { DEFAULT_BASE, ensureDefaultBase, type BaseBoot } from './base.js';
import { imageInfo, requireOwnBacking } from './image.js';
import { baseInitrdPath, baseKernelPath } from './layout.js';

export interface DiskImportOptions {
  /** How the disk boots; default: found from its first sectors (ext4 on the whole disk: kernel; a partition table: firmware). */
  boot?: BaseBoot['boot'];
}

/** Copying a large disk is given this long. */
const IMPORT_TIMEOUT_MS = 30 * 60_000;
const FORMATS = ['qcow2', 'raw'];

/**
 * What the first 2 KiB of a disk show: ext4's superblock magic (0xEF53 at byte 1080) means a file
 * system on the whole disk; a GPT header ("EFI PART" at 512) or an MBR's boot signature (0x55AA at
 * 510) means a partitioned disk with a boot loader of its own.
 */
export function bootOfSectors(head: Buffer): BaseBoot['boot'] | undefined {
  if (head.length >= 1082 && head.readUInt16LE(1080) === 0xef53) return 'kernel';
  if (head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART') return 'firmware';
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'firmware';
  return undefined;
}

/** The first 2 KiB of the converted qcow2, as the guest sees them (qemu-img dd to a file beside it). */
async function firstSectors(disk: string, doing: string, lockFd: number): Promise<Buffer> {
  const out = `${disk}.head`;
  const r = await run('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', 'bs=2048', 'count=1', `if=${disk}`, `of=${out}`], {
    timeoutMs: 60_000,
    inheritFds: [lockFd],
  });
  if (r.code !== 0) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: qemu-img dd failed: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
  const fd = openSync(out, 'r');
  try {
    const head = Buffer.alloc(2048);
    return head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
    rmSync(out, { force: true });
  }
}

/**
 * Makes the Base Image `name` from the qcow2 or raw disk `source`. DRE_ERR_INVALID_ARGUMENT for a
 * missing file, another format, a qcow2 naming a backing or data file (root would read that file
 * into the base: flatten it first), or a disk that boots neither way; DRE_ERR_BASE_EXISTENCE for a
 * taken name; DRE_ERR_BASE_NONEXISTENCE when qemu-img fails. Made aside: a failure leaves nothing.
 */
export async function importBase(name: string, source: string, opts: DiskImportOptions = {}): Promise<void> {
  const b = checkName(name, 'base name');
  const doing = `import base ${b}`;
  requireRoot(doing);
  if (typeof source !== 'string' || source === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${doing}: no disk image given`);
  const told = opts?.boot;
  if (told !== undefined && told !== 'kernel' && told !== 'firmware')
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${doing}: boot is "kernel" or "firmware", not ${JSON.stringify(told)}`);
  const src = resolve(source);
  let kind: 'file' | 'device' | undefined;
  try {
    const st = statSync(src);
    kind = st.isFile() ? 'file' : st.isBlockDevice() ? 'device' : undefined;
  } catch {
    /* missing: below */
  }
  if (!kind) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${doing}: ${src} is not a disk image file or block device`);
  const exists = () => dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: a Base Image of that name exists (dre-sys rm-base ${b} first)`);
  if (b === DEFAULT_BASE) throw dreError('DRE_ERR_BASE_EXISTENCE', `${doing}: ${DEFAULT_BASE} is the built-in base's name`);
  const info = await imageInfo(src, doing, 'DRE_ERR_INVALID_ARGUMENT');
  const format = info.format ?? '';
  if (!FORMATS.includes(format)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${doing}: ${src} is a ${format} image; qcow2 or raw can be imported`);
  requireOwnBacking(info, undefined, `${doing} from ${src}`, 'DRE_ERR_INVALID_ARGUMENT');
  await withLock('sys', `.base-${b}`, doing, async (lock) => {
    if (existsSync(baseDir('sys', b))) throw exists();
    await buildAside(
      basesDir('sys'),
      b,
      async (staging) => {
        const disk = join(staging, 'disk.qcow2');
        const r = await run('qemu-img', ['convert', '-f', format, '-O', 'qcow2', src, disk], { timeoutMs: IMPORT_TIMEOUT_MS, inheritFds: [lock.fd] });
        if (r.code !== 0)
          throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${doing}: qemu-img convert of ${src} failed: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
        chmodSync(disk, 0o600);
        const found = bootOfSectors(await firstSectors(disk, doing, lock.fd));
        const boot = told ?? found;
        if (boot === undefined)
          throw dreError(
            'DRE_ERR_INVALID_ARGUMENT',
            `${doing}: ${src} holds neither an ext4 file system on the whole disk nor a partition table with a boot loader (give --boot to say how it boots)`,
          );
        if (boot === 'kernel') {
          // D-RE's initramfs mounts /dev/vda as the root and runs its /sbin/init, with the default base's kernel.
          await ensureDefaultBase();
          copyFileSync(baseKernelPath(DEFAULT_BASE), join(staging, 'vmlinuz'));
          copyFileSync(baseInitrdPath(DEFAULT_BASE), join(staging, 'initrd.img'));
        }
        const record: BaseBoot = { boot, agent: false };
        writeJsonAtomic(join(staging, 'base.json'), { imported: { from: src, format }, ...record, built: new Date().toISOString() });
      },
      { ifTaken: exists },
    );
  });
}

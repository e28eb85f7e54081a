/** What `qemu-img info` says about a container's disk: asked once per operation, checked by pure functions. */
import { closeSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { dreError, type DreErrName } from '../core/errors.js';
import { lastLines, run, engineCause } from '../core/run.js';

/** One internal snapshot of a qcow2 as `qemu-img info` (and QMP query-block) reports it. */
export interface ImageSnapshot {
  name: string;
  'vm-state-size': number;
  /** When it was taken, seconds since the epoch. */
  'date-sec'?: number;
}

/** The fields of `qemu-img info --output=json` that D-RE reads. */
export interface ImageInfo {
  /** The image's format as qemu-img probed it (qcow2 for every disk D-RE makes; raw, vmdk, ... for a user's). */
  format?: string;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { data?: { 'data-file'?: string } };
  snapshots?: ImageSnapshot[];
}

/** `qemu-img info` of `disk` (a path or nfs:// URL), one process; a failure → `code`, naming `what`. */
export async function imageInfo(disk: string, what: string, code: DreErrName): Promise<ImageInfo> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', disk], { timeoutMs: 60_000 });
  if (r.code !== 0) throw dreError(code, `${what}: qemu-img info failed: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
  return JSON.parse(r.stdout) as ImageInfo;
}

/**
 * QEMU writes its disk's qcow2 header, so a QEMU taken over by its guest could point the backing file
 * (or an external data file) at any host file, which root's `qemu-img convert` would then read into
 * a new image. Before root reads a container's disk through its chain, the header must name the
 * backing D-RE gave it (`expectedBacking`) or none, and no data file.
 */
export function requireOwnBacking(info: ImageInfo, expectedBacking: string | undefined, what: string, code: DreErrName): void {
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  const dataFile = info['format-specific']?.data?.['data-file'];
  const want = expectedBacking === undefined ? undefined : resolve(expectedBacking);
  // No backing file is fine too: a disk back from a share is standalone.
  if ((backing !== undefined && resolve(backing) !== want) || dataFile !== undefined) {
    throw dreError(
      code,
      `${what}: the disk's header names ${dataFile !== undefined ? `data file ${dataFile}` : `backing file ${backing ?? 'none'}`}, not ${want ?? 'no backing file'} as D-RE made it (written by its QEMU?); refused`,
    );
  }
}

/** What a qcow2 file's own header says, read by D-RE before any qemu-img opens what an untrusted header names. */
export interface Qcow2Header {
  version: number;
  /** It names a backing file. */
  backing: boolean;
  /** Its clusters live in an external data file (incompatible feature bit 2, version 3). */
  externalData: boolean;
}

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;

/** The qcow2 header at the start of `head` (at least its first 80 bytes for version 3, 72 for 2); undefined when it is none. */
export function parseQcow2Header(head: Buffer): Qcow2Header | undefined {
  if (head.length < 72 || head.readUInt32BE(0) !== QCOW2_MAGIC) return undefined;
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) return undefined;
  if (version === 3 && head.length < 80) return undefined;
  const backing = head.readBigUInt64BE(8) !== 0n;
  const externalData = version === 3 && (head.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n;
  return { version, backing, externalData };
}

/** The qcow2 header of the file at `path` (its first bytes, read with no tool). */
export function readQcow2Header(path: string): Qcow2Header | undefined {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(512);
    return parseQcow2Header(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } finally {
    closeSync(fd);
  }
}

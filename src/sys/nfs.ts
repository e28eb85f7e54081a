/**
 * A D-RE host's own NFS client for the small files of a share (records, leases): libnfs through an FFI,
 * since the kernel may have no NFS client. Disk images go through QEMU's libnfs driver (nfs:// URLs).
 */
import { spawnSync } from 'node:child_process';
import { koffi as ffi, library } from '../core/ffi.js';
import { dreError } from '../core/errors.js';
import { lastLines } from '../core/run.js';
import type { ShareFiles } from './storage.js';

/** `nfs://SERVER/EXPORT` split into the server and the exported path. */
export interface NfsTarget {
  server: string;
  exportPath: string;
}

/** Parses `nfs://SERVER/EXPORT` (an IPv4 address or host name, an absolute export path). */
export function parseNfsUrl(url: string, what: string): NfsTarget {
  const m = /^nfs:\/\/([A-Za-z0-9.-]+)(\/[^?#]*)$/.exec(url);
  if (!m || m[2].split('/').some((p) => p === '..')) {
    throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: ${JSON.stringify(url)} is not an NFS URL of the form nfs://SERVER/EXPORT`);
  }
  return { server: m[1], exportPath: m[2].replace(/\/+$/, '') || '/' };
}

/** The export itself, as a URL (what a host's configuration and a container's share record hold). */
export const exportUrl = (t: NfsTarget) => `nfs://${t.server}${t.exportPath}`;

/** A file of the share as QEMU opens it. */
export const fileUrl = (t: NfsTarget, file: string) => `nfs://${t.server}${t.exportPath === '/' ? '' : t.exportPath}/${file}`;

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const EEXIST = 17;
const ENOENT = 2;
/** Every libnfs call gives up after this long (the sync API blocks the caller: keep it short). */
const NFS_TIMEOUT_MS = 5_000;

type Ptr = unknown;
interface Lib {
  init(): Ptr;
  destroy(ctx: Ptr): void;
  setTimeout(ctx: Ptr, ms: number): void;
  mount(ctx: Ptr, server: string, exp: string): number;
  error(ctx: Ptr): string;
  create(ctx: Ptr, path: string, flags: number, mode: number, fh: Ptr[]): number;
  open(ctx: Ptr, path: string, flags: number, fh: Ptr[]): number;
  close(ctx: Ptr, fh: Ptr): number;
  read(ctx: Ptr, fh: Ptr, count: number, buf: Buffer): number;
  write(ctx: Ptr, fh: Ptr, count: number, buf: Buffer): number;
  unlink(ctx: Ptr, path: string): number;
  rename(ctx: Ptr, from: string, to: string): number;
  stat64(ctx: Ptr, path: string, st: Buffer): number;
  truncate(ctx: Ptr, path: string, length: bigint): number;
  chown(ctx: Ptr, path: string, uid: number, gid: number): number;
  chmod(ctx: Ptr, path: string, mode: number): number;
}

/** struct nfs_stat_64: seventeen uint64_t fields: dev, ino, mode, nlink, uid, gid, rdev, size, ... */
const NFS_STAT_64_BYTES = 17 * 8;
const NFS_STAT_64_MODE_OFFSET = 2 * 8;
const NFS_STAT_64_UID_OFFSET = 4 * 8;
const NFS_STAT_64_GID_OFFSET = 5 * 8;
const NFS_STAT_64_SIZE_OFFSET = 7 * 8;

let lib: Lib | undefined;

/** libnfs (package libnfs13, pulled in by qemu-block-extra), bound on first use. */
function libnfs(): Lib {
  if (lib) return lib;
  const koffi = ffi();
  const so = library('libnfs.so.13', 'libnfs13');
  koffi.opaque('nfs_context');
  koffi.opaque('nfsfh');
  lib = {
    init: so.func('nfs_context *nfs_init_context(void)'),
    destroy: so.func('void nfs_destroy_context(nfs_context *ctx)'),
    setTimeout: so.func('void nfs_set_timeout(nfs_context *ctx, int ms)'),
    mount: so.func('int nfs_mount(nfs_context *ctx, const char *server, const char *exportname)'),
    error: so.func('const char *nfs_get_error(nfs_context *ctx)'),
    create: so.func('int nfs_create(nfs_context *ctx, const char *path, int flags, int mode, _Out_ nfsfh **fh)'),
    open: so.func('int nfs_open(nfs_context *ctx, const char *path, int flags, _Out_ nfsfh **fh)'),
    close: so.func('int nfs_close(nfs_context *ctx, nfsfh *fh)'),
    read: so.func('int nfs_read(nfs_context *ctx, nfsfh *fh, uint64_t count, _Out_ uint8_t *buf)'),
    write: so.func('int nfs_write(nfs_context *ctx, nfsfh *fh, uint64_t count, const uint8_t *buf)'),
    unlink: so.func('int nfs_unlink(nfs_context *ctx, const char *path)'),
    rename: so.func('int nfs_rename(nfs_context *ctx, const char *from, const char *to)'),
    stat64: so.func('int nfs_stat64(nfs_context *ctx, const char *path, _Out_ uint8_t *st)'),
    truncate: so.func('int nfs_truncate(nfs_context *ctx, const char *path, uint64_t length)'),
    chown: so.func('int nfs_chown(nfs_context *ctx, const char *path, int uid, int gid)'),
    chmod: so.func('int nfs_chmod(nfs_context *ctx, const char *path, int mode)'),
  } as unknown as Lib;
  return lib;
}

const answering = new Set<string>();

/**
 * libnfs's synchronous mount ignores its timeout while connecting (a silent server held it over two
 * minutes): the first mount of an export in a process is tried by nfs-ls under a hard time limit.
 */
function probe(target: NfsTarget, what: string): void {
  const url = exportUrl(target);
  if (answering.has(url)) return;
  const r = spawnSync('nfs-ls', [url], { timeout: NFS_TIMEOUT_MS, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return; // no libnfs-utils: libnfs alone decides
  if (r.status !== 0) {
    const reason = r.signal ? `no answer within ${NFS_TIMEOUT_MS / 1000} s` : lastLines(r.stderr ?? '') || `nfs-ls exit ${r.status}`;
    throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: cannot mount ${url}: ${reason}`);
  }
  answering.add(url);
}

/** One mounted NFS export (NFSv3 through libnfs); paths are relative to the export's root. */
export class NfsClient implements ShareFiles {
  private constructor(
    readonly target: NfsTarget,
    private ctx: Ptr,
  ) {}

  /** Mounts the export; an unreachable or refusing server → DRE_ERR_NFS_MOUNT_FAILED with libnfs's reason. */
  static mount(target: NfsTarget, what: string): NfsClient {
    probe(target, what);
    const l = libnfs();
    const ctx = l.init();
    if (!ctx) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: libnfs could not make a context`);
    l.setTimeout(ctx, NFS_TIMEOUT_MS);
    if (l.mount(ctx, target.server, target.exportPath) !== 0) {
      const reason = l.error(ctx);
      l.destroy(ctx);
      throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: cannot mount ${exportUrl(target)}: ${reason}`);
    }
    return new NfsClient(target, ctx);
  }

  close(): void {
    if (this.ctx) libnfs().destroy(this.ctx);
    this.ctx = undefined;
  }

  private fail(what: string, rc: number): never {
    throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: ${libnfs().error(this.ctx) || `error ${-rc}`}`);
  }

  /** The whole file as text, or undefined when it does not exist. */
  readText(file: string): string | undefined {
    const l = libnfs();
    const fh: Ptr[] = [null];
    const rc = l.open(this.ctx, `/${file}`, O_RDONLY, fh);
    if (rc === -ENOENT) return undefined;
    if (rc !== 0) this.fail(`read ${file} on the share`, rc);
    try {
      const chunks: Buffer[] = [];
      for (;;) {
        const buf = Buffer.alloc(65536);
        const n = l.read(this.ctx, fh[0], buf.length, buf);
        if (n < 0) this.fail(`read ${file} on the share`, n);
        if (n === 0) break;
        chunks.push(buf.subarray(0, n));
      }
      return Buffer.concat(chunks).toString('utf8');
    } finally {
      l.close(this.ctx, fh[0]);
    }
  }

  /**
   * Writes a file. `exclusive`: created only if absent (an NFSv3 exclusive CREATE, atomic on the
   * server), returning false when it exists; otherwise written aside and renamed over (atomic too).
   */
  writeText(file: string, text: string, exclusive = false): boolean {
    const l = libnfs();
    const path = exclusive ? `/${file}` : `/.${file}.${process.pid}.tmp`;
    const fh: Ptr[] = [null];
    const rc = l.create(this.ctx, path, O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC), 0o600, fh);
    if (exclusive && rc === -EEXIST) return false;
    if (rc !== 0) this.fail(`write ${file} on the share`, rc);
    const data = Buffer.from(text);
    const n = l.write(this.ctx, fh[0], data.length, data);
    l.close(this.ctx, fh[0]);
    if (n !== data.length) this.fail(`write ${file} on the share`, n);
    if (!exclusive) this.rename(path.slice(1), file);
    return true;
  }

  rename(from: string, to: string): void {
    const rc = libnfs().rename(this.ctx, `/${from}`, `/${to}`);
    if (rc !== 0) this.fail(`rename ${from} to ${to} on the share`, rc);
  }

  /** The file's length in bytes as the server has it now, or undefined when it does not exist. */
  size(file: string): number | undefined {
    return this.stat(file)?.size;
  }

  /** Length, permission bits and owner of a file ('' is the export's root), or undefined when it does not exist. */
  stat(file: string): { size: number; mode: number; uid: number; gid: number } | undefined {
    const st = Buffer.alloc(NFS_STAT_64_BYTES);
    const rc = libnfs().stat64(this.ctx, `/${file}`, st);
    if (rc === -ENOENT) return undefined;
    if (rc !== 0) this.fail(`stat ${file || 'the export'} on the share`, rc);
    const field = (offset: number) => Number(st.readBigUInt64LE(offset));
    return {
      size: field(NFS_STAT_64_SIZE_OFFSET),
      mode: field(NFS_STAT_64_MODE_OFFSET) & 0o7777,
      uid: field(NFS_STAT_64_UID_OFFSET),
      gid: field(NFS_STAT_64_GID_OFFSET),
    };
  }

  chown(file: string, uid: number, gid: number): void {
    const rc = libnfs().chown(this.ctx, `/${file}`, uid, gid);
    if (rc !== 0) this.fail(`give ${file || 'the export'} to ${uid}:${gid} on the share`, rc);
  }

  chmod(file: string, mode: number): void {
    const rc = libnfs().chmod(this.ctx, `/${file}`, mode);
    if (rc !== 0) this.fail(`set the mode of ${file || 'the export'} on the share`, rc);
  }

  /** Sets the file's length (a longer file reads as zeros past its old end, without taking space). */
  truncate(file: string, length: number): void {
    const rc = libnfs().truncate(this.ctx, `/${file}`, BigInt(length));
    if (rc !== 0) this.fail(`set the length of ${file} on the share`, rc);
  }

  /** Removes a file; true if it was there. */
  remove(file: string): boolean {
    const rc = libnfs().unlink(this.ctx, `/${file}`);
    if (rc === -ENOENT) return false;
    if (rc !== 0) this.fail(`remove ${file} from the share`, rc);
    return true;
  }
}

/** Mounts, runs `fn`, always unmounts. */
export function withNfs<T>(target: NfsTarget, what: string, fn: (c: NfsClient) => T): T {
  const c = NfsClient.mount(target, what);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

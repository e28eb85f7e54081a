/**
 * What the sharing of system containers needs of the shared storage, as one interface: the small
 * files beside each image (record, lease, guard, incoming announcement) and the image's own length,
 * owner and mode. NFS implements it today (nfs.ts, libnfs through koffi; QEMU opens the image as
 * nfs://). Another backend (Ceph RBD: QEMU's rbd:// driver, the small files as RADOS objects)
 * would implement it, plus the URL QEMU opens an image by.
 */
export interface ShareFiles {
  /** A file's text, or undefined when there is none. */
  readText(file: string): string | undefined;
  /** Writes a file; `exclusive`: only when none exists (then false when one did). */
  writeText(file: string, text: string, exclusive?: boolean): boolean;
  rename(from: string, to: string): void;
  remove(file: string): boolean;
  size(file: string): number | undefined;
  stat(file: string): { size: number; mode: number; uid: number; gid: number } | undefined;
  chown(file: string, uid: number, gid: number): void;
  chmod(file: string, mode: number): void;
  truncate(file: string, length: number): void;
  close(): void;
}

/**
 * The host C library's calls that Node lacks, bound on first use through core/ffi.ts (so read-only CLI
 * calls never pay for koffi).
 */
import { koffi, library } from './ffi.js';

export interface HostLibc {
  flock: (fd: number, op: number) => number;
  renameat2: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number;
  mount: (source: string | null, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  /** ioctl(fd, request, buffer): the buffer is read and written in place. */
  ioctl: (fd: number, request: number, arg: Buffer) => number;
  /** errno of the last call that failed. */
  errno: () => number;
}

let bound: HostLibc | undefined;

export function hostLibc(): HostLibc {
  if (!bound) {
    const lib = library('libc.so.6', 'libc6');
    bound = {
      flock: lib.func('int flock(int, int)') as HostLibc['flock'],
      renameat2: lib.func('int renameat2(int, const char *, int, const char *, unsigned int)') as HostLibc['renameat2'],
      mount: lib.func('int mount(const char *, const char *, const char *, unsigned long, const char *)') as HostLibc['mount'],
      umount2: lib.func('int umount2(const char *, int)') as HostLibc['umount2'],
      ioctl: (
        (ioctl: (...a: unknown[]) => number) => (fd: number, request: number, arg: Buffer) =>
          ioctl(fd, request, 'void *', arg)
      )(lib.func('int ioctl(int, unsigned long, ...)') as (...a: unknown[]) => number),
      errno: () => koffi().errno(),
    };
  }
  return bound;
}

/** Whether this process has bound the library already (then a call costs microseconds). */
export const hostLibcBound = () => bound !== undefined;

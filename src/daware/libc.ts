/** libc's own openlog/syslog/closelog through koffi, so messages leave exactly as syslog(3) sends them. */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

interface Syslog {
  openlog(ident: unknown, option: number, facility: number): void;
  syslog(priority: number, fmt: string, ...args: unknown[]): void;
  closelog(): void;
}

let koffi: Koffi | undefined;
let fns: Syslog | undefined;
/** openlog keeps the ident pointer: it lives in memory koffi never moves, freed after the next open/close. */
let identMemory: unknown;

function libc(): Syslog {
  if (!fns) {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load('libc.so.6');
    fns = {
      openlog: lib.func('void openlog(void *ident, int option, int facility)') as Syslog['openlog'],
      syslog: lib.func('void syslog(int priority, const char *fmt, ...)') as Syslog['syslog'],
      closelog: lib.func('void closelog(void)') as Syslog['closelog'],
    };
  }
  return fns;
}

export function openlog(ident: string, option: number, facility: number): void {
  const f = libc();
  const bytes = [...Buffer.from(ident.replaceAll('\0', '')), 0];
  const mem = koffi!.alloc('uint8', bytes.length);
  koffi!.encode(mem, 'uint8', bytes, bytes.length);
  f.openlog(mem, option, facility);
  if (identMemory !== undefined) koffi!.free(identMemory);
  identMemory = mem;
}

/** Sends an already formatted message: passed through "%s", so nothing in it is read as a format. */
export function syslog(priority: number, message: string): void {
  libc().syslog(priority, '%s', 'str', message);
}

export function closelog(): void {
  if (!fns) return;
  fns.closelog(); // glibc forgets the ident here, so its memory can go
  if (identMemory !== undefined) koffi!.free(identMemory);
  identMemory = undefined;
}

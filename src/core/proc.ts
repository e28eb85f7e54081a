import { readFileSync, readlinkSync } from 'node:fs';
import { readSmallFile } from './smallfile.js';

/** What /proc/PID/stat says of a process: its state letter and its start time (clock ticks after boot). */
export interface ProcStat {
  state: string;
  startTime: number;
  ppid: number;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readSmallFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]), startTime: Number(fields[19]) };
}

/** True while `pid` is a live process; a zombie (PID 1 here reaps lazily) counts as gone. */
export function isAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

/** The PIDs of `pid` as seen from each nested PID namespace, outermost first (`NSpid` of /proc/PID/status). */
export function nsPids(pid: number): number[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const line = /^NSpid:\s*(.*)$/m.exec(text);
  return line ? line[1].trim().split(/\s+/).map(Number) : undefined;
}

/** The namespace inode link of `pid` (e.g. "pid:[4026532]"), for same-namespace checks. */
export function nsId(pid: number, ns: 'pid' | 'mnt' | 'net' | 'uts' | 'ipc'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, or `timeoutMs` passes. */
export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, intervalMs = 10): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await sleep(intervalMs);
  }
}

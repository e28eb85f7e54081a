/**
 * Resource limits as cgroup files: the checks of a caller's values and, for each cgroup version, which
 * file gets which text (kernel Documentation/admin-guide/cgroup-v1/{cpusets,memory}.rst,
 * scheduler/sched-bwc.rst and cgroup-v2.rst). Pure: the group's current files come in through `read`.
 */
import { RESOURCE, type Limits, type Resource, type ResourceType } from './driver.js';
import { shown } from './names.js';
import { dreError } from './errors.js';

export type { Limits };

export type LimitController = 'cpu' | 'cpuset' | 'memory';

/** One write into a file of the group. */
export interface FileWrite {
  controller: LimitController;
  file: string;
  value: string;
}

/** What a plan may look at: the version holding each controller, and the group's (or its parent's) files. */
export interface GroupFiles {
  version(controller: LimitController): 1 | 2 | undefined;
  /** The trimmed content of a file of the group; undefined when the file does not exist. */
  read(controller: LimitController, file: string): string | undefined;
  readParent(controller: LimitController, file: string): string | undefined;
}

/** The kernel's smallest CFS quota (1 ms), in µs. */
export const MIN_QUOTA_US = 1000;
export const DEFAULT_PERIOD_US = 100_000;
/** v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages): anything this big is none. */
const V1_UNLIMITED = 2 ** 62;

export const RESOURCE_LABEL: Record<ResourceType, string> = { 1: 'CPU', 2: 'CPU_CORE', 3: 'MEMORY', 4: 'MEMSW' };

const invalid = (msg: string) => dreError('DRE_ERR_INVALID_ARGUMENT', msg);

/** A resource type 1-4, else INVALID_ARGUMENT. */
export function checkResourceType(t: unknown): ResourceType {
  if (t === null || t === undefined) throw dreError('DRE_ERR_NULL_POINTER', 'resource type is null');
  if (t !== RESOURCE.CPU && t !== RESOURCE.CPU_CORE && t !== RESOURCE.MEMORY && t !== RESOURCE.MEMSW) {
    throw invalid(`resource type ${shown(t)} is not one of 1 (CPU), 2 (CPU_CORE), 3 (MEMORY), 4 (MEMSW)`);
  }
  return t;
}

/** A CPU share in percent of one CPU: positive and finite (above 100 on several cores). */
export function checkPercent(p: unknown): number {
  if (p === null || p === undefined) throw dreError('DRE_ERR_NULL_POINTER', 'CPU percent is null');
  if (typeof p !== 'number' || !Number.isFinite(p) || p <= 0) throw invalid(`CPU percent ${shown(p)} must be a number above 0`);
  return p;
}

/** A byte count: a positive safe integer. */
export function checkBytes(b: unknown, what: string): number {
  if (b === null || b === undefined) throw dreError('DRE_ERR_NULL_POINTER', `${what} bytes is null`);
  if (typeof b !== 'number' || !Number.isSafeInteger(b) || b <= 0) throw invalid(`${what} ${shown(b)} must be a whole number of bytes above 0`);
  return b;
}

/** Parses a kernel CPU list ("0", "0-1", "0,2", "0-1,3"); undefined when malformed. */
export function parseCpuList(text: string): number[] | undefined {
  const s = text.trim();
  if (s === '') return [];
  const cpus = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return undefined;
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Formats CPUs the way the kernel prints them: "0-2,5". */
export function formatCpuList(cpus: readonly number[]): string {
  const out: string[] = [];
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Checks a cores list against the CPUs the host has online; returns it in the kernel's form. */
export function checkCores(cores: unknown, online: readonly number[]): string {
  if (cores === null || cores === undefined) throw dreError('DRE_ERR_NULL_POINTER', 'cores is null');
  if (typeof cores !== 'string') throw invalid('cores must be a string such as "0", "0-1" or "0,2"');
  const cpus = parseCpuList(cores);
  if (!cpus || cpus.length === 0) throw invalid(`cores ${shown(cores)} is not a CPU list such as "0", "0-1" or "0,2"`);
  const missing = cpus.filter((c) => !online.includes(c));
  if (missing.length > 0) throw invalid(`cores ${shown(cores)}: this host has no online CPU ${formatCpuList(missing)} (online: ${formatCpuList(online)})`);
  return formatCpuList(cpus);
}

/** A v1 byte limit, or undefined for "no limit" (or no such file). */
function v1Limit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return n >= V1_UNLIMITED || n < 0 ? undefined : n;
}

/** A v2 value ("max" or bytes), or undefined for "max" (or no such file). */
function v2Limit(text: string | undefined): number | undefined {
  return text === undefined || text === 'max' ? undefined : Number(text);
}

/** The CFS period of the group in µs (v1 cpu.cfs_period_us; v2 the second field of cpu.max "$MAX $PERIOD"). */
function period(files: GroupFiles, v: 1 | 2): number {
  const text = v === 1 ? files.read('cpu', 'cpu.cfs_period_us') : files.read('cpu', 'cpu.max')?.split(/\s+/)[1];
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_PERIOD_US;
}

function need(files: GroupFiles, c: LimitController, code: 'DRE_ERR_SET_LIMIT_FAILED' | 'DRE_ERR_UNSET_LIMIT_FAILED'): 1 | 2 {
  const v = files.version(c);
  if (v === undefined) throw dreError(code, `the ${c} controller is not available on this host`);
  return v;
}

const NO_SWAP_ACCOUNTING =
  'the kernel does not account swap for this group (no memory.memsw.limit_in_bytes / memory.swap.max: boot with swapaccount=1 or a kernel with CONFIG_MEMCG_SWAP)';

/**
 * The writes that set a limit, in order. Bad values → INVALID_ARGUMENT before anything is written;
 * a limit the host cannot hold → SET_LIMIT_FAILED.
 */
export function setPlan(r: Resource, files: GroupFiles, onlineCpus: readonly number[]): FileWrite[] {
  const type = checkResourceType(r.type);
  if (type === RESOURCE.CPU) {
    const percent = checkPercent(r.percent);
    const v = need(files, 'cpu', 'DRE_ERR_SET_LIMIT_FAILED');
    const p = period(files, v);
    const quota = Math.round((percent * p) / 100);
    if (quota < MIN_QUOTA_US) throw invalid(`CPU ${percent}% is below the kernel's smallest quota (${MIN_QUOTA_US} µs per ${p} µs period)`);
    return v === 1 ? [{ controller: 'cpu', file: 'cpu.cfs_quota_us', value: `${quota}` }] : [{ controller: 'cpu', file: 'cpu.max', value: `${quota} ${p}` }];
  }
  if (type === RESOURCE.CPU_CORE) {
    const cores = checkCores(r.cores, onlineCpus);
    need(files, 'cpuset', 'DRE_ERR_SET_LIMIT_FAILED');
    return [{ controller: 'cpuset', file: 'cpuset.cpus', value: cores }];
  }
  if (type === RESOURCE.MEMORY) return memoryPlan(checkBytes(r.bytes, 'memory'), files);
  return memswPlan(checkBytes(r.bytes, 'memory+swap'), files);
}

/** Memory limit. A memory+swap limit stays what it was: v1 refuses memory above it, v2 keeps swap = memsw − memory. */
function memoryPlan(bytes: number, files: GroupFiles): FileWrite[] {
  const v = need(files, 'memory', 'DRE_ERR_SET_LIMIT_FAILED');
  if (v === 1) {
    const memsw = v1Limit(files.read('memory', 'memory.memsw.limit_in_bytes'));
    if (memsw !== undefined && bytes > memsw) throw invalid(`memory ${bytes} is above the memory+swap limit ${memsw}: raise MEMSW first`);
    return [{ controller: 'memory', file: 'memory.limit_in_bytes', value: `${bytes}` }];
  }
  const mem = v2Limit(files.read('memory', 'memory.max'));
  const swap = v2Limit(files.read('memory', 'memory.swap.max'));
  const setMem: FileWrite = { controller: 'memory', file: 'memory.max', value: `${bytes}` };
  if (mem === undefined || swap === undefined) return [setMem];
  const memsw = mem + swap;
  if (bytes > memsw) throw invalid(`memory ${bytes} is above the memory+swap limit ${memsw}: raise MEMSW first`);
  const setSwap: FileWrite = { controller: 'memory', file: 'memory.swap.max', value: `${memsw - bytes}` };
  // Never let memory + swap exceed the memsw limit between the two writes.
  return bytes > mem ? [setSwap, setMem] : [setMem, setSwap];
}

/** Memory+swap limit: v1 memory.memsw.limit_in_bytes; v2 memory.swap.max holds swap alone (memsw − memory). */
function memswPlan(bytes: number, files: GroupFiles): FileWrite[] {
  const v = need(files, 'memory', 'DRE_ERR_SET_LIMIT_FAILED');
  const swapFile = v === 1 ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max';
  if (files.read('memory', swapFile) === undefined) throw dreError('DRE_ERR_SET_LIMIT_FAILED', NO_SWAP_ACCOUNTING);
  const mem = v === 1 ? v1Limit(files.read('memory', 'memory.limit_in_bytes')) : v2Limit(files.read('memory', 'memory.max'));
  if (mem === undefined) throw invalid(`memory+swap ${bytes}: set a MEMORY limit first (memory+swap may not be below memory, which is unlimited)`);
  if (bytes < mem) throw invalid(`memory+swap ${bytes} is below the memory limit ${mem}`);
  return [{ controller: 'memory', file: swapFile, value: v === 1 ? `${bytes}` : `${bytes - mem}` }];
}

/**
 * The writes that lift a limit, in order. Lifting MEMORY lifts MEMSW too (v1 forbids memory+swap
 * below memory, so it goes first).
 */
export function unsetPlan(type: ResourceType, files: GroupFiles): FileWrite[] {
  const t = checkResourceType(type);
  const code = 'DRE_ERR_UNSET_LIMIT_FAILED';
  if (t === RESOURCE.CPU) {
    const v = need(files, 'cpu', code);
    return v === 1
      ? [{ controller: 'cpu', file: 'cpu.cfs_quota_us', value: '-1' }]
      : [{ controller: 'cpu', file: 'cpu.max', value: `max ${period(files, 2)}` }];
  }
  if (t === RESOURCE.CPU_CORE) {
    const v = need(files, 'cpuset', code);
    // The parent's CPUs, written out: v2's empty "inherit" list is refused (ENOSPC) while the group holds processes.
    const file = v === 1 ? 'cpuset.cpus' : 'cpuset.cpus.effective';
    const parent = files.readParent('cpuset', file);
    if (!parent) throw dreError(code, `the parent group has no ${file} to restore`);
    return [{ controller: 'cpuset', file: 'cpuset.cpus', value: parent }];
  }
  const v = need(files, 'memory', code);
  const swapFile = v === 1 ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max';
  const none = v === 1 ? '-1' : 'max';
  const liftSwap: FileWrite[] = files.read('memory', swapFile) === undefined ? [] : [{ controller: 'memory', file: swapFile, value: none }];
  if (t === RESOURCE.MEMSW) return liftSwap;
  return [...liftSwap, { controller: 'memory', file: v === 1 ? 'memory.limit_in_bytes' : 'memory.max', value: none }];
}

/** Where the usage of each resource is read: the controller's hierarchy and the file(s), per version. */
export const USAGE_FILES = {
  v1: {
    cpu: { controller: 'cpuacct', file: 'cpuacct.usage' }, // ns
    cores: { controller: 'cpuset', file: 'cpuset.effective_cpus' },
    memory: { controller: 'memory', file: 'memory.usage_in_bytes' },
    memsw: { controller: 'memory', file: 'memory.memsw.usage_in_bytes' },
  },
  v2: {
    cpu: { controller: 'cpu', file: 'cpu.stat' }, // usage_usec line
    cores: { controller: 'cpuset', file: 'cpuset.cpus.effective' },
    memory: { controller: 'memory', file: 'memory.current' },
    memsw: { controller: 'memory', file: 'memory.swap.current' }, // added to memory.current
  },
} as const;

/** CPU time used in ns from v1 cpuacct.usage or v2 cpu.stat ("usage_usec N"). */
export function cpuUsageNs(version: 1 | 2, text: string): number {
  if (version === 1) return Number(text.trim());
  const m = /^usage_usec (\d+)$/m.exec(text);
  if (!m) throw new Error(`cpu.stat has no usage_usec line: ${JSON.stringify(text.slice(0, 80))}`);
  return Number(m[1]) * 1000;
}

/** Reads a group's limits from its files (v1 or v2, per controller); the inverse of setPlan. */
export function limitsOf(files: GroupFiles): Limits {
  const cpuV = files.version('cpu');
  let cpuPercent: number | null = null;
  if (cpuV === 1) {
    const quota = Number(files.read('cpu', 'cpu.cfs_quota_us'));
    if (quota > 0) cpuPercent = Math.round((quota / period(files, 1)) * 1000) / 10;
  } else if (cpuV === 2) {
    const quota = files.read('cpu', 'cpu.max')?.split(/\s+/)[0];
    if (quota !== undefined && quota !== 'max') cpuPercent = Math.round((Number(quota) / period(files, 2)) * 1000) / 10;
  }
  const memV = files.version('memory');
  const memory =
    (memV === 1 ? v1Limit(files.read('memory', 'memory.limit_in_bytes')) : memV === 2 ? v2Limit(files.read('memory', 'memory.max')) : undefined) ?? null;
  let memsw: number | null = null;
  if (memV === 1) memsw = v1Limit(files.read('memory', 'memory.memsw.limit_in_bytes')) ?? null;
  else if (memV === 2) {
    const swap = v2Limit(files.read('memory', 'memory.swap.max'));
    memsw = memory !== null && swap !== undefined ? memory + swap : null;
  }
  const cores = files.read('cpuset', 'cpuset.cpus')?.trim() || null;
  return { cpuPercent, cores, memory, memsw };
}

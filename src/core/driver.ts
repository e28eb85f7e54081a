import type { Kind } from './paths.js';

/** The limits a group holds, as the Resource words say them; null where there is none. */
export interface Limits {
  cpuPercent: number | null;
  cores: string | null;
  memory: number | null;
  memsw: number | null;
}

/** What a container uses now: CPU % of one CPU and memory bytes; null where the host does not account it. */
export interface Usage {
  cpuPercent: number | null;
  memory: number | null;
}

/** dre_app_status_t / dre_sys_status_t: the same values for both kinds. */
export const STATUS = { STOP: 11, RUNNING: 12, SUSPENDED: 13, BUSY: 14 } as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];

export function statusName(s: Status): 'STOP' | 'RUNNING' | 'SUSPENDED' | 'BUSY' {
  return (Object.keys(STATUS) as (keyof typeof STATUS)[]).find((k) => STATUS[k] === s)!;
}

/** dre_app_resource_t / dre_sys_resource_t: the same values for both kinds. */
export const RESOURCE = { CPU: 1, CPU_CORE: 2, MEMORY: 3, MEMSW: 4 } as const;
export type ResourceType = (typeof RESOURCE)[keyof typeof RESOURCE];

/**
 * A limit to set or a usage reported, by type: CPU → `percent` (of one CPU, may exceed 100),
 * CPU_CORE → `cores` (a cpuset list such as "0-1"), MEMORY / MEMSW → `bytes`.
 */
export interface Resource {
  type: ResourceType;
  percent?: number;
  cores?: string;
  bytes?: number;
}

/** What a command run inside a container gave back (its output captured). */
export interface ExecResult {
  status: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** A log the engine writes for the container on the host (console, LXC's log, QEMU's). */
export interface LogFile {
  source: string;
  path: string;
}

export interface StopOptions {
  /** How long the guest may take to shut down by itself before it is ended; default per driver. */
  timeoutMs?: number;
}

/** The operations both container kinds offer, each taking the container's name. */
export interface Lifecycle<Config> {
  readonly kind: Kind;
  create(name: string, config: Config): Promise<void>;
  destroy(name: string): Promise<void>;
  exists(name: string): boolean;
  /** The containers of this root, in natural order (c1, c2, c10). */
  list(): Promise<string[]>;
  /** Never throws for a container that exists; BUSY while another process changes it. */
  status(name: string): Promise<Status>;
  /**
   * The engine process whose life is the running container's (LXC: its init; QEMU: the emulator), or
   * undefined when none lives. No lock and no checks: the cheap probe an event watcher polls.
   */
  enginePid(name: string): number | undefined;
  start(name: string): Promise<void>;
  stop(name: string, opts?: StopOptions): Promise<void>;
  suspend(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  /** The host PID of the running container (LXC: its init; QEMU: the emulator process). */
  pid(name: string): Promise<number>;
  /** Runs a command inside the running container with the caller's stdio; resolves to its exit status. */
  exec(name: string, argv: string[]): Promise<number>;
  /** The same with the output captured, within `timeoutMs` (the daemon's exec). */
  execCapture(name: string, argv: string[], timeoutMs?: number): Promise<ExecResult>;
  /** The container's log files on the host, oldest first (they may not exist yet); read them with readUntrustedFile. */
  logFiles(name: string): Promise<LogFile[]>;
}

/** One snapshot as `info` shows it: when it was taken (ISO 8601) and the bytes it holds of its own, where known. */
export interface SnapshotDetail {
  tag: string;
  created: string | null;
  bytes: number | null;
}

/** File-system snapshots (stopped), Base Images made from them, and checkpoints of the running state. */
export interface Snapshots {
  snapshotDetails(name: string): Promise<SnapshotDetail[]>;
  saveSnapshot(name: string, tag: string): Promise<void>;
  loadSnapshot(name: string, tag: string): Promise<void>;
  removeSnapshot(name: string, tag: string): Promise<void>;
  listSnapshots(name: string): Promise<string[]>;
  commitSnapshot(name: string, tag: string, base: string): Promise<void>;
  listBases(): Promise<string[]>;
  removeBase(base: string): Promise<void>;
  checkpoint(name: string, tag: string): Promise<void>;
  restart(name: string, tag: string): Promise<void>;
  listCheckpoints(name: string): Promise<string[]>;
  removeCheckpoint(name: string, tag: string): Promise<void>;
}

/** Control groups inside the container's own group, and the limits on them. */
export interface Cgroups {
  createCgroup(name: string, cgroup: string): Promise<void>;
  destroyCgroup(name: string, cgroup: string): Promise<void>;
  bindPid(name: string, cgroup: string, pid: number): Promise<void>;
  unbindPid(name: string, cgroup: string, pid: number): Promise<void>;
  setResource(name: string, cgroup: string, r: Resource): Promise<void>;
  unsetResource(name: string, cgroup: string, r: Resource): Promise<void>;
  getResource(name: string, pid: number, type: ResourceType): Promise<Resource>;
  /** A limit on the container as a whole (its own group), beside the spec's nested Control Groups. */
  setLimit(name: string, r: Resource): Promise<void>;
  unsetLimit(name: string, r: Resource): Promise<void>;
  /** The limits on the container as a whole, and what it uses now (running or suspended containers). */
  limits(name: string): Promise<Limits>;
  usage(name: string): Promise<Usage>;
}

/** What `config` changes after create (memory in bytes; null lifts a limit). */
export interface Settings {
  /** Application containers: the limit of the whole container, or null; system containers: the guest's RAM. */
  memory: number | null;
  /** Application containers: CPUs' worth of CPU time, or null; system containers: virtual CPUs. */
  cpus: number | null;
  /** The host port forwarded to SSH (application containers), or null. */
  port: number | null;
  /** Started by the first daemon after a boot. */
  autostart: boolean;
}

/** Settings a container keeps across starts, changed after create. */
export interface Configurable {
  settings(name: string): Promise<Settings>;
  configure(name: string, changes: Partial<Settings>): Promise<void>;
}

/** One interface for both kinds: the LXC driver and the QEMU driver implement it. */
export type Driver<Config> = Lifecycle<Config> & Snapshots & Cgroups & Configurable;

/**
 * D-RE Control Groups of one container, whatever its kind: groups made inside the container's own
 * cgroup, processes moved in and out, and the limits on them, on v1, v2 and hybrid hosts alike.
 * The drivers add only their own checks (running state, VPID translation) around these calls.
 */
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  childGroups,
  delegateControllers,
  groupProcesses,
  hierarchies,
  inheritCpuset,
  isGroupDir,
  isWithin,
  moveProcess,
  pidGroups,
  readGroupFile,
  treeProcesses,
  writeGroupFile,
  type MountedHierarchy,
} from './cgroup.js';
import { RESOURCE, type Resource, type ResourceType, type Usage } from './driver.js';
import { dreError, isDreError, type DreErrName } from './errors.js';
import { withRevert } from './revert.js';
import {
  checkResourceType,
  cpuUsageNs,
  formatCpuList,
  limitsOf,
  parseCpuList,
  RESOURCE_LABEL,
  setPlan,
  unsetPlan,
  USAGE_FILES,
  type FileWrite,
  type GroupFiles,
  type LimitController,
  type Limits,
} from './limits.js';
import { checkInt, checkName, checkObject, shown } from './names.js';
import { isAlive, sleep } from './proc.js';

export type { Usage };

/** Where a container's groups are, relative to each hierarchy root. */
export interface ContainerGroupLayout {
  /** How messages name the container, e.g. "application container web". */
  owner: string;
  /** The container's own group (limits here bind the whole container): containerGroup(kind, name). */
  group: string;
  /** The leaf holding the container's processes, a child of `group` (LXC: `<group>/ns`); unbind returns processes here. */
  procsLeaf: string;
}

/** How long get(CPU) watches the group's CPU time. */
export const CPU_WINDOW_MS = 300;
/** Rounds of moving processes out of a group being destroyed (forks may land meanwhile). */
const DRAIN_ROUNDS = 20;

/** The kernel's words for a failed file operation, e.g. "EINVAL (invalid argument)". */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const words = /^\w+: ([^,]+)/.exec(err.message ?? '')?.[1];
  return err.code ? `${err.code}${words ? ` (${words})` : ''}` : String(err.message ?? e);
}

/**
 * The code for a kernel that refused to make a group (mkdir in a cgroup hierarchy): not allowed there,
 * a name too long for it, or no room for another group (the hierarchy's limits, memory).
 */
export function mkdirRefusal(e: unknown): DreErrName {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'DRE_ERR_PERMISSION_DENIED';
  if (code === 'ENAMETOOLONG') return 'DRE_ERR_REQUEST_TOO_LONG';
  return 'DRE_ERR_DEVICE_BUSY';
}

/** The CPUs this host has online (/sys/devices/system/cpu/online). */
export function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')) ?? [];
}

export class ControlGroups {
  constructor(
    readonly layout: ContainerGroupLayout,
    /** The hierarchies to work on; all of this host's by default (tests pass one to prove a single version). */
    private readonly only?: MountedHierarchy[],
  ) {}

  /** The hierarchies holding the container's group (the engine made it there), sorted; the first is the marker. */
  private managed(what: string): MountedHierarchy[] {
    const hs = (this.only ?? hierarchies()).filter((h) => isGroupDir(join(h.mount, this.layout.group)));
    if (hs.length === 0) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what}: the ${this.layout.owner} has no cgroup (${this.layout.group}); is it running?`);
    return hs;
  }

  /** The hierarchy holding `controller` among the managed ones (its v1 hierarchy, or the v2 tree when v1 lacks it). */
  private holder(hs: MountedHierarchy[], controller: string): MountedHierarchy | undefined {
    return hs.find((h) => h.controllers.includes(controller));
  }

  /** The name of the processes leaf inside the container's group ('' when processes live in the group itself). */
  private get leafName(): string {
    return this.layout.procsLeaf.slice(this.layout.group.length + 1);
  }

  private cgName(cg: unknown): string {
    const n = checkName(cg, 'cgroup name');
    if (n === this.leafName) throw dreError('DRE_ERR_INVALID_ARGUMENT', `cgroup name ${n} is reserved for the container's own processes`);
    return n;
  }

  private rel(cg: string): string {
    return `${this.layout.group}/${cg}`;
  }

  /** Marker-based existence: create makes the marker hierarchy's directory last, destroy removes it last. */
  private exists(hs: MountedHierarchy[], cg: string): boolean {
    return isGroupDir(join(hs[0].mount, this.rel(cg)));
  }

  private requireGroup(what: string, cg: unknown): { name: string; hs: MountedHierarchy[] } {
    const name = this.cgName(cg);
    const hs = this.managed(what);
    if (!this.exists(hs, name)) throw dreError('DRE_ERR_CGROUP_NONEXISTENCE', `${what}: the ${this.layout.owner} has no control group ${name}`);
    return { name, hs };
  }

  /** The groups holding a live `pid`, checked to lie inside the container's group; else PID_NONEXISTENCE. */
  private groupsOf(what: string, pid: unknown, hs: MountedHierarchy[]): Map<string, string> {
    const p = checkInt(pid, 'pid', 1, 2 ** 31 - 1);
    const groups = isAlive(p) ? pidGroups(p) : undefined;
    if (!groups) throw dreError('DRE_ERR_PID_NONEXISTENCE', `${what}: no process ${p}`);
    if (!hs.every((h) => isWithin(groups.get(h.mount), this.layout.group))) {
      throw dreError('DRE_ERR_PID_NONEXISTENCE', `${what}: process ${p} is not a process of the ${this.layout.owner}`);
    }
    return groups;
  }

  /** True when `pid` is a live process inside the container's group. */
  holds(pid: number): boolean {
    try {
      this.groupsOf('check', pid, this.managed('check'));
      return true;
    } catch {
      return false;
    }
  }

  /** Host PIDs of every process in the container's group tree. */
  processes(): number[] {
    return treeProcesses(join(this.managed('list processes of')[0].mount, this.layout.group));
  }

  /** Names of the container's control groups. */
  list(): string[] {
    const hs = this.managed('list cgroups of');
    return childGroups(join(hs[0].mount, this.layout.group))
      .sort()
      .filter((n) => n !== this.leafName);
  }

  create(cg: unknown): void {
    const what = `create cgroup ${shown(cg)} in ${this.layout.owner}`;
    const name = this.cgName(cg);
    const hs = this.managed(what);
    if (this.exists(hs, name)) throw dreError('DRE_ERR_CGROUP_EXISTENCE', `${what}: it exists already`);
    withRevert((revert) => {
      try {
        // The marker's directory comes last: a killed create is never seen as a made group.
        for (const h of [...hs.slice(1), hs[0]]) {
          const dir = join(h.mount, this.rel(name));
          delegateControllers(h, this.layout.group);
          try {
            mkdirSync(dir);
            revert.add(() => tryRmdir(dir));
          } catch (e) {
            // Left by a killed create or destroy: an empty group is reused.
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || h === hs[0]) throw e;
          }
          inheritCpuset(h, dir);
        }
      } catch (e) {
        throw dreError(mkdirRefusal(e), `${what}: the kernel refused: ${errnoText(e)}`, e);
      }
    });
  }

  destroy(cg: unknown): void {
    const what = `destroy cgroup ${shown(cg)} in ${this.layout.owner}`;
    const { name, hs } = this.requireGroup(what, cg);
    for (const h of hs) {
      const dir = join(h.mount, this.rel(name));
      const back = join(h.mount, this.layout.procsLeaf);
      for (let round = 0; ; round++) {
        const pids = groupProcesses(dir);
        if (pids.length === 0) break;
        if (round === DRAIN_ROUNDS) throw dreError('DRE_ERR_DESTROY_CGROUP_FAILED', `${what}: processes keep arriving in it (${pids.join(' ')})`);
        for (const p of pids) {
          try {
            moveProcess(back, p);
          } catch (e) {
            if (isAlive(p)) throw dreError('DRE_ERR_DESTROY_CGROUP_FAILED', `${what}: could not move process ${p} back: ${errnoText(e)}`, e);
          }
        }
      }
    }
    // The marker goes last: a destroy stopped half-way still shows the group, so it can be retried.
    for (const h of [...hs.slice(1), hs[0]]) {
      try {
        rmdirSync(join(h.mount, this.rel(name)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw dreError('DRE_ERR_DESTROY_CGROUP_FAILED', `${what}: the kernel refused to remove it from ${h.mount}: ${errnoText(e)}`, e);
      }
    }
  }

  /** Moves a process of the container (host PID) into the control group, in every hierarchy. */
  bind(cg: unknown, pid: number): void {
    const what = `bind process ${shown(pid)} to cgroup ${shown(cg)} in ${this.layout.owner}`;
    const { name, hs } = this.requireGroup(what, cg);
    const before = this.groupsOf(what, pid, hs);
    this.moveEverywhere(what, hs, pid, this.rel(name), before);
  }

  /** Moves a process of the control group back into the container's processes leaf. */
  unbind(cg: unknown, pid: number): void {
    const what = `unbind process ${shown(pid)} from cgroup ${shown(cg)} in ${this.layout.owner}`;
    const { name, hs } = this.requireGroup(what, cg);
    const before = this.groupsOf(what, pid, hs);
    if (!isWithin(before.get(hs[0].mount), this.rel(name))) throw dreError('DRE_ERR_PID_NONEXISTENCE', `${what}: process ${pid} is not in that control group`);
    this.moveEverywhere(what, hs, pid, this.layout.procsLeaf, before);
  }

  /** Writes `pid` into `rel` in each hierarchy; on a refusal, puts it back where it was and fails with BIND_FAILED. */
  private moveEverywhere(what: string, hs: MountedHierarchy[], pid: number, rel: string, before: Map<string, string>): void {
    const moved: MountedHierarchy[] = [];
    for (const h of hs) {
      try {
        moveProcess(join(h.mount, rel), pid);
        moved.push(h);
      } catch (e) {
        for (const m of moved) tryMove(join(m.mount, before.get(m.mount) ?? ''), pid);
        const code: DreErrName = isAlive(pid) ? 'DRE_ERR_BIND_FAILED' : 'DRE_ERR_PID_NONEXISTENCE';
        throw dreError(code, `${what}: the kernel refused the move in ${h.mount}: ${errnoText(e)}`, e);
      }
    }
  }

  /** The group's files as a limit plan sees them. */
  private files(hs: MountedHierarchy[], rel: string): GroupFiles {
    const at = (c: LimitController) => this.holder(hs, c);
    return {
      version: (c) => at(c)?.version,
      read: (c, file) => {
        const h = at(c);
        return h ? readOr(join(h.mount, rel), file) : undefined;
      },
      readParent: (c, file) => {
        const h = at(c);
        return h ? readOr(join(h.mount, rel, '..'), file) : undefined;
      },
    };
  }

  /** Applies writes in order; on a kernel refusal restores what was written and fails with `code`. */
  private apply(what: string, hs: MountedHierarchy[], rel: string, writes: FileWrite[], code: DreErrName): void {
    withRevert((revert) => {
      for (const w of writes) {
        const dir = join(this.holder(hs, w.controller)!.mount, rel);
        try {
          const old = readGroupFile(dir, w.file);
          writeGroupFile(dir, w.file, `${w.value}\n`);
          revert.add(() => writeGroupFile(dir, w.file, `${old}\n`));
        } catch (e) {
          throw dreError(code, `${what}: the kernel refused ${w.file} = ${JSON.stringify(w.value)}: ${errnoText(e)}`, e);
        }
      }
    });
  }

  set(cg: unknown, r: Resource): void {
    const what = `set ${RESOURCE_LABEL[r?.type] ?? 'resource'} on cgroup ${shown(cg)} in ${this.layout.owner}`;
    const { name, hs } = this.requireGroup(what, cg);
    this.setAt(what, hs, this.rel(name), r);
  }

  unset(cg: unknown, r: Resource | ResourceType): void {
    const type = typeof r === 'object' && r !== null ? r.type : r;
    const what = `unset ${RESOURCE_LABEL[type as ResourceType] ?? 'resource'} on cgroup ${shown(cg)} in ${this.layout.owner}`;
    const { name, hs } = this.requireGroup(what, cg);
    this.unsetAt(what, hs, this.rel(name), type as ResourceType);
  }

  /** A limit on the container as a whole: its own group, which holds every process and Control Group of it. */
  setOwn(r: Resource): void {
    const what = `set ${RESOURCE_LABEL[r?.type] ?? 'resource'} on the ${this.layout.owner}`;
    this.setAt(what, this.managed(what), this.layout.group, r);
  }

  unsetOwn(r: Resource | ResourceType): void {
    const type = typeof r === 'object' && r !== null ? r.type : r;
    const what = `unset ${RESOURCE_LABEL[type as ResourceType] ?? 'resource'} on the ${this.layout.owner}`;
    this.unsetAt(what, this.managed(what), this.layout.group, type as ResourceType);
  }

  /** The limits on the container as a whole. */
  ownLimits(): Limits {
    return limitsOf(this.files(this.managed(`read the limits of the ${this.layout.owner}`), this.layout.group));
  }

  /** What the container as a whole uses: CPU % of one CPU over `windowMs`, and memory in bytes (its own group's accounting). */
  async ownUsage(windowMs = CPU_WINDOW_MS): Promise<Usage> {
    const what = `read the usage of the ${this.layout.owner}`;
    const hs = this.managed(what);
    const cpuH = this.holder(hs, USAGE_FILES.v1.cpu.controller) ?? hs.find((h) => h.version === 2);
    const memH = this.holder(hs, 'memory');
    const at = (h: MountedHierarchy) => join(h.mount, this.layout.group);
    const sample = () => (cpuH ? cpuUsageNs(cpuH.version, readGroupFile(at(cpuH), (cpuH.version === 1 ? USAGE_FILES.v1 : USAGE_FILES.v2).cpu.file)) : 0);
    try {
      const t0 = process.hrtime.bigint();
      const u0 = sample();
      await sleep(windowMs);
      const u1 = sample();
      const elapsed = Number(process.hrtime.bigint() - t0);
      const memory = memH ? Number(readGroupFile(at(memH), (memH.version === 1 ? USAGE_FILES.v1 : USAGE_FILES.v2).memory.file)) : null;
      return { cpuPercent: cpuH ? Math.round(((u1 - u0) / elapsed) * 1000) / 10 : null, memory };
    } catch (e) {
      throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what}: its cgroup went away (${errnoText(e)}); did it stop?`, e);
    }
  }

  private setAt(what: string, hs: MountedHierarchy[], rel: string, r: Resource): void {
    const writes = withContext(what, () => setPlan(checkObject(r, 'resource'), this.files(hs, rel), onlineCpus()));
    this.apply(what, hs, rel, writes, 'DRE_ERR_SET_LIMIT_FAILED');
  }

  private unsetAt(what: string, hs: MountedHierarchy[], rel: string, type: ResourceType): void {
    const writes = withContext(what, () => unsetPlan(type, this.files(hs, rel)));
    this.apply(what, hs, rel, writes, 'DRE_ERR_UNSET_LIMIT_FAILED');
  }

  /**
   * What the kernel measures for the group that holds `pid` (it must be a process of the container):
   * CPU % over `windowMs`, the cores it may run on, memory and memory+swap in bytes.
   */
  async get(pid: number, type: ResourceType, windowMs = CPU_WINDOW_MS): Promise<Resource> {
    const what = `get ${RESOURCE_LABEL[type] ?? 'resource'} of process ${shown(pid)} in ${this.layout.owner}`;
    const t = withContext(what, () => checkResourceType(type));
    const hs = this.managed(what);
    const groups = this.groupsOf(what, pid, hs);
    const key = USAGE_KEY[t];
    // v1: the controller's own hierarchy; v2: the unified tree (cpu.stat is there even without the cpu controller).
    const h =
      this.holder(hs, USAGE_FILES.v1[key].controller) ??
      this.holder(hs, USAGE_FILES.v2[key].controller) ??
      (t === RESOURCE.CPU ? hs.find((x) => x.version === 2) : undefined);
    const dir = h && join(h.mount, groups.get(h.mount) ?? '');
    const files = h?.version === 1 ? USAGE_FILES.v1[key] : USAGE_FILES.v2[key];
    try {
      // Where no cpuset controller covers the group, the CPUs the process may use are its affinity.
      if (t === RESOURCE.CPU_CORE) return { type: t, cores: (dir && readOr(dir, files.file)) || allowedCpus(pid) };
      if (!h || !dir) throw new Error(`no ${key === 'cpu' ? 'CPU accounting' : 'memory controller'} on this host`);
      if (t === RESOURCE.CPU) {
        const sample = () => cpuUsageNs(h.version, readGroupFile(dir, files.file));
        const t0 = process.hrtime.bigint();
        const u0 = sample();
        await sleep(windowMs);
        const u1 = sample();
        const elapsed = Number(process.hrtime.bigint() - t0);
        return { type: t, percent: Math.round(((u1 - u0) / elapsed) * 1000) / 10 };
      }
      const memory = Number(readGroupFile(dir, (h.version === 1 ? USAGE_FILES.v1 : USAGE_FILES.v2).memory.file));
      if (t === RESOURCE.MEMORY) return { type: t, bytes: memory };
      // Without swap accounting there is no swap to add: memory+swap is memory.
      const swapText = readOr(dir, files.file);
      if (h.version === 1) return { type: t, bytes: swapText === undefined ? memory : Number(swapText) };
      return { type: t, bytes: memory + Number(swapText ?? 0) };
    } catch (e) {
      if (!isAlive(pid)) throw dreError('DRE_ERR_PID_NONEXISTENCE', `${what}: process ${pid} ended`);
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the kernel's files could not be read: ${errnoText(e)}`, e);
    }
  }
}

const USAGE_KEY = { [RESOURCE.CPU]: 'cpu', [RESOURCE.CPU_CORE]: 'cores', [RESOURCE.MEMORY]: 'memory', [RESOURCE.MEMSW]: 'memsw' } as const;

/** Runs a check and puts the operation in front of its error message. */
function withContext<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isDreError(e)) throw dreError(e.errName, `${what}: ${e.message}`, e.cause);
    throw e;
  }
}

function allowedCpus(pid: number): string {
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1].trim() : formatCpuList(onlineCpus());
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* best effort */
  }
}

function tryMove(dir: string, pid: number): void {
  try {
    moveProcess(dir, pid);
  } catch {
    /* best effort */
  }
}

function readOr(dir: string, file: string): string | undefined {
  try {
    return readGroupFile(dir, file);
  } catch {
    return undefined;
  }
}

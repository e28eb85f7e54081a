import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSmallFile } from './smallfile.js';

/**
 * Where each cgroup controller lives on this host: a v1 hierarchy of its own, or the v2 unified tree.
 * Hybrid hosts (v1 for cpu/memory, v2 mounted but empty) are the common case here.
 */
export interface Hierarchy {
  version: 1 | 2;
  /** Mount point of the hierarchy that holds the controller. */
  mount: string;
}

/** One mounted hierarchy and the controllers it holds (v1: its mount options; v2: those not taken by v1). */
export interface MountedHierarchy extends Hierarchy {
  controllers: string[];
}

let detected: { byController: Map<string, Hierarchy>; mounted: MountedHierarchy[] } | undefined;

/** Reads /proc/self/mountinfo once: every hierarchy, and controller name → hierarchy. */
function detect(): NonNullable<typeof detected> {
  if (detected) return detected;
  const byController = new Map<string, Hierarchy>();
  const mounted: MountedHierarchy[] = [];
  let v2Mount: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const mountPoint = line.split(' ')[4];
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup2') v2Mount ??= mountPoint;
    if (fstype !== 'cgroup' || mounted.some((h) => h.mount === mountPoint)) continue;
    const names = superOpts
      .split(',')
      .filter((o) => !['rw', 'ro', 'clone_children', 'noprefix', 'xattr', 'none'].includes(o) && !o.startsWith('release_agent'));
    const fresh = names.filter((c) => !byController.has(c));
    // The same hierarchy mounted twice shows the same controllers: keep the first mount only.
    if (fresh.length === 0) continue;
    mounted.push({ version: 1, mount: mountPoint, controllers: fresh });
    for (const c of fresh) byController.set(c, { version: 1, mount: mountPoint });
  }
  if (v2Mount) {
    let available: string[] = [];
    try {
      available = readFileSync(join(v2Mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      /* no controllers file: nothing on v2 */
    }
    const mine = available.filter((c) => !byController.has(c));
    for (const c of mine) byController.set(c, { version: 2, mount: v2Mount });
    // The freezer of v2 is a core file (cgroup.freeze), not a listed controller.
    if (!byController.has('freezer')) byController.set('freezer', { version: 2, mount: v2Mount });
    mounted.push({ version: 2, mount: v2Mount, controllers: mine });
  }
  detected = { byController, mounted };
  return detected;
}

/** Controller name → the hierarchy that holds it on this host. */
export function controllers(): Map<string, Hierarchy> {
  return detect().byController;
}

/** Every mounted hierarchy (each v1 one and the v2 one, even when v2 holds no controller), sorted by mount. */
export function hierarchies(): MountedHierarchy[] {
  return [...detect().mounted].sort((a, b) => a.mount.localeCompare(b.mount));
}

/** The directory of group `rel` (a path relative to the hierarchy root) for `controller`, or undefined. */
export function groupDir(controller: string, rel: string): string | undefined {
  const h = controllers().get(controller);
  return h ? join(h.mount, rel) : undefined;
}

/** Every distinct hierarchy mount (each v1 one and the v2 one), for creating and removing groups everywhere. */
export function allHierarchyMounts(): string[] {
  return hierarchies().map((h) => h.mount);
}

export function readGroupFile(dir: string, file: string): string {
  return readSmallFile(join(dir, file)).trim();
}

export function writeGroupFile(dir: string, file: string, value: string): void {
  writeFileSync(join(dir, file), value);
}

/** True when `dir` is a group directory (a file of the same name is not a group). */
export function isGroupDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The processes (thread-group ids) directly in a group; none when it is gone. */
export function groupProcesses(dir: string): number[] {
  try {
    return readGroupFile(dir, 'cgroup.procs').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The processes in a group and every group below it. */
export function treeProcesses(dir: string): number[] {
  const pids = groupProcesses(dir);
  for (const c of childGroups(dir)) pids.push(...treeProcesses(join(dir, c)));
  return pids;
}

/** The names of the child groups of the group at `dir`; [] when it is gone. */
export function childGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Moves a whole process (all its threads) into the group at `dir`. */
export function moveProcess(dir: string, pid: number): void {
  writeGroupFile(dir, 'cgroup.procs', `${pid}\n`);
}

/**
 * Which group holds `pid` in each hierarchy (mount → path relative to its root, '' for the root), from
 * /proc/PID/cgroup; undefined when the process is gone.
 */
export function pidGroups(pid: number): Map<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const byController = controllers();
  const v2 = hierarchies().find((h) => h.version === 2);
  const groups = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const rel = m[3].replace(/^\/+/, '');
    if (m[1] === '0' && m[2] === '') {
      if (v2) groups.set(v2.mount, rel);
      continue;
    }
    const h = m[2]
      .split(',')
      .map((c) => byController.get(c))
      .find((x) => x?.version === 1);
    if (h) groups.set(h.mount, rel);
  }
  return groups;
}

/** True when group `rel` is `group` itself or a group below it. */
export function isWithin(rel: string | undefined, group: string): boolean {
  return rel !== undefined && (rel === group || rel.startsWith(`${group}/`));
}

/** Controllers D-RE limits; on v2 they must be enabled in every parent's cgroup.subtree_control. */
export const LIMIT_CONTROLLERS = ['cpu', 'cpuset', 'memory'] as const;

/** The cgroup.subtree_control line enabling `missing` controllers (v2: "+cpu +memory"). */
export function subtreeControlLine(missing: readonly string[]): string {
  return missing.map((c) => `+${c}`).join(' ');
}

/**
 * v2: enables the limit controllers this hierarchy holds in the subtree_control of every group from
 * the root down to `rel` inclusive, so that groups made inside `rel` get their files.
 */
export function delegateControllers(h: MountedHierarchy, rel: string): void {
  if (h.version !== 2) return;
  const wanted = LIMIT_CONTROLLERS.filter((c) => h.controllers.includes(c));
  if (wanted.length === 0) return;
  const parts = rel.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = join(h.mount, ...parts.slice(0, i));
    const enabled = readGroupFile(dir, 'cgroup.subtree_control').split(/\s+/);
    const missing = wanted.filter((c) => !enabled.includes(c));
    if (missing.length > 0) writeGroupFile(dir, 'cgroup.subtree_control', `${subtreeControlLine(missing)}\n`);
  }
}

/**
 * v1 cpuset: a new group starts with no CPUs and no memory nodes (no process may join it): copy its
 * parent's, and set `cgroup.clone_children`, so that a group another program makes below it (LXC, for
 * a container's groups) gets them from the kernel. Without the flag, LXC's group below a parent D-RE
 * made had none: "No space left on device - Failed to enter cgroup".
 */
export function inheritCpuset(h: MountedHierarchy, dir: string): void {
  if (h.version !== 1 || !h.controllers.includes('cpuset')) return;
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readGroupFile(dir, file) === '') writeGroupFile(dir, file, `${readGroupFile(join(dir, '..'), file)}\n`);
  }
  if (readGroupFile(dir, 'cgroup.clone_children') !== '1') writeGroupFile(dir, 'cgroup.clone_children', '1\n');
}

/**
 * Readies the v1 cpuset groups on the way to `rel` (made where missing, inheritCpuset on each), for
 * an engine that makes its own groups below `rel`. Also heals a root whose groups an older D-RE made
 * without `cgroup.clone_children`. Three stats and nine small reads when all is in place.
 */
export function readyCpusetPath(rel: string): void {
  const h = hierarchies().find((m) => m.version === 1 && m.controllers.includes('cpuset'));
  if (!h) return;
  makeGroup(h, rel);
  const parts = rel.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) inheritCpuset(h, join(h.mount, ...parts.slice(0, i)));
}

/**
 * Makes group `rel` in hierarchy `h`, and its missing parents, ready for processes: v1 cpusets get their
 * parent's CPUs and nodes, v2 parents delegate the limit controllers. Returns false when it existed.
 */
export function makeGroup(h: MountedHierarchy, rel: string): boolean {
  const parts = rel.split('/').filter(Boolean);
  let made = false;
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const dir = join(h.mount, sub);
    if (isGroupDir(dir)) continue;
    if (i > 1) delegateControllers(h, parts.slice(0, i - 1).join('/'));
    try {
      mkdirSync(dir);
      made = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    inheritCpuset(h, dir);
  }
  return made;
}

/**
 * Puts process `pid` into group `rel` in every hierarchy, making the group where missing: how a
 * container kind whose engine does not place its processes itself (QEMU) gets its own group.
 */
export function placeProcess(rel: string, pid: number): void {
  for (const h of hierarchies()) {
    makeGroup(h, rel);
    moveProcess(join(h.mount, rel), pid);
  }
}

/** Removes a group and its empty children, deepest first; missing ones are fine. */
export function removeGroupTree(dir: string): void {
  if (!existsSync(dir)) return; // the usual case (a create clearing what a killed destroy may have left): no exception to make
  for (const e of childGroups(dir)) removeGroupTree(join(dir, e));
  try {
    rmdirSync(dir);
  } catch {
    /* gone already, or still busy: the caller checks what matters */
  }
}

/** Freezer state of a group: 'FROZEN', 'FREEZING' or 'THAWED' (v2 reports only frozen or thawed). */
export function freezerState(rel: string): 'FROZEN' | 'FREEZING' | 'THAWED' | undefined {
  const h = controllers().get('freezer');
  if (!h) return undefined;
  const dir = join(h.mount, rel);
  try {
    if (h.version === 1) return readGroupFile(dir, 'freezer.state') as 'FROZEN' | 'FREEZING' | 'THAWED';
    const events = readGroupFile(dir, 'cgroup.events');
    if (/^frozen 1$/m.test(events)) return 'FROZEN';
    return readGroupFile(dir, 'cgroup.freeze') === '1' ? 'FREEZING' : 'THAWED';
  } catch {
    return undefined;
  }
}

/** Asks the kernel to freeze (true) or thaw (false) a group; completion is seen through freezerState. */
export function setFrozen(rel: string, frozen: boolean): void {
  const h = controllers().get('freezer');
  if (!h) throw new Error('no freezer controller on this host');
  const dir = join(h.mount, rel);
  if (h.version === 1) writeGroupFile(dir, 'freezer.state', frozen ? 'FROZEN' : 'THAWED');
  else writeGroupFile(dir, 'cgroup.freeze', frozen ? '1' : '0');
}

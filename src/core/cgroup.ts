import { readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where each cgroup controller lives on this host: a v1 hierarchy of its own, or the v2 unified tree.
 * Hybrid hosts (v1 for cpu/memory, v2 mounted but empty) are the common case here.
 */
export interface Hierarchy {
  version: 1 | 2;
  /** Mount point of the hierarchy that holds the controller. */
  mount: string;
}

let hierarchies: Map<string, Hierarchy> | undefined;

/** Reads /proc/self/mountinfo once: controller name → hierarchy. */
export function controllers(): Map<string, Hierarchy> {
  if (hierarchies) return hierarchies;
  const map = new Map<string, Hierarchy>();
  let v2Mount: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const mountPoint = line.split(' ')[4];
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup2') v2Mount ??= mountPoint;
    if (fstype !== 'cgroup') continue;
    for (const opt of superOpts.split(',')) {
      if (['rw', 'ro'].includes(opt) || opt.startsWith('release_agent') || opt === 'clone_children') continue;
      if (!map.has(opt)) map.set(opt, { version: 1, mount: mountPoint });
    }
  }
  if (v2Mount) {
    let available: string[] = [];
    try {
      available = readFileSync(join(v2Mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      /* no controllers file: nothing on v2 */
    }
    for (const c of available) if (!map.has(c)) map.set(c, { version: 2, mount: v2Mount });
    // The freezer of v2 is a core file (cgroup.freeze), not a listed controller.
    if (!map.has('freezer')) map.set('freezer', { version: 2, mount: v2Mount });
  }
  hierarchies = map;
  return map;
}

/** The directory of group `rel` (a path relative to the hierarchy root) for `controller`, or undefined. */
export function groupDir(controller: string, rel: string): string | undefined {
  const h = controllers().get(controller);
  return h ? join(h.mount, rel) : undefined;
}

/** Every distinct hierarchy mount (each v1 one and the v2 one), for creating and removing groups everywhere. */
export function allHierarchyMounts(): string[] {
  return [...new Set([...controllers().values()].map((h) => h.mount))];
}

export function readGroupFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

export function writeGroupFile(dir: string, file: string, value: string): void {
  writeFileSync(join(dir, file), value);
}

/** Removes a group and its empty children, deepest first; missing ones are fine. */
export function removeGroupTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return;
  }
  for (const e of entries) removeGroupTree(join(dir, e));
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

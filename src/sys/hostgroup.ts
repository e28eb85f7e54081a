import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts, placeProcess } from '../core/cgroup.js';
import { removeContainerGroups } from '../core/operation.js';
import { sleep } from '../core/proc.js';
import { containerCgroup } from './layout.js';

// The host cgroup around a container's QEMU process and all its threads, in every hierarchy.

/**
 * Removes the container's cgroups, waiting (bounded) while the kernel still counts an exited QEMU in
 * them (PID 1 reaps lazily here); what is left then is cleared by the next create of that name.
 */
export async function removeCgroupsSettled(name: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    removeCgroups(name);
    if (!allHierarchyMounts().some((m) => existsSync(join(m, containerCgroup(name))))) return;
    await sleep(20);
  }
}

/** Removes the container's cgroups in every hierarchy. */
export const removeCgroups = (name: string): void => removeContainerGroups(containerCgroup(name));

/** Puts every thread of `pid` into the container's group in each hierarchy (cgroup.procs moves the whole process). */
export function enterCgroups(name: string, pid: number): void {
  placeProcess(containerCgroup(name), pid);
}

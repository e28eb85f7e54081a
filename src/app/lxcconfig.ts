import {
  lxcPath,
  lxcConfigPath,
  containerCgroup,
  containerProcsCgroup,
  upperDir,
  type AppRecord,
  consoleLogPath,
  layerDir,
  isPrivileged,
  portHookMarkPath,
} from './layout.js';
import { hierarchies } from '../core/cgroup.js';
import { rootIdRange, type IdRange } from './userns.js';
import { baseLowers } from './base.js';
import { writeFileAtomic, writeIfChanged } from '../core/store.js';
import { join } from 'node:path';
import { dawareMountEntries } from './dawareruntime.js';
import { notifyConfigLines } from './notifydir.js';
import { lxcNetLines } from './network.js';
import { initLines, initSystem } from './init.js';
import { portHookLines } from './portforward.js';

/**
 * The read-only layers under the container's upper layer, topmost first (overlayfs `lowerdir` order:
 * the leftmost wins): the layers its snapshots froze, then its Base Image's layers.
 */
export function lowerDirs(rec: AppRecord): string[] {
  return [...(rec.layers ?? []).map((id) => layerDir(rec.name, id)), ...baseLowers(rec.base)];
}

/** LXC's defaults (Debian's lxc package): capabilities dropped (sys_rawio too), the devices allow-list, common.seccomp. */
export const LXC_COMMON_CONF = '/usr/share/lxc/config/common.conf';

/** The id range a container maps its root to; null for a privileged container. */
export function containerIdRange(rec: AppRecord): IdRange | null {
  return isPrivileged(rec) ? null : rootIdRange();
}

/**
 * cgroup v1 lets a process join any group whose cgroup.procs it may write, and LXC gives the container's
 * root the `ns` leaf it delegates; so a process bound to one of the container's Control Groups could
 * walk back to `ns` and out of its limits. This start-host hook (run after LXC's chown, before init)
 * takes the leaf back in every v1 hierarchy with controllers; name=systemd and cgroup v2 stay delegated
 * (v2 checks the common ancestor, which the container cannot write).
 */
function cgroupConfineHook(name: string): string[] {
  const leaves = hierarchies()
    .filter((h) => h.version === 1 && h.controllers.some((c) => !c.startsWith('name='))) // name=systemd holds no resources
    .map((h) => join(h.mount, containerProcsCgroup(name)));
  if (leaves.length === 0) return [];
  if (leaves.some((l) => /[^\w./,=+-]/.test(l))) throw new Error(`a cgroup path LXC's hook line cannot carry: ${leaves.join(' ')}`);
  // Ownership alone takes the leaf back (host root's group cannot help the container's ids). Hook version 1
  // passes LXC's arguments in the environment, so chown runs directly: no shell (≈ 2 ms of every start).
  return ['lxc.hook.version = 1', `lxc.hook.start-host = /bin/chown -R 0:0 ${leaves.join(' ')}`];
}

/** The user namespace lines: the root's id range, and the cgroup leaves taken back. */
function usernsLines(rec: AppRecord, range: IdRange | null): string[] {
  if (!range) return ["# Privileged: no user namespace; the container's root is the host's root."];
  return [
    // overlayfs mounted in a user namespace cannot write trusted.* xattrs (opaque directories): user.* instead.
    'lxc.rootfs.options = userxattr',
    `lxc.idmap = u 0 ${range.uid} ${range.count}`,
    `lxc.idmap = g 0 ${range.gid} ${range.count}`,
    ...cgroupConfineHook(rec.name),
  ];
}

/** The container's configured limits (config set memory/cpus) as LXC keys on its group, in the hierarchy each controller is on. */
function limitLines(rec: AppRecord): string[] {
  const version = (c: string) => hierarchies().find((h) => h.controllers.includes(c))?.version;
  const lines: string[] = [];
  if (rec.memory) lines.push(version('memory') === 2 ? `lxc.cgroup2.memory.max = ${rec.memory}` : `lxc.cgroup.memory.limit_in_bytes = ${rec.memory}`);
  if (rec.cpus) {
    const quota = rec.cpus * CPU_PERIOD_US;
    lines.push(
      ...(version('cpu') === 2
        ? [`lxc.cgroup2.cpu.max = ${quota} ${CPU_PERIOD_US}`]
        : [`lxc.cgroup.cpu.cfs_period_us = ${CPU_PERIOD_US}`, `lxc.cgroup.cpu.cfs_quota_us = ${quota}`]),
    );
  }
  return lines;
}

const CPU_PERIOD_US = 100_000;

/** LXC's config for a container: LXC's defaults, overlay root, user namespace, its init's halt signal, cgroups under this root's. */
export function renderLxcConfig(rec: AppRecord): string {
  const rootfs = `overlay:${[...lowerDirs(rec), upperDir(rec.name)].join(':')}`;
  return [
    '# Written by D-RE; edits are overwritten.',
    `lxc.include = ${LXC_COMMON_CONF}`,
    `lxc.uts.name = ${rec.name}`,
    `lxc.rootfs.path = ${rootfs}`,
    `lxc.rootfs.mount = ${join(lxcPath(), rec.name, 'rootfs')}`,
    ...usernsLines(rec, containerIdRange(rec)),
    ...initLines(initSystem([upperDir(rec.name), ...lowerDirs(rec)])),
    'lxc.mount.auto = proc:mixed sys:ro cgroup:mixed',
    'lxc.autodev = 1',
    // Consoles straight in /dev (common.conf's /dev/lxc cannot be used from a user namespace).
    'lxc.tty.dir =',
    'lxc.tty.max = 1',
    'lxc.pty.max = 16',
    `lxc.console.logfile = ${consoleLogPath(rec.name)}`,
    ...lxcNetLines(rec.address),
    ...portHookLines(rec.address, rec.port, portHookMarkPath(rec.name)),
    `lxc.cgroup.dir.container = ${containerCgroup(rec.name)}`,
    `lxc.cgroup.dir.monitor = ${containerCgroup(rec.name)}.monitor`,
    'lxc.cgroup.dir.container.inner = ns',
    ...limitLines(rec),
    ...dawareMountEntries(rec.name),
    ...notifyConfigLines(rec.name),
    '',
  ].join('\n');
}

export function writeLxcConfig(rec: AppRecord): void {
  writeFileAtomic(lxcConfigPath(rec.name), renderLxcConfig(rec), 0o644);
}

/** Re-renders LXC's config from the record when they differ (the record is the truth; a killed operation may have left them apart). */
export function syncLxcConfig(rec: AppRecord): void {
  writeIfChanged(lxcConfigPath(rec.name), renderLxcConfig(rec), 0o644);
}

import { lxcPath, containerCgroup, upperDir, type AppRecord, consoleLogPath } from './layout.js';
import { baseRootfs } from './base.js';
import { writeFileAtomic } from '../core/store.js';
import { join } from 'node:path';
import { dawareMountEntries } from './dawareruntime.js';
import { lxcNetLines } from './network.js';

/**
 * The read-only layers under the container's upper layer, topmost first (overlayfs `lowerdir` order).
 * Today: the Base Image's root file system.
 */
export function lowerDirs(rec: AppRecord): string[] {
  return [baseRootfs(rec.base)];
}

/** LXC's config for a container: overlay root, busybox-friendly halt signal, cgroups under this root's parent. */
export function renderLxcConfig(rec: AppRecord): string {
  const rootfs = `overlay:${[...lowerDirs(rec), upperDir(rec.name)].join(':')}`;
  return [
    '# Written by D-RE; edits are overwritten.',
    `lxc.uts.name = ${rec.name}`,
    `lxc.rootfs.path = ${rootfs}`,
    `lxc.rootfs.mount = ${join(lxcPath(), rec.name, 'rootfs')}`,
    'lxc.init.cmd = /sbin/init',
    // busybox init halts on SIGUSR1 (it ignores SIGPWR, LXC's default).
    'lxc.signal.halt = SIGUSR1',
    'lxc.mount.auto = proc:mixed sys:ro cgroup:mixed',
    'lxc.autodev = 1',
    'lxc.tty.max = 1',
    'lxc.pty.max = 16',
    `lxc.console.logfile = ${consoleLogPath(rec.name)}`,
    'lxc.cap.drop = sys_module mac_admin mac_override sys_time',
    ...lxcNetLines(rec.address),
    `lxc.cgroup.dir.container = ${containerCgroup(rec.name)}`,
    `lxc.cgroup.dir.monitor = ${containerCgroup(rec.name)}.monitor`,
    'lxc.cgroup.dir.container.inner = ns',
    ...dawareMountEntries(rec.name),
    '',
  ].join('\n');
}

export function writeLxcConfig(rec: AppRecord): void {
  writeFileAtomic(join(lxcPath(), rec.name, 'config'), renderLxcConfig(rec), 0o644);
}

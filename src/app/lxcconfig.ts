import { lxcPath, lxcConfigPath, containerCgroup, upperDir, type AppRecord, consoleLogPath, layerDir } from './layout.js';
import { baseLowers } from './base.js';
import { writeFileAtomic, writeIfChanged } from '../core/store.js';
import { join } from 'node:path';
import { dawareMountEntries } from './dawareruntime.js';
import { lxcNetLines } from './network.js';

/**
 * The read-only layers under the container's upper layer, topmost first (overlayfs `lowerdir` order:
 * the leftmost wins): the layers its snapshots froze, then its Base Image's layers.
 */
export function lowerDirs(rec: AppRecord): string[] {
  return [...(rec.layers ?? []).map((id) => layerDir(rec.name, id)), ...baseLowers(rec.base)];
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
  writeFileAtomic(lxcConfigPath(rec.name), renderLxcConfig(rec), 0o644);
}

/** Re-renders LXC's config from the record when they differ (the record is the truth; a killed operation may have left them apart). */
export function syncLxcConfig(rec: AppRecord): void {
  writeIfChanged(lxcConfigPath(rec.name), renderLxcConfig(rec), 0o644);
}

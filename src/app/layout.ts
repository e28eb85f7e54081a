import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { containerDir, containerGroup, containerRecordPath, containerRunDir, containersDir } from '../core/paths.js';
import { appRecordCheck, readRecordOr } from '../core/records.js';

/** What D-RE keeps of an application container (dre.json beside LXC's config). */
export interface AppRecord {
  name: string;
  /** The Base Image the container stands on; 'default' for the busybox base. */
  base: string;
  /** SSH port on the host (dre_app_data.udata.lxc.port), or null. */
  port: number | null;
  /** Static IPv4 address on this root's bridge (network.ts); null or absent: loopback only. */
  address?: string | null;
  created: string;
  /**
   * true: no user namespace (container root is host root; `--privileged`). false: unprivileged, the
   * root's id range (userns.ts). Absent in records made before D-RE had user namespaces: privileged.
   */
  privileged?: boolean;
  /** The container's own read-only layers (ids under layers/), topmost first, between its upper and its base; absent: none. */
  layers?: string[];
  /** Memory limit of the whole container in bytes, set at each start (config set); absent or null: none. */
  memory?: number | null;
  /** CPUs' worth of CPU time the container may use (a CFS quota of cpus × 100 %); absent or null: no limit. */
  cpus?: number | null;
}

/** LXC's lxcpath for this D-RE root: one LXC directory per root keeps roots apart. */
export function lxcPath(): string {
  return containersDir('app');
}

/** How LXC's tools are told which container: its name in this root's lxcpath. */
export const lxcArgs = (name: string) => ['-n', name, '-P', lxcPath()];
/** The process title LXC's monitor of a container runs under: /proc/PID/cmdline is this and one NUL. */
export const monitorTitle = (name: string) => `[lxc monitor] ${lxcPath()} ${name}`;
/** Whether a /proc/PID/cmdline is the monitor of exactly this container (`web` must not match `web2`'s). */
export const isMonitorOf = (cmdline: string, name: string) => cmdline.split('\0')[0] === monitorTitle(name);

export const recordPath = (name: string) => containerRecordPath('app', name);
export const lxcConfigPath = (name: string) => join(containerDir('app', name), 'config');
/** The writable top layer of the container's overlay root file system. */
export const upperDir = (name: string) => join(containerDir('app', name), 'upper');
/** overlayfs's work directory, where LXC expects it (beside upper); the mapped root must own it. */
export const workDir = (name: string) => join(containerDir('app', name), 'work');
/** Read-only layers frozen from the upper layer by saved snapshots, one directory per id. */
export const layersDir = (name: string) => join(containerDir('app', name), 'layers');
export const layerDir = (name: string, id: string) => join(layersDir(name), id);
/** One JSON record per snapshot: the layer stack it restores. */
export const snapshotsDir = (name: string) => join(containerDir('app', name), 'snapshots');
export const snapshotPath = (name: string, tag: string) => join(snapshotsDir(name), `${tag}.json`);
/** One directory of CRIU images per checkpoint. */
export const checkpointsDir = (name: string) => join(containerDir('app', name), 'checkpoints');
export const checkpointDir = (name: string, tag: string) => join(checkpointsDir(name), tag);
export const lxcLogPath = (name: string) => join(containerRunDir('app', name), 'lxc.log');
/** The LXC log of the run before (lxc.log moved aside at each start), which holds that run's stop and its D-Aware lines. */
export const previousLxcLogPath = (name: string) => join(containerRunDir('app', name), 'lxc.log.1');
export const consoleLogPath = (name: string) => join(containerRunDir('app', name), 'console.log');
export const monitorPidPath = (name: string) => join(containerRunDir('app', name), 'monitor.pid');
/** Present while LXC's post-stop hook is to end the container's SSH forward (app/portforward.ts armPortHook). */
export const portHookMarkPath = (name: string) => join(containerRunDir('app', name), 'port-hook');

/**
 * The container's record, checked (records.ts): undefined when there is none; a torn or hand-broken
 * one → DRE_ERR_CONTAINER_UNKNOWN_STATUS naming the file and the way out.
 */
export function readRecord(name: string): AppRecord | undefined {
  const fix = `restore the file, or remove the container with dre-app destroy ${name}`;
  const rec = readRecordOr<AppRecord>(recordPath(name), appRecordCheck, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS', `application container ${name}`, fix);
  if (rec && rec.name !== name) {
    throw dreError(
      'DRE_ERR_CONTAINER_UNKNOWN_STATUS',
      `application container ${name}: its record ${recordPath(name)} names container ${JSON.stringify(rec.name)}; ${fix}`,
    );
  }
  return rec;
}

/** Whether the container runs without a user namespace (records older than user namespaces did). */
export const isPrivileged = (rec: AppRecord) => rec.privileged !== false;

/** The container's own cgroup (limits apply here); its processes live in the `ns` leaf inside it. */
export function containerCgroup(name: string): string {
  return containerGroup('app', name);
}

/** The leaf group that holds the container's processes (lxc.cgroup.dir.container.inner). */
export function containerProcsCgroup(name: string): string {
  return `${containerCgroup(name)}/ns`;
}

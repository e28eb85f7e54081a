import type { Driver } from '../core/driver.js';
import { DRIVER_EVENTS, journaled } from '../core/journal.js';
import { supervisionOps } from '../core/supervision.js';
import { checkpoint, listCheckpoints, removeCheckpoint, restart } from './checkpoints.js';
import * as cgroups from './cgroups.js';
import * as lifecycle from './lifecycle.js';
import * as state from './state.js';
import type { AppConfig } from './lifecycle.js';
import * as registry from './registry.js';
import { rename } from './rename.js';
import * as config from './settings.js';
import * as snapshots from './snapshots.js';
import { buildDebianBase } from './debian.js';
import { importBase } from './imports.js';
import { pull, push } from './files.js';
import { exportContainer, importContainer } from './archive.js';

/**
 * What the LXC driver offers beside the Driver interface (as Incus's Container beside its Instance),
 * each member named: a helper a module exports never becomes driver API by being exported.
 */
export interface AppExtensions extends ReturnType<typeof supervisionOps> {
  rename: typeof rename;
  info: typeof state.info;
  summary: typeof state.summary;
  push: typeof push;
  pull: typeof pull;
  buildDebianBase: typeof buildDebianBase;
  importBase: typeof importBase;
  exportContainer: typeof exportContainer;
  importContainer: typeof importContainer;
  bindVpid: typeof cgroups.bindVpid;
  unbindVpid: typeof cgroups.unbindVpid;
  registerPid: typeof registry.registerPid;
  registerVpid: typeof registry.registerVpid;
  unregisterPid: typeof registry.unregisterPid;
  unregisterVpid: typeof registry.unregisterVpid;
  registeredPids: typeof registry.registeredPids;
}

/** The LXC driver: the application-container side of the one Driver interface, plus what only LXC offers. */
const members = {
  kind: 'app' as const,
  create: lifecycle.create,
  destroy: lifecycle.destroy,
  rename,
  settings: config.settings,
  configure: config.configure,
  exists: state.exists,
  list: state.list,
  status: state.status,
  enginePid: state.runningInit,
  start: lifecycle.start,
  stop: lifecycle.stop,
  suspend: lifecycle.suspend,
  resume: lifecycle.resume,
  pid: state.pid,
  exec: lifecycle.exec,
  execCapture: lifecycle.execCapture,
  logFiles: lifecycle.logFiles,
  info: state.info,
  summary: state.summary,
  saveSnapshot: snapshots.saveSnapshot,
  loadSnapshot: snapshots.loadSnapshot,
  removeSnapshot: snapshots.removeSnapshot,
  listSnapshots: snapshots.listSnapshots,
  snapshotDetails: snapshots.snapshotDetails,
  commitSnapshot: snapshots.commitSnapshot,
  listBases: snapshots.listBases,
  removeBase: snapshots.removeBase,
  buildDebianBase,
  importBase,
  push,
  pull,
  exportContainer,
  importContainer,
  checkpoint,
  restart,
  listCheckpoints,
  removeCheckpoint,
  createCgroup: cgroups.createCgroup,
  destroyCgroup: cgroups.destroyCgroup,
  bindPid: cgroups.bindPid,
  bindVpid: cgroups.bindVpid,
  unbindPid: cgroups.unbindPid,
  unbindVpid: cgroups.unbindVpid,
  setResource: cgroups.setResource,
  unsetResource: cgroups.unsetResource,
  setLimit: cgroups.setLimit,
  unsetLimit: cgroups.unsetLimit,
  limits: cgroups.limits,
  usage: cgroups.usage,
  getResource: cgroups.getResource,
  registerPid: registry.registerPid,
  registerVpid: registry.registerVpid,
  unregisterPid: registry.unregisterPid,
  unregisterVpid: registry.unregisterVpid,
  registeredPids: registry.registeredPids,
  ...supervisionOps('app', state.requireContainer, snapshots.listSnapshots),
} satisfies Driver<AppConfig> & AppExtensions;

/** Every change a caller makes through the driver lands in the root's event journal (src/core/journal.ts). */
export const appDriver = journaled('app', members, {
  ...DRIVER_EVENTS,
  bindVpid: ['pid-bound', 'name', 'cgroup', 'vpid'],
  rename: ['renamed', 'name', 'to'],
  configure: ['configured', 'name', 'changes'],
  unbindVpid: ['pid-unbound', 'name', 'cgroup', 'vpid'],
  buildDebianBase: ['base-built', 'base'],
  importBase: ['base-imported', 'base', 'source'],
  push: ['file-pushed', 'name', 'src', 'dst'],
  exportContainer: ['exported', 'name', 'file'],
});

export type AppDriver = typeof appDriver;
export type { AppConfig };

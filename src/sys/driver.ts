import type { Driver } from '../core/driver.js';
import { DRIVER_EVENTS, journaled } from '../core/journal.js';
import { supervisionOps } from '../core/supervision.js';
import * as cgroups from './cgroups.js';
import * as files from './files.js';
import * as lifecycle from './lifecycle.js';
import type { SysConfig } from './lifecycle.js';
import * as snapshots from './snapshots.js';
import { buildDebianBase } from './debian.js';
import { importBase } from './imports.js';
import * as config from './settings.js';
import { rename } from './rename.js';
import { attachConsole } from './console.js';
import { immigrate, migrate } from './migration.js';
import { startNfsServer, stopNfsServer } from './nfsserver.js';
import * as state from './state.js';
import { nfsConfig, setNfsConfig } from './lease.js';
import { breakLease, leaseHolder, share, unshare } from './share.js';
import { migrateToMember } from './member-migration.js';
import { exportContainer, importContainer } from './archive.js';

/**
 * What the QEMU driver offers beside the Driver interface (as Incus's VM beside its Instance), each
 * member named: a helper a module exports never becomes driver API by being exported.
 */
export interface SysExtensions extends ReturnType<typeof supervisionOps> {
  rename: typeof rename;
  info: typeof state.info;
  push: typeof files.push;
  pull: typeof files.pull;
  console: typeof attachConsole;
  rebuildDefaultBase: typeof snapshots.rebuildDefaultBase;
  buildDebianBase: typeof buildDebianBase;
  importBase: typeof importBase;
  share: typeof share;
  unshare: typeof unshare;
  leaseHolder: typeof leaseHolder;
  breakLease: typeof breakLease;
  nfsConfig: typeof nfsConfig;
  setNfsConfig: typeof setNfsConfig;
  startNfsServer: typeof startNfsServer;
  stopNfsServer: typeof stopNfsServer;
  migrate: typeof migrate;
  migrateTo: typeof migrateToMember;
  immigrate: typeof immigrate;
  exportContainer: typeof exportContainer;
  importContainer: typeof importContainer;
}

/** The QEMU driver: the system-container side of the one Driver interface, plus what only QEMU offers. */
const members = {
  kind: 'sys' as const,
  create: lifecycle.create,
  destroy: lifecycle.destroy,
  exists: state.exists,
  list: state.list,
  status: state.status,
  enginePid: state.qemuPid,
  start: lifecycle.start,
  stop: lifecycle.stop,
  suspend: lifecycle.suspend,
  resume: lifecycle.resume,
  pid: state.pid,
  exec: lifecycle.exec,
  execCapture: lifecycle.execCapture,
  logFiles: lifecycle.logFiles,
  rename,
  settings: config.settings,
  configure: config.configure,
  push: files.push,
  pull: files.pull,
  info: state.info,
  console: attachConsole,
  saveSnapshot: snapshots.saveSnapshot,
  loadSnapshot: snapshots.loadSnapshot,
  removeSnapshot: snapshots.removeSnapshot,
  listSnapshots: snapshots.listSnapshots,
  snapshotDetails: snapshots.snapshotDetails,
  commitSnapshot: snapshots.commitSnapshot,
  listBases: snapshots.listBases,
  removeBase: snapshots.removeBase,
  rebuildDefaultBase: snapshots.rebuildDefaultBase,
  buildDebianBase,
  importBase,
  checkpoint: snapshots.checkpoint,
  restart: snapshots.restart,
  listCheckpoints: snapshots.listCheckpoints,
  removeCheckpoint: snapshots.removeCheckpoint,
  createCgroup: cgroups.createCgroup,
  destroyCgroup: cgroups.destroyCgroup,
  bindPid: cgroups.bindPid,
  unbindPid: cgroups.unbindPid,
  setResource: cgroups.setResource,
  unsetResource: cgroups.unsetResource,
  setLimit: cgroups.setLimit,
  unsetLimit: cgroups.unsetLimit,
  limits: cgroups.limits,
  usage: cgroups.usage,
  getResource: cgroups.getResource,
  share,
  unshare,
  leaseHolder,
  breakLease,
  nfsConfig,
  setNfsConfig,
  startNfsServer,
  stopNfsServer,
  migrate,
  migrateTo: migrateToMember,
  immigrate,
  exportContainer,
  importContainer,
  ...supervisionOps('sys', state.requireContainer, snapshots.listSnapshots),
} satisfies Driver<SysConfig> & SysExtensions;

/** Every change a caller makes through the driver lands in the root's event journal (src/core/journal.ts). */
export const sysDriver = journaled('sys', members, {
  ...DRIVER_EVENTS,
  share: ['shared', 'name'],
  unshare: ['unshared', 'name'],
  migrate: ['migrated', 'name', 'target', 'port'],
  migrateTo: ['migrated', 'name', 'target'],
  immigrate: ['immigrating', 'name', 'port'],
  configure: ['configured', 'name', 'changes'],
  rename: ['renamed', 'name', 'to'],
  buildDebianBase: ['base-built', 'base'],
  importBase: ['base-imported', 'base', 'source'],
  exportContainer: ['exported', 'name', 'file'],
});

export type SysDriver = typeof sysDriver;
export type { SysConfig };

import type { Driver } from '../core/driver.js';
import * as cgroups from './cgroups.js';
import * as lifecycle from './lifecycle.js';
import type { SysConfig } from './lifecycle.js';
import * as snapshots from './snapshots.js';
import { attachConsole } from './console.js';
import { immigrate, migrate } from './migration.js';
import { startNfsServer, stopNfsServer } from './nfsserver.js';
import { breakLease, leaseHolder, setNfsConfig, share, unshare } from './share.js';

/** The QEMU driver: the system-container side of the one Driver interface, plus what only QEMU offers. */
export const sysDriver = {
  kind: 'sys' as const,
  create: lifecycle.create,
  destroy: lifecycle.destroy,
  exists: lifecycle.exists,
  list: lifecycle.list,
  status: lifecycle.status,
  start: lifecycle.start,
  stop: lifecycle.stop,
  suspend: lifecycle.suspend,
  resume: lifecycle.resume,
  pid: lifecycle.pid,
  exec: lifecycle.exec,
  execCapture: lifecycle.execCapture,
  info: lifecycle.info,
  console: attachConsole,
  ...snapshots,
  ...cgroups,
  share,
  unshare,
  leaseHolder,
  breakLease,
  setNfsConfig,
  startNfsServer,
  stopNfsServer,
  migrate,
  immigrate,
};

// The QEMU driver implements the one interface both kinds share.
const implementsDriver: Driver<SysConfig> = sysDriver;
void implementsDriver;

export type SysDriver = typeof sysDriver;
export type { SysConfig };

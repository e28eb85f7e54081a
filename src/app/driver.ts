import type { Driver } from '../core/driver.js';
import * as cgroups from './cgroups.js';
import * as lifecycle from './lifecycle.js';
import * as state from './state.js';
import type { AppConfig } from './lifecycle.js';
import * as registry from './registry.js';
import * as snapshots from './snapshots.js';

/** The LXC driver: the application-container side of the one Driver interface, plus what only LXC offers. */
export const appDriver = {
  kind: 'app' as const,
  create: lifecycle.create,
  destroy: lifecycle.destroy,
  exists: state.exists,
  list: state.list,
  status: state.status,
  start: lifecycle.start,
  stop: lifecycle.stop,
  suspend: lifecycle.suspend,
  resume: lifecycle.resume,
  pid: state.pid,
  exec: lifecycle.exec,
  info: state.info,
  ...snapshots,
  ...cgroups,
  ...registry,
};

// The LXC driver implements the one interface both kinds share.
const implementsDriver: Driver<AppConfig> = appDriver;
void implementsDriver;

export type AppDriver = typeof appDriver;
export type { AppConfig };

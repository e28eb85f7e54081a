/**
 * The QMP commands D-RE sends, one typed function each: arguments and replies as QEMU documents them
 * (qapi/*.json), so a caller never spells a command or casts a reply. Failures are the classes of
 * errors.ts.
 */
import type { ImageSnapshot } from '../image.js';
import type { Qmp } from './monitor.js';

/** QEMU's run state (qapi RunState) as query-status reports it. */
export type RunState =
  | 'running'
  | 'paused'
  | 'prelaunch'
  | 'inmigrate'
  | 'postmigrate'
  | 'finish-migrate'
  | 'save-vm'
  | 'restore-vm'
  | 'suspended'
  | 'shutdown'
  | 'guest-panicked'
  | 'internal-error'
  | 'io-error'
  | 'watchdog'
  | 'colo'
  | 'debug';

export const queryStatus = async (q: Qmp, timeoutMs = 5_000): Promise<RunState> =>
  (await q.execute<{ status: RunState }>('query-status', undefined, timeoutMs)).status;
/** Lets a paused guest run. */
export const cont = (q: Qmp, timeoutMs?: number) => q.execute<void>('cont', undefined, timeoutMs);
/** Pauses the guest (QMP `stop`; QEMU keeps running). */
export const pause = (q: Qmp) => q.execute<void>('stop');
/** Ends QEMU at once (it flushes its disks first). */
export const quit = (q: Qmp, timeoutMs?: number) => q.execute<void>('quit', undefined, timeoutMs);
/** Presses the ACPI power button. */
export const systemPowerdown = (q: Qmp) => q.execute<void>('system_powerdown');

export interface BlockInfo {
  device: string;
  inserted?: { image?: { snapshots?: ImageSnapshot[] } };
}
export const queryBlock = (q: Qmp) => q.execute<BlockInfo[]>('query-block');
export interface BlockNode {
  drv: string;
  image: { 'virtual-size': number };
}
export const queryNamedBlockNodes = (q: Qmp) => q.execute<BlockNode[]>('query-named-block-nodes', { flat: true });

/** A human-monitor (HMP) command line such as `savevm TAG`; resolves to its text output (HMP reports failure as text). */
export const humanMonitor = (q: Qmp, commandLine: string, timeoutMs = 120_000) =>
  q.execute<string>('human-monitor-command', { 'command-line': commandLine }, timeoutMs);

/** query-migrate's answer (qapi MigrationInfo, the parts D-RE reads). */
export interface MigrateInfo {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'error-desc'?: string;
  ram?: { transferred: number; remaining: number; total: number };
  disk?: { transferred: number; remaining: number; total: number };
}
export const queryMigrate = (q: Qmp) => q.execute<MigrateInfo>('query-migrate', undefined, 10_000);
export const migrate = (q: Qmp, uri: string, blk: boolean) => q.execute<void>('migrate', { uri, blk });
export const migrateIncoming = (q: Qmp, uri: string) => q.execute<void>('migrate-incoming', { uri });
export const migrateCancel = (q: Qmp) => q.execute<void>('migrate_cancel', undefined, 10_000);
/** Lets a migration paused at `pre-switchover` finish. */
export const migrateContinue = (q: Qmp) => q.execute<void>('migrate-continue', { state: 'pre-switchover' }, 10_000);
export interface MigrationParameters {
  'tls-creds'?: string;
  'tls-hostname'?: string;
  'max-bandwidth'?: number;
}
export const migrateSetParameters = (q: Qmp, params: MigrationParameters) => q.execute<void>('migrate-set-parameters', { ...params });
export type MigrationCapability = 'events' | 'pause-before-switchover';
export const migrateSetCapabilities = (q: Qmp, caps: Partial<Record<MigrationCapability, boolean>>) =>
  q.execute<void>('migrate-set-capabilities', { capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })) });

/** Makes QEMU's TLS credentials object from PEM files in `dir` (read once, now). */
export const addTlsCredentials = (q: Qmp, id: string, dir: string, endpoint: 'server' | 'client') =>
  q.execute<void>('object-add', { 'qom-type': 'tls-creds-x509', id, dir, endpoint, 'verify-peer': true });
export const deleteObject = (q: Qmp, id: string) => q.execute<void>('object-del', { id });

/**
 * Live migration of system containers between D-RE hosts: the target waits with `-incoming defer` +
 * `migrate-incoming`, the source runs QMP `migrate` and watches `query-migrate`. A shared container's
 * disk stays on NFS (both QEMUs open the same nfs:// image); otherwise the user asks for the disk to be
 * copied in the migration stream (block migration, `blk`). Any failure leaves the guest running on
 * the source.
 */
import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import { isIP, createServer } from 'node:net';
import { join } from 'node:path';
import { STATUS } from '../core/driver.js';
import { dreError, isDreError } from '../core/errors.js';
import { checkInt, checkName } from '../core/names.js';
import { containerRunDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { sleep } from '../core/proc.js';
import { holdLease, releaseNetwork } from '../core/network.js';
import { writeJsonAtomic } from '../core/store.js';
import { qemuUser, removeTlsCredentials, stageTlsCredentials } from './confine.js';
import { qmpSocketPath, recordPath, type SysRecord } from './layout.js';
import { changing } from './lifecycle.js';
import { killQemu, launch, removeRunFiles } from './qemu.js';
import { qemuPid, refuseUnless } from './state.js';
import * as qmp from './qmp/commands.js';
import type { MigrateInfo } from './qmp/commands.js';
import { isListenRefused, isTargetUnreachable } from './qmp/errors.js';
import { Qmp, type QmpEvent } from './qmp/monitor.js';
import type { ShareFiles } from './storage.js';
import { announceIncoming, handOverLease, importShared, isShared, mountShareOf, outgrownImage, releaseLease, requireIncoming } from './lease.js';

/** How long a migration may run before it is cancelled as not converging. */
export const DEFAULT_MIGRATION_TIMEOUT_MS = 300_000;
const TLS_ID = 'dre-tls0';

export interface MigrateOptions {
  /**
   * Copy the disk in the migration stream: true for a local disk, false for a shared one (either
   * refused for the other kind). Left out: whatever the container's disk needs, decided under its lock.
   */
  copyDisk?: boolean;
  /** A directory with QEMU's x509 files: ca-cert.pem, client-cert.pem, client-key.pem (source) / server-cert.pem, server-key.pem (target). */
  tlsDir?: string | null;
  /** Cancel (the guest keeps running here) when not done after this long. */
  timeoutMs?: number;
  /** Cap on the stream in bytes per second (QEMU's max-bandwidth); default QEMU's. */
  maxBandwidth?: number;
  onProgress?: (p: MigrationProgress) => void;
}

/** What query-migrate says while a migration runs. */
export interface MigrationProgress {
  status: string;
  elapsedMs: number;
  /** RAM (and disk, when copied) sent so far, still to send, and the total. */
  transferredBytes: number;
  remainingBytes: number;
  totalBytes: number;
  /** Set once completed: how long the guest was paused for the switch-over. */
  downtimeMs?: number;
}

export interface MigrationResult {
  mode: 'shared' | 'copy';
  /** The whole call, checks and hand-over included. */
  elapsedMs: number;
  totalTimeMs: number;
  downtimeMs: number;
  transferredBytes: number;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The target's address: an IP as given, or a host name that resolves; else DRE_ERR_INVALID_HOSTNAME. */
export async function resolveTarget(target: unknown, what: string): Promise<string> {
  if (target === null || target === undefined) throw dreError('DRE_ERR_NULL_POINTER', `${what}: target host is null`);
  if (typeof target !== 'string') throw dreError('DRE_ERR_INVALID_HOSTNAME', `${what}: target host must be a string`);
  if (target.length > 253) throw dreError('DRE_ERR_REQUEST_TOO_LONG', `${what}: target host is longer than 253 characters`);
  if (isIP(target)) return target;
  if (!HOST_NAME.test(target)) throw dreError('DRE_ERR_INVALID_HOSTNAME', `${what}: ${JSON.stringify(target)} is not a valid host name or IP address`);
  try {
    return (await lookup(target)).address;
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_HOSTNAME', `${what}: host ${target} does not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
}

const checkPort = (port: unknown) => checkInt(port, 'port', 1, 65535);

function checkTlsDir(dir: string | null | undefined, files: string[], what: string): string | undefined {
  if (dir === null || dir === undefined) return undefined;
  if (typeof dir !== 'string' || !dir.startsWith('/')) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the TLS directory must be an absolute path`);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${dir} lacks ${missing.join(', ')}`);
  return dir;
}

async function useTls(q: Qmp, n: string, dir: string | undefined, endpoint: 'server' | 'client', what: string, hostName?: string): Promise<void> {
  if (dir === undefined) {
    await qmp.migrateSetParameters(q, { 'tls-creds': '' });
    return;
  }
  // A QEMU that came by immigration holds the server-side credentials under the same id.
  await qmp.deleteObject(q, TLS_ID).catch(() => undefined);
  // QEMU (unprivileged) reads a copy made for it; it loads the files when the object is made, so the copy goes at once.
  const runDir = containerRunDir('sys', n);
  const staged = stageTlsCredentials(qemuUser(what), dir, runDir);
  try {
    await qmp.addTlsCredentials(q, TLS_ID, staged, endpoint);
  } finally {
    removeTlsCredentials(runDir);
  }
  await qmp.migrateSetParameters(q, { 'tls-creds': TLS_ID, ...(hostName ? { 'tls-hostname': hostName } : {}) });
}

/** The lowest port an unprivileged process may listen on (QEMU has no CAP_NET_BIND_SERVICE). */
function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** Fails with DRE_ERR_NO_SOCKET_AVAILABLE when the port cannot be listened on here. */
async function requireFreePort(port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: port ${port} cannot be listened on (${e.code ?? e.message})`, e)),
    );
    s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve()));
  });
}

export interface ImmigrateOptions {
  /** A directory with QEMU's x509 server files (ca-cert.pem, server-cert.pem, server-key.pem). */
  tlsDir?: string | null;
  /**
   * The address and MAC the guest has on its source host (`dre-sys info` there), for a container
   * whose disk is copied (not shared: a shared record carries them already). The container here takes
   * them over (its lease and record), so the guest answers on the same address with the same MAC here,
   * and keeps them when it starts again here. Both or neither.
   */
  address?: string | null;
  mac?: string | null;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The source's address and MAC asked for, checked: a unicast MAC, an IPv4 address; undefined when not asked for. */
function checkNic(opts: ImmigrateOptions, what: string): { address: string; mac: string } | undefined {
  const { address, mac } = opts;
  const given = (v: unknown) => v !== null && v !== undefined;
  if (!given(address) && !given(mac)) return undefined;
  if (!given(address) || !given(mac)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: give the source's address and MAC together`);
  if (typeof address !== 'string' || isIP(address) !== 4)
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${JSON.stringify(address)} is not an IPv4 address`);
  const m = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC.test(m) || (parseInt(m.slice(0, 2), 16) & 1) === 1)
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${JSON.stringify(mac)} is not a unicast MAC (xx:xx:xx:xx:xx:xx)`);
  return { address, mac: m };
}

/**
 * Gives the container here the NIC its guest brings from the source (a copied disk's migration): the
 * lease of `nic.address` held in this root (a clash → DRE_ERR_NO_TAP_AVAILABLE, nothing changed) and
 * the record's address and MAC. Returns the new record and how to take it all back.
 */
async function takeOverNic(
  n: string,
  rec: SysRecord,
  nic: { address: string; mac: string },
  what: string,
): Promise<{ rec: SysRecord; undo: () => Promise<void> }> {
  if (rec.address === nic.address && rec.mac === nic.mac) return { rec, undo: async () => {} };
  const port = rec.port ?? null;
  await holdLease('sys', n, { address: nic.address, port }, `${what}:`);
  const next: SysRecord = { ...rec, address: nic.address, mac: nic.mac };
  writeJsonAtomic(recordPath(n), next);
  const undo = async () => {
    writeJsonAtomic(recordPath(n), rec);
    if (rec.address) await holdLease('sys', n, { address: rec.address, port }, `${what}:`).catch(() => {});
    else await releaseNetwork('sys', n).catch(() => {});
  };
  return { rec: next, undo };
}

/**
 * dre_sys_immigration_start: starts the container here with QEMU listening for its migration on
 * `port` (all IPv4 addresses). A container unknown here is taken from the share when it is there.
 * A container whose disk comes copied takes over the source's address and MAC when they are given.
 */
export async function immigrate(name: string, port: number, opts: ImmigrateOptions = {}): Promise<void> {
  const n = checkName(name, 'container name');
  const p = checkPort(port);
  const what = `immigrate ${n}`;
  const tls = checkTlsDir(opts?.tlsDir, ['ca-cert.pem', 'server-cert.pem', 'server-key.pem'], what);
  const nic = checkNic(opts ?? {}, what);
  requireRoot(what);
  const lowest = unprivilegedPortStart();
  if (p < lowest) {
    throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: QEMU runs unprivileged and cannot listen on port ${p}; use a port from ${lowest} up`);
  }
  if (!(await importShared(n, what))) {
    throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what}: no such system container on this host or on its NFS share`);
  }
  await changing('immigrate', n, async (n, rec) => {
    await refuseUnless(n, 'immigrate', [STATUS.STOP]);
    await requireFreePort(p, what);
    if (!nic) return launchIncoming(n, rec, p, tls);
    if (isShared(n)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: it is shared: its record on the share carries its address and MAC`);
    const taken = await takeOverNic(n, rec, nic, what);
    try {
      await launchIncoming(n, taken.rec, p, tls);
    } catch (e) {
      await taken.undo();
      throw e;
    }
  });
}

async function launchIncoming(n: string, rec: SysRecord, port: number, tls: string | undefined): Promise<void> {
  await launch(n, rec, 'immigrate', undefined, async (q) => {
    try {
      await useTls(q, n, tls, 'server', `immigrate ${n}`);
      await qmp.migrateIncoming(q, `tcp:0.0.0.0:${port}`);
      if (isShared(n)) announceIncoming(n, port, await nfsImageLength(q));
    } catch (e) {
      if (isListenRefused(e)) {
        throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `immigrate ${n}: port ${port} cannot be listened on: ${e.desc}`, e);
      }
      throw dreError('DRE_ERR_DEVICE_BUSY', `immigrate ${n}: QEMU refused to wait for the migration: ${(e as Error).message}`, e);
    }
  });
}

/** The length of the shared image as this QEMU's NFS driver took it when it opened it (it never reads past it). */
async function nfsImageLength(q: Qmp): Promise<number> {
  const nodes = await qmp.queryNamedBlockNodes(q);
  const nfs = nodes.find((b) => b.drv === 'nfs');
  if (!nfs) throw new Error('QEMU has no NFS node for the shared disk');
  return nfs.image['virtual-size'];
}

function progressOf(info: MigrateInfo, started: number): MigrationProgress {
  const parts = [info.ram, info.disk].filter((x) => x !== undefined);
  const sum = (k: 'transferred' | 'remaining' | 'total') => parts.reduce((a, x) => a + x![k], 0);
  return {
    status: info.status ?? 'unknown',
    elapsedMs: info['total-time'] ?? Date.now() - started,
    transferredBytes: sum('transferred'),
    remainingBytes: sum('remaining'),
    totalBytes: sum('total'),
    downtimeMs: info.downtime,
  };
}

/** The DreError for a migration QEMU reports as failed. */
function failure(n: string, dest: string, desc: string): Error {
  if (isTargetUnreachable(desc)) {
    return dreError(
      'DRE_ERR_NO_SOCKET_AVAILABLE',
      `migrate ${n}: nothing accepts the migration at ${dest} (start the immigration there first); it keeps running here: ${desc}`,
    );
  }
  return dreError(
    'DRE_ERR_DEVICE_BUSY',
    `migrate ${n}: the target ended the migration half-way (its QEMU stopped or refused the stream); it keeps running here: ${desc}`,
  );
}

/** After a failed or cancelled migration: the guest runs on here (QEMU normally resumes it itself). */
async function keepRunning(q: Qmp): Promise<void> {
  try {
    if ((await qmp.queryStatus(q)) !== 'running') await qmp.cont(q, 5_000);
  } catch {
    /* QEMU gone or not answering: status tells the user */
  }
}

/**
 * QEMU says `completed` a moment before it has computed the total time and the downtime (both read 0
 * until then): asked at once on the event, it is asked again until they are there (briefly).
 */
async function finalTimes(q: Qmp, info: MigrateInfo): Promise<MigrateInfo> {
  for (let tries = 0; !info['total-time'] && tries < 100; tries++) {
    await sleep(2);
    info = await qmp.queryMigrate(q);
  }
  return info;
}

/**
 * Polls until the migration ends; past the deadline it is cancelled. Resolves to the final info.
 * `atSwitchover` (with QEMU's pause-before-switchover) runs while the guest is paused and its disk
 * flushed, just before the target takes over: a reason it returns cancels the migration. It runs on
 * QEMU's MIGRATION event itself, since every millisecond there is guest downtime.
 */
async function follow(
  q: Qmp,
  n: string,
  dest: string,
  started: number,
  opts: MigrateOptions,
  timeoutMs: number,
  atSwitchover?: () => string | undefined,
): Promise<MigrateInfo> {
  let cancelled = false;
  let refused: string | undefined;
  let decision: Promise<unknown> | undefined;
  const onMigration = (ev: QmpEvent) => {
    if (ev.data?.status !== 'pre-switchover' || decision || cancelled) return;
    try {
      refused = atSwitchover?.();
    } catch (e) {
      refused = `the switch-over could not be checked: ${(e as Error).message}`;
    }
    cancelled = refused !== undefined;
    decision = (refused ? qmp.migrateCancel(q) : qmp.migrateContinue(q)).catch(() => undefined);
  };
  q.on('MIGRATION', onMigration);
  try {
    let remaining = 0;
    for (;;) {
      const info = await qmp.queryMigrate(q);
      if (info.status === 'completed') return await finalTimes(q, info);
      if (info.status === 'failed') throw failure(n, dest, info['error-desc'] ?? 'QEMU gave no reason');
      if (info.status === 'pre-switchover') onMigration({ event: 'MIGRATION', data: { status: info.status } }); // should the event have been missed
      if (info.status === 'cancelled' && refused) throw dreError('DRE_ERR_DEVICE_BUSY', `migrate ${n}: ${refused}; cancelled, it keeps running here`);
      if (info.status === 'cancelled') {
        const left = `${(remaining / 2 ** 20).toFixed(1)} MiB still to send`;
        throw dreError(
          'DRE_ERR_DEVICE_BUSY',
          `migrate ${n}: did not converge within ${Math.round(timeoutMs / 1000)} s (${left}: the link is slower than the guest dirties memory); cancelled, it keeps running here`,
        );
      }
      const progress = progressOf(info, started);
      remaining = progress.remainingBytes;
      opts.onProgress?.(progress);
      if (!cancelled && Date.now() - started > timeoutMs) {
        cancelled = true;
        await qmp.migrateCancel(q);
      }
      await q.waitEvent('MIGRATION', 50); // the next poll comes at once when the state changes
    }
  } finally {
    q.off('MIGRATION', onMigration);
    await decision;
  }
}

/** The lease follows the guest; a share that stops answering now is retried, then reported (the guest runs on the target). */
async function handOver(n: string, target: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await handOverLease(n);
      return;
    } catch (e) {
      if (attempt === 3) {
        throw dreError(
          'DRE_ERR_NFS_MOUNT_FAILED',
          `migrate ${n}: the guest now runs on ${target}, but its lease could not be handed over (${(e as Error).message}); do not start it here`,
          e,
        );
      }
      await sleep(1_000);
    }
  }
}

/**
 * dre_sys_migration_start: live-migrates the running container to the D-RE host `target`, which
 * waits for it on `port` (dre_sys_immigration_start). On success the guest runs there, this host's
 * QEMU is ended (STOP here) and a shared container's lease passes to the target.
 */
export async function migrate(name: string, target: string, port: number, opts: MigrateOptions = {}): Promise<MigrationResult> {
  const n = checkName(name, 'container name');
  const p = checkPort(port);
  const what = `migrate ${n}`;
  const called = Date.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: timeout ${timeoutMs} ms is invalid`);
  const tls = checkTlsDir(opts.tlsDir, ['ca-cert.pem', 'client-cert.pem', 'client-key.pem'], what);
  requireRoot(what);
  const address = await resolveTarget(target, what);
  const dest = `${address.includes(':') ? `[${address}]` : address}:${p}`;
  return changing('migrate', n, async (n) => {
    await refuseUnless(n, 'migrate', [STATUS.RUNNING]);
    const shared = isShared(n);
    const copyDisk = opts.copyDisk ?? !shared;
    if (shared && copyDisk) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: it is shared over NFS; its disk is not copied`);
    if (!shared && !copyDisk) {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: its disk is local to this host: share it first (while stopped) or ask for the disk to be copied`);
    }
    const pid = qemuPid(n)!;
    let q: Qmp;
    try {
      q = await Qmp.connect(qmpSocketPath(n));
    } catch (e) {
      throw dreError('DRE_ERR_DEVICE_BUSY', `${what}: QEMU does not answer on its monitor: ${(e as Error).message}`, e);
    }
    try {
      await useTls(q, n, tls, 'client', what, tls ? target : undefined);
      if (opts.maxBandwidth !== undefined) await qmp.migrateSetParameters(q, { 'max-bandwidth': checkInt(opts.maxBandwidth, 'max bandwidth', 1, 2 ** 52) });
      await qmp.migrateSetCapabilities(q, { events: true, 'pause-before-switchover': shared });
    } catch (e) {
      q.close();
      throw dreError('DRE_ERR_DEVICE_BUSY', `${what}: QEMU refused the migration settings: ${(e as Error).message}`, e);
    }
    let info: MigrateInfo;
    let share: ShareFiles | undefined;
    try {
      // One mount for the target's announcement and the switch-over check: the shared image must
      // not have outgrown what the target's QEMU took it to be (see share.ts).
      share = shared ? mountShareOf(n, what) : undefined;
      const outgrown = share && outgrownImage(share, n, requireIncoming(share, n, p, what));
      const started = Date.now();
      await qmp.migrate(q, `tcp:${dest}`, !shared);
      info = await follow(q, n, dest, started, opts, timeoutMs, outgrown);
    } catch (e) {
      await keepRunning(q);
      q.close();
      if (qemuPid(n) === undefined) {
        // This host's QEMU died (killed) half-way: the guest is gone here and never arrived there.
        removeRunFiles(n);
        await releaseLease(n);
        throw dreError(
          'DRE_ERR_CONTAINER_STOPPED',
          `${what}: its QEMU ended during the migration; the guest did not move and the container is stopped here (start it again)`,
          e,
        );
      }
      if (isDreError(e)) throw e;
      throw failure(n, dest, (e as Error).message);
    } finally {
      share?.close();
    }
    q.close();
    // The guest runs on the target now: this QEMU (paused in postmigrate) goes, the lease follows the guest.
    await killQemu(n, pid);
    removeRunFiles(n);
    if (shared) await handOver(n, target);
    const final = progressOf(info, 0);
    opts.onProgress?.(final);
    return {
      mode: shared ? 'shared' : 'copy',
      elapsedMs: Date.now() - called,
      totalTimeMs: info['total-time'] ?? 0,
      downtimeMs: info.downtime ?? 0,
      transferredBytes: final.transferredBytes,
    };
  });
}

import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS, type LogFile, type Status, type StopOptions } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { isLocked, withLock, type ContainerLock } from '../core/lock.js';
import { changingContainer, inspecting, refuseState, removeContainerFiles, stopTimeout } from '../core/operation.js';
import { checkInt, checkName } from '../core/names.js';
import { containerDir, containerRunDir, containersDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { engineCause, lastLines, run } from '../core/run.js';
import { withRevertAsync } from '../core/revert.js';
import { buildAside } from '../core/staging.js';
import { writeJsonAtomic } from '../core/store.js';
import { checkAccel, type Accel } from './accel.js';
import { execInGuest, ping, type ExecResult } from './agent.js';
import { baseExists, DEFAULT_BASE, ensureDefaultBase, mayLackAgent } from './base.js';
import { removeCgroups, removeCgroupsSettled } from './hostgroup.js';
import { agentSocketPath, baseDiskPath, consoleLogPath, qemuLogPath, qmpSocketPath, type SysRecord } from './layout.js';
import { endLeftover, launch, NO_AGENT, powerOff, removeRunFiles, threadsGone } from './qemu.js';
import { holding, qmpStatusOn, qemuPid, refuseUnless, requireContainer, requireContainerDir } from './state.js';
import { importShared, releaseLease } from './lease.js';
import { inCluster } from '../cluster/claims.js';
import { sysMac } from './tap.js';
import { claimNetwork, forgetNetwork, releaseNetwork } from '../core/network.js';
import * as qmp from './qmp/commands.js';
import { Qmp } from './qmp/monitor.js';

/** dre_sys_data in idiomatic form. */
export interface SysConfig {
  /** Guest RAM in MiB; 0, null or absent: DEFAULT_MEMORY_MIB. */
  memorySize?: number | null;
  /** The Base Image (null: the default busybox + Debian kernel base). */
  base?: string | null;
  /** A block device or image file (ext4 root on the whole disk) used instead of a base; booted with the default base's kernel. */
  rootfs?: string | null;
  /** 'tcg' opts this container into software emulation where KVM is unavailable; DRE_SYS_ACCEL overrides it. */
  accel?: Accel | null;
  /** false: no NIC (the guest has loopback only); default: a virtio-net on the D-RE bridge with an address of its own. */
  network?: boolean | null;
  /** A host port forwarded to the guest's SSH port (22); null or absent: none. */
  port?: number | null;
  /** Virtual CPUs; 0, null or absent: 1. */
  cpus?: number | null;
  /** The disk's virtual size in MiB, at least its base's (the guest's ext4 grows to it); 0, null or absent: the base's. Not with rootfs. */
  diskSize?: number | null;
}

export const DEFAULT_MEMORY_MIB = 256;
/** The most virtual CPUs a container may have (QEMU's q35 takes 288; a sane bound). */
export const MAX_CPUS = 64;
const EXEC_TIMEOUT_MS = 600_000;
/** How long exec in a guest that may lack the agent waits for its agent to answer a ping before saying it has none. */
const AGENT_PING_MS = 5_000;

/** Runs a state-changing operation: root, a valid name, the container's lock, the container present. */
export function changing<T>(what: string, name: unknown, fn: (name: string, rec: SysRecord, lock: ContainerLock) => Promise<T>): Promise<T> {
  return changingContainer('sys', what, name, requireContainer, (n, rec, lock) => holding(n, () => fn(n, rec, lock)));
}

/** As `changing` without reading the record: a container whose record is damaged can still be stopped and destroyed. */
function changingDir<T>(what: string, name: unknown, fn: (name: string, lock: ContainerLock) => Promise<T>): Promise<T> {
  return changingContainer('sys', what, name, requireContainerDir, (n, _rec, lock) => holding(n, () => fn(n, lock)));
}

interface CheckedConfig {
  base: string | null;
  rootfs: string | null;
  memoryMiB: number;
  accel: Accel;
  network: boolean;
  port: number | null;
  cpus: number;
  diskMiB: number | undefined;
}

function checkConfig(config: SysConfig): CheckedConfig {
  const unset = (v: unknown) => v === null || v === undefined || v === 0;
  const net = {
    network: config.network !== false,
    port: config.port === null || config.port === undefined ? null : checkInt(config.port, 'port', 1, 65535),
    cpus: unset(config.cpus) ? 1 : checkInt(config.cpus, 'cpus', 1, MAX_CPUS),
    diskMiB: unset(config.diskSize) ? undefined : checkInt(config.diskSize, 'disk_size (MiB)', 1, 16 << 20),
  };
  const memoryMiB =
    config.memorySize === null || config.memorySize === undefined || config.memorySize === 0
      ? DEFAULT_MEMORY_MIB
      : checkInt(config.memorySize, 'memory_size (MiB)', 16, 1 << 20);
  // No accel given: the one DRE_SYS_ACCEL asks for now, so a container made under tcg still starts under tcg without the variable.
  const env = process.env.DRE_SYS_ACCEL;
  const accel = config.accel === null || config.accel === undefined ? (env ? checkAccel(env, 'DRE_SYS_ACCEL') : 'kvm') : checkAccel(config.accel, 'accel');
  if (config.rootfs !== null && config.rootfs !== undefined) {
    if (typeof config.rootfs !== 'string' || !config.rootfs.startsWith('/')) {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `rootfs ${JSON.stringify(config.rootfs)} must be an absolute path to a partition or image`);
    }
    if (config.rootfs.length > 4096) throw dreError('DRE_ERR_REQUEST_TOO_LONG', 'rootfs path is longer than 4096 characters');
    if (config.base !== null && config.base !== undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', 'give base or rootfs, not both');
    if (net.diskMiB !== undefined)
      throw dreError('DRE_ERR_INVALID_ARGUMENT', 'disk_size applies to a disk made on a base, not to a rootfs (resize the image itself)');
    return { base: null, rootfs: config.rootfs, memoryMiB, accel, ...net };
  }
  const base = config.base === null || config.base === undefined ? DEFAULT_BASE : checkName(config.base, 'base');
  return { base, rootfs: null, memoryMiB, accel, ...net };
}

/** A base disk's virtual size in MiB (qemu-img info). */
async function baseDiskMiB(n: string, base: string): Promise<number> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', baseDiskPath(base)], { timeoutMs: 60_000 });
  const bytes = r.code === 0 ? Number((JSON.parse(r.stdout) as { 'virtual-size'?: number })['virtual-size']) : NaN;
  if (!Number.isFinite(bytes))
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: qemu-img info cannot read base ${base}: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
  return Math.ceil(bytes / 2 ** 20);
}

/** The container's disk: a qcow2 overlay on its base's disk, `diskMiB` large when given. */
async function createOverlay(n: string, base: string, path: string, diskMiB: number | undefined): Promise<void> {
  const size = diskMiB === undefined ? [] : [`${diskMiB}M`];
  const r = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', baseDiskPath(base), path, ...size], { timeoutMs: 120_000 });
  if (r.code !== 0)
    throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: qemu-img create failed on base ${base}: ${lastLines(r.stderr)}`, engineCause('qemu-img', r));
  chmodSync(path, 0o600);
}

export async function create(name: string, config: SysConfig = {}): Promise<void> {
  const n = checkName(name, 'container name');
  const { network, port, diskMiB, ...cfg } = checkConfig(config ?? {});
  requireRoot(`create ${n}`);
  await withLock('sys', n, 'create', async () => {
    if (existsSync(containerDir('sys', n))) throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `create ${n}: a system container of that name exists`);
    removeCgroups(n); // left by a destroy that was killed half-way
    if (cfg.rootfs !== null) {
      if (!existsSync(cfg.rootfs)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `create ${n}: rootfs ${cfg.rootfs} does not exist`);
      await ensureDefaultBase();
    } else if (cfg.base === DEFAULT_BASE) await ensureDefaultBase();
    else if (!baseExists(cfg.base!)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: no Base Image named ${cfg.base}`);
    if (diskMiB !== undefined) {
      const least = await baseDiskMiB(n, cfg.base!);
      if (diskMiB < least)
        throw dreError('DRE_ERR_INVALID_ARGUMENT', `create ${n}: disk_size ${diskMiB} MiB is smaller than base ${cfg.base}'s disk (${least} MiB)`);
    }
    await withRevertAsync(async (revert) => {
      // The address comes from the allocator application containers use (one bridge, one subnet).
      const lease = await claimNetwork('sys', n, network, port);
      revert.add(() => releaseNetwork('sys', n));
      const rec: SysRecord = {
        name: n,
        ...cfg,
        address: lease.address,
        port: lease.port,
        ...(lease.address ? { mac: sysMac(n) } : {}),
        ...(diskMiB !== undefined ? { diskMiB } : {}),
        created: new Date().toISOString(),
      };
      const dir = await buildAside(containersDir('sys'), n, async (staging) => {
        if (rec.base !== null) await createOverlay(n, rec.base, join(staging, 'disk.qcow2'), diskMiB);
        writeJsonAtomic(join(staging, 'dre.json'), rec);
      });
      revert.add(() => rmSync(dir, { recursive: true, force: true }));
      // A base removed while this was being made: undo (remove_base checks for users after moving the base away).
      if (rec.base !== null && !baseExists(rec.base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: Base Image ${rec.base} was removed meanwhile`);
    });
  });
}

export async function destroy(name: string): Promise<void> {
  await changingDir('destroy', name, async (n, lock) => {
    await refuseUnless(n, 'destroy', [STATUS.STOP]);
    await endLeftover(n);
    removeContainerFiles('sys', n);
    rmSync(containerRunDir('sys', n), { recursive: true, force: true });
    await forgetNetwork('sys', n);
    await removeCgroupsSettled(n);
    lock.removeFile();
  });
}

export async function start(name: string): Promise<void> {
  // In a cluster any member may start a shared container: one this host has not seen yet is found on the share.
  if (inCluster()) await importShared(name, 'start');
  await changing('start', name, async (n, rec) => {
    await refuseUnless(n, 'start', [STATUS.STOP]);
    await launch(n, rec, 'start');
  });
}

export async function stop(name: string, opts: StopOptions = {}): Promise<void> {
  const timeoutMs = stopTimeout(opts);
  await changingDir('stop', name, async (n) => {
    await refuseUnless(n, 'stop', [STATUS.RUNNING]);
    const pid = qemuPid(n)!;
    await powerOff(n, pid, timeoutMs);
    if (!threadsGone(pid)) throw dreError('DRE_ERR_CONTAINER_RUNNING', `stop ${n}: QEMU (pid ${pid}) is still running`);
    removeRunFiles(n);
    await releaseLease(n, { stopped: true });
  });
}

/**
 * `command` for QEMU when the container is in one of the `allowed` states, the state asked and the
 * command sent on one QMP connection (a QEMU that does not answer is BUSY, one that is gone STOP).
 */
async function qmpCommandWhen(n: string, what: string, allowed: Status[], command: (q: Qmp) => Promise<void>): Promise<void> {
  const unanswered = () => (qemuPid(n) === undefined ? STATUS.STOP : STATUS.BUSY);
  if (qemuPid(n) === undefined) refuseState(n, what, STATUS.STOP, allowed);
  let q: Qmp;
  try {
    q = await Qmp.connect(qmpSocketPath(n));
  } catch {
    refuseState(n, what, unanswered(), allowed);
    return;
  }
  try {
    refuseState(n, what, await qmpStatusOn(q).catch(unanswered), allowed);
    try {
      await command(q);
    } catch (e) {
      throw dreError('DRE_ERR_DEVICE_BUSY', `${what} ${n}: QEMU refused: ${(e as Error).message}`, e);
    }
  } finally {
    q.close();
  }
}

export async function suspend(name: string): Promise<void> {
  await changing('suspend', name, (n) => qmpCommandWhen(n, 'suspend', [STATUS.RUNNING], qmp.pause));
}

export async function resume(name: string): Promise<void> {
  await changing('resume', name, (n) => qmpCommandWhen(n, 'resume', [STATUS.SUSPENDED], (q) => qmp.cont(q)));
}

/** Runs `argv` in the running guest through its agent, `stdin` as its input (none: empty), returning its status and output. */
export async function execCapture(name: string, argv: string[], timeoutMs = EXEC_TIMEOUT_MS, stdin?: Buffer): Promise<ExecResult> {
  const n = checkName(name, 'container name');
  requireRoot(`exec in ${n}`);
  const rec = requireContainer(n, 'exec in');
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `exec in ${n}: no command given`);
  }
  if (stdin !== undefined && !Buffer.isBuffer(stdin)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `exec in ${n}: stdin must be a Buffer`);
  if (qemuPid(n) === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `exec in ${n}: the container is stopped; start it first`);
  if (!isLocked('sys', n)) await refuseUnless(n, 'exec in', [STATUS.RUNNING]);
  // A --rootfs image or an imported base may run no agent: asked first, or the request would wait for the whole timeout.
  if (mayLackAgent(rec) && !(await ping(agentSocketPath(n), AGENT_PING_MS))) {
    throw dreError('DRE_ERR_DEVICE_BUSY', `exec in ${n}: no answer from a D-RE agent in ${AGENT_PING_MS / 1000} s: ${NO_AGENT}`);
  }
  try {
    return await execInGuest(agentSocketPath(n), argv, timeoutMs, stdin);
  } catch (e) {
    // A stop (or a dying QEMU) that won the race: the container is stopped, not busy.
    if (qemuPid(n) === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `exec in ${n}: the container stopped: ${(e as Error).message}`, e);
    throw dreError('DRE_ERR_DEVICE_BUSY', `exec in ${n}: ${(e as Error).message}`, e);
  }
}

/** Runs `argv` in the guest with `stdin` as its input and its output passed to the caller's stdout and stderr; resolves to its exit status. */
export async function exec(name: string, argv: string[], stdin?: Buffer): Promise<number> {
  const r = await execCapture(name, argv, EXEC_TIMEOUT_MS, stdin);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.status;
}

/** The container's log files on the host: the guest's serial console and QEMU's own log (QEMU's files: read them as untrusted). */
export function logFiles(name: string): Promise<LogFile[]> {
  const { n } = inspecting('read the logs of', name, requireContainer);
  return Promise.resolve([
    { source: 'console', path: consoleLogPath(n) },
    { source: 'qemu', path: qemuLogPath(n) },
  ]);
}

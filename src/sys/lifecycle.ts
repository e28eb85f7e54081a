import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts, removeGroupTree } from '../core/cgroup.js';
import { STATUS, type Status, type StopOptions } from '../core/driver.js';
import { dreError, isDreError } from '../core/errors.js';
import { isLocked, withLock, type ContainerLock } from '../core/lock.js';
import { checkInt, checkName } from '../core/names.js';
import { cgroupRoot, containerDir, containerRunDir, containersDir, stagingPath } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { isAlive, sleep, waitFor } from '../core/proc.js';
import { lastLines, run } from '../core/run.js';
import { listEntries, removeStaging, writeJsonAtomic } from '../core/store.js';
import { chooseAccel, checkAccel, type Accel } from './accel.js';
import { execInGuest, ping, type ExecResult } from './agent.js';
import { baseExists, DEFAULT_BASE, ensureDefaultBase } from './base.js';
import {
  agentSocketPath,
  baseDiskPath,
  baseInitrdPath,
  baseKernelPath,
  consoleLogPath,
  consoleSocketPath,
  containerCgroup,
  diskPath,
  pidFilePath,
  qmpSocketPath,
  readRecord,
  recordPath,
  type SysRecord,
} from './layout.js';
import { qemuArgs } from './machine.js';
import { Qmp, withQmp } from './qmp.js';

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
}

export const DEFAULT_MEMORY_MIB = 256;
/** Default grace for the guest to power off after the ACPI button before QEMU is ended. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** How long a start may wait for the guest agent (software emulation on a loaded 2-core host is slow). */
const READY_TIMEOUT_MS = 180_000;
const EXEC_TIMEOUT_MS = 600_000;

export function exists(name: string): boolean {
  return existsSync(recordPath(name));
}

export function requireContainer(name: string, what: string): SysRecord {
  const rec = readRecord(name);
  if (!rec) throw dreError('DRE_ERR_CONTAINER_NONEXISTENCE', `${what} ${name}: no such system container`);
  return rec;
}

/** The container's running QEMU, from its pid file, verified by its command line (a reused PID never counts). */
export function qemuPid(name: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFilePath(name), 'utf8').trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(`\0-pidfile\0${pidFilePath(name)}\0`)) return undefined;
  } catch {
    return undefined;
  }
  return isAlive(pid) ? pid : undefined;
}

/** QEMU's run state (query-status `status`) as the spec's status. */
export function statusOfRunState(runState: string): Status {
  if (runState === 'running') return STATUS.RUNNING;
  // prelaunch: paused before the guest ever ran, i.e. a start that was killed; start and destroy end it.
  if (['prelaunch', 'shutdown', 'guest-panicked', 'internal-error'].includes(runState)) return STATUS.STOP;
  return STATUS.SUSPENDED;
}

/** The spec's status of a QEMU on an open QMP connection. */
export async function qmpStatusOn(q: Qmp): Promise<Status> {
  return statusOfRunState((await q.execute<{ status: string }>('query-status', undefined, 5_000)).status);
}

/** QEMU's run state mapped to the spec's status; a QEMU that is gone is STOP. */
async function qmpStatus(name: string): Promise<Status> {
  try {
    return await withQmp(qmpSocketPath(name), qmpStatusOn);
  } catch {
    return qemuPid(name) === undefined ? STATUS.STOP : STATUS.BUSY;
  }
}

/** What QEMU and the process say of the container now, ignoring locks. */
export async function observed(name: string): Promise<Status> {
  if (qemuPid(name) === undefined) return STATUS.STOP;
  return qmpStatus(name);
}

export async function refuseUnless(name: string, what: string, allowed: Status[]): Promise<Status> {
  return refuse(name, what, await observed(name), allowed);
}

/** Throws the code for being in state `s` when the operation needs one of `allowed`; else returns `s`. */
export function refuse(name: string, what: string, s: Status, allowed: Status[]): Status {
  if (allowed.includes(s)) return s;
  if (s === STATUS.RUNNING) throw dreError('DRE_ERR_CONTAINER_RUNNING', `${what} ${name}: the container is running`);
  if (s === STATUS.SUSPENDED) throw dreError('DRE_ERR_CONTAINER_SUSPENDED', `${what} ${name}: the container is suspended; resume it first`);
  if (s === STATUS.BUSY) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${name}: QEMU does not answer on its monitor`);
  throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${name}: the container is stopped; start it first`);
}

/** Runs a state-changing operation: root, a valid name, the container's lock, the container present. */
export async function changing<T>(
  what: string,
  name: unknown,
  fn: (name: string, rec: SysRecord, lock: ContainerLock) => Promise<T>,
): Promise<T> {
  const n = checkName(name, 'container name');
  requireRoot(`${what} ${n}`);
  return withLock('sys', n, what, (lock) => fn(n, requireContainer(n, what), lock));
}

function checkConfig(config: SysConfig): { base: string | null; rootfs: string | null; memoryMiB: number; accel: Accel } {
  const memoryMiB =
    config.memorySize === null || config.memorySize === undefined || config.memorySize === 0
      ? DEFAULT_MEMORY_MIB
      : checkInt(config.memorySize, 'memory_size (MiB)', 16, 1 << 20);
  const accel = config.accel === null || config.accel === undefined ? 'kvm' : checkAccel(config.accel, 'accel');
  if (config.rootfs !== null && config.rootfs !== undefined) {
    if (typeof config.rootfs !== 'string' || !config.rootfs.startsWith('/')) {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `rootfs ${JSON.stringify(config.rootfs)} must be an absolute path to a partition or image`);
    }
    if (config.rootfs.length > 4096) throw dreError('DRE_ERR_REQUEST_TOO_LONG', 'rootfs path is longer than 4096 characters');
    if (config.base !== null && config.base !== undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', 'give base or rootfs, not both');
    return { base: null, rootfs: config.rootfs, memoryMiB, accel };
  }
  const base = config.base === null || config.base === undefined ? DEFAULT_BASE : checkName(config.base, 'base');
  return { base, rootfs: null, memoryMiB, accel };
}

async function qemuImg(what: string, args: string[], code: 'DRE_ERR_BASE_NONEXISTENCE' | 'DRE_ERR_CONTAINER_STOPPED' = 'DRE_ERR_BASE_NONEXISTENCE'): Promise<void> {
  const r = await run('qemu-img', args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw dreError(code, `${what}: qemu-img ${args[0]} failed: ${lastLines(r.stderr)}`);
}

export async function create(name: string, config: SysConfig = {}): Promise<void> {
  const n = checkName(name, 'container name');
  const cfg = checkConfig(config ?? {});
  requireRoot(`create ${n}`);
  await withLock('sys', n, 'create', async () => {
    mkdirSync(containersDir('sys'), { recursive: true, mode: 0o700 });
    removeStaging(containersDir('sys'));
    if (existsSync(containerDir('sys', n))) throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `create ${n}: a system container of that name exists`);
    removeCgroups(n); // left by a destroy that was killed half-way
    if (cfg.rootfs !== null) {
      if (!existsSync(cfg.rootfs)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `create ${n}: rootfs ${cfg.rootfs} does not exist`);
      await ensureDefaultBase();
    } else if (cfg.base === DEFAULT_BASE) await ensureDefaultBase();
    else if (!baseExists(cfg.base!)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: no Base Image named ${cfg.base}`);
    const rec: SysRecord = { name: n, ...cfg, created: new Date().toISOString() };
    // Made aside and renamed into place: a killed create leaves only a staging entry, removed next time.
    const staging = stagingPath(containersDir('sys'), n);
    try {
      mkdirSync(staging, { recursive: true, mode: 0o700 });
      if (rec.base !== null) {
        await qemuImg(`create ${n}`, ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', baseDiskPath(rec.base), join(staging, 'disk.qcow2')]);
        chmodSync(join(staging, 'disk.qcow2'), 0o600);
      }
      writeJsonAtomic(join(staging, 'dre.json'), rec);
      renameSync(staging, containerDir('sys', n));
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    // A base removed while this was being made: undo (remove_base checks for users after moving the base away).
    if (rec.base !== null && !baseExists(rec.base)) {
      rmSync(containerDir('sys', n), { recursive: true, force: true });
      throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: Base Image ${rec.base} was removed meanwhile`);
    }
  });
}

/**
 * Removes the container's cgroups, waiting (bounded) while the kernel still counts an exited QEMU in
 * them (PID 1 reaps lazily here); what is left then is cleared by the next create of that name.
 */
async function removeCgroupsSettled(name: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    removeCgroups(name);
    if (!allHierarchyMounts().some((m) => existsSync(join(m, containerCgroup(name))))) return;
    await sleep(20);
  }
}

/** Removes the container's cgroups in every hierarchy, and this root's parent groups once empty. */
function removeCgroups(name: string): void {
  for (const mount of allHierarchyMounts()) {
    removeGroupTree(join(mount, containerCgroup(name)));
    for (const parent of [`${cgroupRoot()}/sys`, cgroupRoot(), 'dre']) {
      try {
        rmdirSync(join(mount, parent));
      } catch {
        /* still used by other containers or roots */
      }
    }
  }
}

/** Puts every thread of `pid` into the container's group in each hierarchy (cgroup.procs moves the whole process). */
export function enterCgroups(name: string, pid: number): void {
  for (const mount of allHierarchyMounts()) {
    const dir = join(mount, containerCgroup(name));
    mkdirSync(dir, { recursive: true });
    // v1 cpuset groups start with empty cpus/mems: copy the parent's before a process may enter.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) inheritCpuset(mount, containerCgroup(name), f);
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }
}

function inheritCpuset(mount: string, rel: string, file: string): void {
  const parts = rel.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const dir = join(mount, ...parts.slice(0, i));
    try {
      if (readFileSync(join(dir, file), 'utf8').trim() !== '') continue;
      const parent = readFileSync(join(mount, ...parts.slice(0, i - 1), file), 'utf8').trim();
      writeFileSync(join(dir, file), parent);
    } catch {
      return; // not a cpuset hierarchy
    }
  }
}


export async function destroy(name: string): Promise<void> {
  await changing('destroy', name, async (n, _rec, lock) => {
    await refuseUnless(n, 'destroy', [STATUS.STOP]);
    await endLeftover(n);
    // Renamed out of sight first: a killed destroy leaves a staging entry, never a half-container.
    const trash = stagingPath(containersDir('sys'), n);
    renameSync(containerDir('sys', n), trash);
    rmSync(trash, { recursive: true, force: true });
    rmSync(containerRunDir('sys', n), { recursive: true, force: true });
    await removeCgroupsSettled(n);
    lock.removeFile();
  });
}

export function list(): string[] {
  requireRoot('list containers');
  return listEntries(containersDir('sys')).filter((n) => existsSync(recordPath(n)));
}

export async function status(name: string): Promise<Status> {
  const n = checkName(name, 'container name');
  requireRoot(`status ${n}`);
  requireContainer(n, 'status');
  if (isLocked('sys', n)) return STATUS.BUSY;
  return observed(n);
}

/** The disk and kernel a container boots. */
function bootFiles(n: string, rec: SysRecord, what: string): { disk: string; diskFormat: 'qcow2' | 'raw'; kernel: string; initrd: string } {
  const kernelBase = rec.base ?? DEFAULT_BASE;
  if (!baseExists(kernelBase)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what} ${n}: its Base Image ${kernelBase} is missing`);
  const boot = { kernel: baseKernelPath(kernelBase), initrd: baseInitrdPath(kernelBase) };
  if (rec.rootfs === null) return { disk: diskPath(n), diskFormat: 'qcow2', ...boot };
  if (!existsSync(rec.rootfs)) throw dreError('DRE_ERR_DEVICE_BUSY', `${what} ${n}: its rootfs ${rec.rootfs} is missing`);
  return { disk: rec.rootfs, diskFormat: isQcow2(rec.rootfs) ? 'qcow2' : 'raw', ...boot };
}

/** True when the file starts with qcow2's magic "QFI\xfb". */
function isQcow2(path: string): boolean {
  const head = Buffer.alloc(4);
  try {
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false; // unreadable: QEMU says why when it opens it
  }
  return head.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
}

/** Ends a QEMU for good: QMP quit, then SIGKILL; resolves once the process is gone (a zombie counts as gone). */
export async function killQemu(name: string, pid: number): Promise<void> {
  try {
    await withQmp(qmpSocketPath(name), (q) => q.execute('quit', undefined, 2_000), 2_000);
  } catch {
    /* not answering: killed below */
  }
  if (await waitFor(() => (isAlive(pid) ? undefined : true), 2_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await waitFor(() => (isAlive(pid) ? undefined : true), 10_000);
}

/** Ends a QEMU that status counts as STOP (never launched by a killed start, or shut down) before the disk is used again. */
async function endLeftover(n: string): Promise<void> {
  const stale = qemuPid(n);
  if (stale !== undefined) await killQemu(n, stale);
}

function consoleTail(name: string): string {
  try {
    return lastLines(readFileSync(consoleLogPath(name), 'utf8'), 5);
  } catch {
    return '';
  }
}

/**
 * Launches QEMU paused, puts it into the container's cgroup, lets the guest run and waits until its
 * agent answers (the guest booted, its power-button reader is listening). `loadvm` resumes a checkpoint.
 */
export async function launch(n: string, rec: SysRecord, what: string, loadvm?: string): Promise<void> {
  const accel = chooseAccel(`${what} ${n}`, rec.accel ?? 'kvm');
  await endLeftover(n);
  const files = bootFiles(n, rec, what);
  const runDir = containerRunDir('sys', n);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chmodSync(runDir, 0o700);
  for (const p of [qmpSocketPath(n), agentSocketPath(n), consoleSocketPath(n), pidFilePath(n), consoleLogPath(n)]) rmSync(p, { force: true });
  const args = qemuArgs({
    name: n,
    accel,
    memoryMiB: rec.memoryMiB,
    ...files,
    qmpSocket: qmpSocketPath(n),
    agentSocket: agentSocketPath(n),
    consoleSocket: consoleSocketPath(n),
    consoleLog: consoleLogPath(n),
    pidFile: pidFilePath(n),
    loadvm,
  });
  const r = await run('qemu-system-x86_64', args, { timeoutMs: 60_000 }).catch((e: Error) => {
    throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: QEMU could not be run: ${e.message}`);
  });
  const pid = qemuPid(n);
  if (r.code !== 0 || pid === undefined) {
    throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: QEMU did not start: ${lastLines(r.stderr) || `exit ${r.code}`}`);
  }
  for (const p of [qmpSocketPath(n), agentSocketPath(n), consoleSocketPath(n), pidFilePath(n), consoleLogPath(n)]) {
    try {
      chmodSync(p, 0o600);
    } catch {
      /* made by QEMU later */
    }
  }
  let qmp: Qmp | undefined;
  try {
    enterCgroups(n, pid);
    qmp = await Qmp.connect(qmpSocketPath(n));
    const shutdown = qmp.waitEvent('SHUTDOWN', READY_TIMEOUT_MS);
    await qmp.execute('cont');
    const ready = await readiness(n, pid, shutdown);
    if (!ready) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: the guest did not become ready: ${consoleTail(n) || 'no console output'}`);
  } catch (e) {
    qmp?.close();
    qmp = undefined;
    await killQemu(n, pid);
    if (isDreError(e)) throw e;
    throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: ${(e as Error).message}`, e);
  } finally {
    qmp?.close();
  }
}

/** Pings the guest agent until it answers; false when QEMU shuts down or dies, or the time is up. */
async function readiness(n: string, pid: number, shutdown: Promise<unknown>): Promise<boolean> {
  let down = false;
  void shutdown.then((ev) => (down = ev !== undefined));
  const end = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < end && !down && isAlive(pid)) {
    if (await ping(agentSocketPath(n), 2_000)) return true;
    if (!down) await sleep(20);
  }
  return false;
}

export async function start(name: string): Promise<void> {
  await changing('start', name, async (n, rec) => {
    await refuseUnless(n, 'start', [STATUS.STOP]);
    await launch(n, rec, 'start');
  });
}

/** Asks the guest to power off (ACPI button), and ends QEMU if it has not gone after `timeoutMs`. */
export async function powerOff(n: string, pid: number, timeoutMs: number): Promise<void> {
  if (timeoutMs > 0) {
    try {
      await withQmp(qmpSocketPath(n), async (q) => {
        const gone = q.waitEvent('SHUTDOWN', timeoutMs);
        await q.execute('system_powerdown');
        await gone;
      });
    } catch {
      /* QEMU stopped answering: ended below */
    }
    if (await waitFor(() => (isAlive(pid) ? undefined : true), Math.min(timeoutMs, 2_000))) return;
  }
  await killQemu(n, pid);
}

function removeRunFiles(n: string): void {
  for (const p of [qmpSocketPath(n), agentSocketPath(n), consoleSocketPath(n), pidFilePath(n)]) rmSync(p, { force: true });
}

export async function stop(name: string, opts: StopOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `stop: timeout ${timeoutMs} ms is invalid`);
  await changing('stop', name, async (n) => {
    await refuseUnless(n, 'stop', [STATUS.RUNNING]);
    const pid = qemuPid(n)!;
    await powerOff(n, pid, timeoutMs);
    if (isAlive(pid)) throw dreError('DRE_ERR_CONTAINER_RUNNING', `stop ${n}: QEMU (pid ${pid}) is still running`);
    removeRunFiles(n);
  });
}

async function qmpCommand(n: string, what: string, command: string): Promise<void> {
  try {
    await withQmp(qmpSocketPath(n), (q) => q.execute(command));
  } catch (e) {
    throw dreError('DRE_ERR_DEVICE_BUSY', `${what} ${n}: QEMU refused ${command}: ${(e as Error).message}`, e);
  }
}

export async function suspend(name: string): Promise<void> {
  await changing('suspend', name, async (n) => {
    await refuseUnless(n, 'suspend', [STATUS.RUNNING]);
    await qmpCommand(n, 'suspend', 'stop');
  });
}

export async function resume(name: string): Promise<void> {
  await changing('resume', name, async (n) => {
    await refuseUnless(n, 'resume', [STATUS.SUSPENDED]);
    await qmpCommand(n, 'resume', 'cont');
  });
}

/** The host PID of the container's QEMU process (dre_sys_get_pid). */
export async function pid(name: string): Promise<number> {
  const n = checkName(name, 'container name');
  requireRoot(`get pid of ${n}`);
  requireContainer(n, 'get pid of');
  const p = qemuPid(n);
  if (p === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `get pid of ${n}: the container is stopped`);
  return p;
}

/** Runs `argv` in the running guest through its agent, returning its status and output. */
export async function execCapture(name: string, argv: string[], timeoutMs = EXEC_TIMEOUT_MS): Promise<ExecResult> {
  const n = checkName(name, 'container name');
  requireRoot(`exec in ${n}`);
  requireContainer(n, 'exec in');
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `exec in ${n}: no command given`);
  }
  if (qemuPid(n) === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `exec in ${n}: the container is stopped; start it first`);
  if (!isLocked('sys', n)) await refuseUnless(n, 'exec in', [STATUS.RUNNING]);
  try {
    return await execInGuest(agentSocketPath(n), argv, timeoutMs);
  } catch (e) {
    throw dreError('DRE_ERR_DEVICE_BUSY', `exec in ${n}: ${(e as Error).message}`, e);
  }
}

/** Runs `argv` in the guest with its output passed to the caller's stdout and stderr; resolves to its exit status. */
export async function exec(name: string, argv: string[]): Promise<number> {
  const r = await execCapture(name, argv);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.status;
}

/** What `dre-sys list` shows of a container beside its status. */
export function info(name: string): { base: string | null; rootfs: string | null; memoryMiB: number } {
  const rec = requireContainer(checkName(name, 'container name'), 'info of');
  return { base: rec.base, rootfs: rec.rootfs, memoryMiB: rec.memoryMiB };
}

import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { dreError, isDreError } from '../core/errors.js';
import { containerRunDir } from '../core/paths.js';
import { isAlive, procStat, sleep, waitFor } from '../core/proc.js';
import { withRevertAsync } from '../core/revert.js';
import { lastLines } from '../core/run.js';
import { readUntrustedFile } from '../core/store.js';
import { chooseAccel } from './accel.js';
import { ping } from './agent.js';
import { baseExists, bootOf, DEFAULT_BASE } from './base.js';
import { grantFiles, qemuUser } from './confine.js';
import { enterCgroups } from './hostgroup.js';
import { agentSocketPath, baseDiskPath, consoleLogPath, consoleSocketPath, pidFilePath, qemuLogPath, qmpSocketPath, type SysRecord } from './layout.js';
import { confinedCommand, qemuArgs, type QemuUser } from './machine.js';
import { cont, queryStatus, quit, systemPowerdown } from './qmp/commands.js';
import { Qmp, withQmp } from './qmp/monitor.js';
import { launching, qemuPid } from './state.js';
import { diskPath, releaseLease, sharedBootFiles } from './lease.js';
import { endNic, prepareNic, type Nic } from './tap.js';

// The QEMU process of a container: finding it, launching it until the guest is ready, ending it.

/** How long a start may wait for the guest agent (software emulation on a loaded 2-core host is slow). */
const READY_TIMEOUT_MS = 180_000;
/**
 * A --rootfs image may have no D-RE agent: its start returns once the guest has booted without one,
 * that is when the agent has not answered this long after a login prompt on the console, or this
 * long after QEMU began running the guest at all.
 */
const AFTER_PROMPT_MS = 5_000;
const AGENTLESS_BOOT_MS = 60_000;
/** What a guest prints on its serial console once booted: a getty's prompt, busybox init's askfirst. */
const BOOTED_MARKER = /login: |Please press Enter to activate this console/;

/** Why exec and a graceful stop are not available in a guest without the agent (start says it, exec refuses with it). */
export const NO_AGENT =
  'the guest runs no D-RE agent (port org.dre.agent): exec needs the agent, and stop presses the ACPI power button and ends QEMU after the timeout';

/** The disk and kernel a container boots, and which of D-RE's files QEMU writes and reads for it. */
interface BootFiles {
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  /** Absent for a base the firmware boots from its own disk. */
  kernel?: string;
  initrd?: string;
  /** The disk is a --rootfs image, opened by D-RE and handed to QEMU as fds (the user's file is not changed). */
  diskFds?: boolean;
  writable: string[];
  /** What QEMU reads besides the kernel and initramfs (an overlay's backing image). */
  readable: string[];
  /** The guest runs D-RE's agent for sure; false for a --rootfs image or an imported base (start returns once it booted). */
  agent: boolean;
}

function bootFiles(n: string, rec: SysRecord, what: string): BootFiles {
  const kernelBase = rec.base ?? DEFAULT_BASE;
  if (!baseExists(kernelBase)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `${what} ${n}: its Base Image ${kernelBase} is missing`);
  const { agent, ...boot } = bootOf(kernelBase);
  if (rec.rootfs === null) {
    // The overlay's backing file is its base's disk, read by QEMU.
    return { disk: diskPath(n), diskFormat: 'qcow2', ...boot, writable: [diskPath(n)], readable: [baseDiskPath(kernelBase)], agent };
  }
  if (!existsSync(rec.rootfs)) throw dreError('DRE_ERR_DEVICE_BUSY', `${what} ${n}: its rootfs ${rec.rootfs} is missing`);
  return { disk: rec.rootfs, diskFormat: isQcow2(rec.rootfs) ? 'qcow2' : 'raw', ...boot, diskFds: true, writable: [], readable: [], agent: false };
}

/** Opens a --rootfs image for QEMU, read-write and read-only (root opens it; QEMU never needs the path). */
function openRootfs(path: string, what: string): number[] {
  const fds: number[] = [];
  try {
    for (const flags of [constants.O_RDWR, constants.O_RDONLY]) fds.push(openSync(path, flags));
    return fds;
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw dreError(
      'DRE_ERR_DEVICE_BUSY',
      `${what}: its rootfs ${path} cannot be opened read-write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      e,
    );
  }
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

/**
 * True once every thread of `pid` has exited. The main thread turns zombie first; the others may
 * still hold QEMU's files (the disk's image lock) for a moment, so "gone" waits for all of them.
 */
export function threadsGone(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true;
  }
  return tasks.every((t) => {
    const st = procStat(Number(t));
    return st === undefined || st.state === 'Z' || st.state === 'X';
  });
}

const whenGone = (pid: number) => (threadsGone(pid) ? true : undefined);

/** How long a QEMU that is shutting down by itself may take to flush and exit before it is killed. */
const EXIT_AFTER_QUIT_MS = 30_000;

/** Ends a QEMU for good: QMP quit, then SIGKILL; resolves once the process is gone (a zombie counts as gone). */
export async function killQemu(name: string, pid: number): Promise<void> {
  let quitting = false;
  try {
    await withQmp(qmpSocketPath(name), (q) => quit(q, 2_000), 2_000);
    quitting = true;
  } catch {
    /* not answering: killed below */
  }
  // A QEMU that took `quit` is flushing its disks (slow over NFS on a loaded host): a SIGKILL now would tear the image.
  if (await waitFor(() => whenGone(pid), quitting ? EXIT_AFTER_QUIT_MS : 2_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await waitFor(() => whenGone(pid), 10_000);
}

/** Ends a QEMU that status counts as STOP (never launched by a killed start, or shut down) before the disk is used again. */
export async function endLeftover(n: string): Promise<void> {
  const stale = qemuPid(n);
  if (stale !== undefined) await killQemu(n, stale);
}

/** The console log's end as written, read as an untrusted file (QEMU owns the run dir). */
const consoleEnd = (name: string): string => readUntrustedFile(consoleLogPath(name), CONSOLE_TAIL_BYTES, -CONSOLE_TAIL_BYTES) ?? '';

/** The console log's last lines, for a message. */
const consoleTail = (name: string): string => lastLines(consoleEnd(name), 5);

const CONSOLE_TAIL_BYTES = 16_384;

/**
 * Launches QEMU paused, as the unprivileged QEMU user, puts it into the container's cgroup, lets the
 * guest run and waits until its agent answers (the guest booted, its power-button reader is
 * listening). `loadvm` resumes a checkpoint.
 */
export async function launch(n: string, rec: SysRecord, what: string, loadvm?: string, incoming?: (q: Qmp) => Promise<void>): Promise<void> {
  launching.add(n);
  try {
    await boot(n, rec, what, loadvm, incoming);
  } finally {
    launching.delete(n);
  }
}

async function boot(n: string, rec: SysRecord, what: string, loadvm?: string, incoming?: (q: Qmp) => Promise<void>): Promise<void> {
  const accel = chooseAccel(`${what} ${n}`, rec.accel ?? 'kvm');
  const user = qemuUser(`${what} ${n}`);
  await endLeftover(n);
  const files: BootFiles = (await sharedBootFiles(n, rec, what, incoming !== undefined, user)) ?? bootFiles(n, rec, what);
  const runDir = containerRunDir('sys', n);
  for (const p of [...runFiles(n), consoleLogPath(n)]) rmSync(p, { force: true });
  const fds = files.diskFds ? openRootfs(files.disk, `${what} ${n}`) : [];
  await withRevertAsync(async (revert) => {
    revert.add(() => releaseLease(n));
    let nic: Nic | undefined;
    let started: Started;
    try {
      nic = await prepareNic(revert, n, rec, what);
      // QEMU inherits the disk's fds as 3 and 4 (when a --rootfs image), then the tap's.
      if (nic) fds.push(nic.fd);
      grantFiles(
        user,
        { runDir, writable: files.writable, readable: [files.kernel, files.initrd, ...files.readable].filter((f) => f !== undefined) },
        `${what} ${n}`,
      );
      const args = qemuArgs({
        name: n,
        accel,
        memoryMiB: rec.memoryMiB,
        cpus: rec.cpus ?? 1,
        growRoot: rec.diskMiB !== undefined && rec.rootfs === null,
        ...files,
        qmpSocket: qmpSocketPath(n),
        agentSocket: agentSocketPath(n),
        consoleSocket: consoleSocketPath(n),
        consoleLog: consoleLogPath(n),
        pidFile: pidFilePath(n),
        loadvm,
        incoming: incoming !== undefined,
        nic: nic && { fd: 2 + fds.length, mac: nic.mac, cmdline: nic.cmdline },
      });
      started = await runQemu(n, user, args, fds, `${what} ${n}`);
    } finally {
      nic?.closeFd();
      for (const fd of fds) if (fd !== nic?.fd) closeSync(fd);
    }
    const { pid, qmp, cgroupError } = started;
    revert.add(async () => {
      qmp.close(); // QMP serves one client: killQemu's own connection comes next
      await killQemu(n, pid);
      endNic(n);
    });
    try {
      if (cgroupError !== undefined) throw cgroupError; // from the move into its cgroups at spawn (startQemu)
      if (incoming) return await incoming(qmp); // the guest runs once its migration arrives
      const shutdown = qmp.waitEvent('SHUTDOWN', READY_TIMEOUT_MS);
      await cont(qmp);
      const ready = await readiness(n, pid, shutdown, !files.agent);
      if (!ready) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: the guest did not become ready: ${consoleTail(n) || 'no console output'}`);
      if (ready === 'booted') process.stderr.write(`D-RE notice: ${what} ${n}: the guest booted, but ${NO_AGENT}\n`);
    } catch (e) {
      if (isDreError(e)) throw e;
      throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${n}: ${(e as Error).message}`, e);
    } finally {
      qmp.close();
    }
  });
}

/** How long QEMU may take from exec to answering on QMP (devices made, a checkpoint loaded). */
const QEMU_UP_TIMEOUT_MS = 120_000;

/** A QEMU that answers on QMP: its pid and the connection that answered (the caller's to close). */
interface Started {
  pid: number;
  qmp: Qmp;
  /** Why it could not be put into the container's cgroups (the caller ends it): undefined when it is in them. */
  cgroupError?: unknown;
}

/**
 * Runs QEMU until it answers on QMP. A QEMU killed just before is a zombie as
 * soon as its main thread exits, while its other threads may still hold the disk's image lock for a
 * moment: that refusal is retried for a bounded time.
 */
async function runQemu(n: string, user: QemuUser, args: string[], fds: number[], what: string): Promise<Started> {
  const end = Date.now() + 5_000;
  for (;;) {
    const r = await startQemu(n, user, args, fds, what);
    if (typeof r !== 'string') return r;
    if (!r.includes('Failed to get "write" lock') || Date.now() > end) {
      const hint = /Permission denied/.test(r) ? ` (QEMU runs as ${user.name}: it must be able to open that file; a --rootfs image's backing files too)` : '';
      throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what}: QEMU did not start: ${lastLines(r) || 'it exited without a word'}${hint}`, {
        tool: 'qemu-system-x86_64',
        stderr: r,
      });
    }
    await sleep(50);
  }
}

/**
 * One start: QEMU detached (its own session, so it outlives this process), its stdout and stderr in
 * a root-owned log that root reads back through the open fd (QEMU owns the run dir and could put a
 * symlink at the path), `fds` as fds 3, 4, put into the container's cgroups at once. Resolves once
 * QMP answers (setpriv execs QEMU, so the child's pid is QEMU's), or to QEMU's output when it exits first.
 */
async function startQemu(n: string, user: QemuUser, args: string[], fds: number[], what: string): Promise<Started | string> {
  rmSync(qemuLogPath(n), { force: true });
  const log = openSync(qemuLogPath(n), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const [cmd, argv] = confinedCommand(user, args);
    const child = spawn(cmd, argv, { detached: true, cwd: '/', stdio: ['ignore', log, log, ...fds] });
    let exited = false;
    let spawnError: Error | undefined;
    child.on('exit', () => (exited = true));
    child.on('error', (e) => {
      spawnError = e;
      exited = true;
    });
    child.unref();
    // Placed before QEMU has set itself up (≈ 50 ms here; -S keeps the guest from running after): every
    // thread it makes is born in the groups, and the cgroup v1 writes (≈ 14 ms) overlap that set-up
    // instead of following it. A QEMU that exits meanwhile fails the move: its own output says why.
    let cgroupError: unknown;
    try {
      if (child.pid !== undefined) enterCgroups(n, child.pid);
    } catch (e) {
      cgroupError = e;
    }
    // null: QEMU exited first; undefined: no answer in time. Polled often: the socket appears early in its set-up.
    const qmp = await waitFor<Qmp | null>(async () => (exited ? null : await answeringQmp(n)), QEMU_UP_TIMEOUT_MS, 5);
    if (qmp) return { pid: child.pid!, qmp, cgroupError };
    if (spawnError) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what}: QEMU could not be run (setpriv, util-linux): ${spawnError.message}`);
    if (!exited) {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      return `no answer on QMP after ${QEMU_UP_TIMEOUT_MS / 1000} s`;
    }
    const { size } = fstatSync(log);
    const out = Buffer.alloc(Math.min(size, 65536));
    readSync(log, out, 0, out.length, Math.max(0, size - out.length));
    return out.toString('utf8');
  } finally {
    closeSync(log);
  }
}

/** A connection to the container's QEMU once it answers a command; undefined while it does not yet. */
async function answeringQmp(n: string): Promise<Qmp | undefined> {
  if (!existsSync(qmpSocketPath(n))) return undefined;
  let q: Qmp | undefined;
  try {
    q = await Qmp.connect(qmpSocketPath(n), 2_000);
    await queryStatus(q, 2_000);
    return q;
  } catch {
    q?.close();
    return undefined;
  }
}

/**
 * Pings the guest agent until it answers ('agent'); false when QEMU shuts down or dies, or the time
 * is up. With `agentless` (a --rootfs image, an imported base), a guest that booted without an agent is 'booted': no
 * answer AFTER_PROMPT_MS after a login prompt on its console, or AGENTLESS_BOOT_MS after it began.
 */
async function readiness(n: string, pid: number, shutdown: Promise<unknown>, agentless: boolean): Promise<'agent' | 'booted' | false> {
  let down = false;
  void shutdown.then((ev) => (down = ev !== undefined));
  const begun = Date.now();
  const end = begun + READY_TIMEOUT_MS;
  let prompted: number | undefined;
  while (Date.now() < end && !down && isAlive(pid)) {
    if (await ping(agentSocketPath(n), 2_000)) return 'agent';
    if (agentless) {
      // Untrimmed: a prompt ends in the space after its colon.
      prompted ??= BOOTED_MARKER.test(consoleEnd(n)) ? Date.now() : undefined;
      const booted = prompted !== undefined ? Date.now() - prompted > AFTER_PROMPT_MS : Date.now() - begun > AGENTLESS_BOOT_MS;
      if (booted && !down && isAlive(pid)) return 'booted';
    }
    if (!down) await sleep(20);
  }
  return false;
}

/** Asks the guest to power off (ACPI button), and ends QEMU if it has not gone after `timeoutMs`. */
export async function powerOff(n: string, pid: number, timeoutMs: number): Promise<void> {
  if (timeoutMs > 0) {
    let shutDown = false;
    try {
      await withQmp(qmpSocketPath(n), async (q) => {
        const gone = q.waitEvent('SHUTDOWN', timeoutMs);
        await systemPowerdown(q);
        shutDown = (await gone) !== undefined; // undefined: the guest ignored the button, or QEMU went
      });
    } catch {
      /* QEMU stopped answering: ended below */
    }
    // After the guest's SHUTDOWN, QEMU flushes its disks and exits by itself: let it.
    if (await waitFor(() => whenGone(pid), shutDown ? EXIT_AFTER_QUIT_MS : Math.min(timeoutMs, 2_000))) return;
  }
  await killQemu(n, pid);
}

/** The files a running QEMU keeps in the run dir (its console log stays after it ends). */
const runFiles = (n: string) => [qmpSocketPath(n), agentSocketPath(n), consoleSocketPath(n), pidFilePath(n)];

/** After QEMU has ended: its run files and its port forward removed (its tap went with it). */
export function removeRunFiles(n: string): void {
  for (const p of runFiles(n)) rmSync(p, { force: true });
  endNic(n);
}

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts, freezerState, readyCpusetPath, removeGroupTree, setFrozen, treeProcesses } from '../core/cgroup.js';
import { STATUS, type ExecResult, type LogFile, type StopOptions } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { withLock, type ContainerLock } from '../core/lock.js';
import { changingContainer, inspecting, refuseState, removeContainerFiles, removeContainerGroups, stopTimeout } from '../core/operation.js';
import { checkInt, checkName } from '../core/names.js';
import { containerDir, containerRunDir, containersDir, kindGroup } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { isAlive, sleep, waitFor } from '../core/proc.js';
import { lastLines, run, runInteractive, signalNumber, type RunError, engineCause } from '../core/run.js';
import { withRevertAsync } from '../core/revert.js';
import { buildAside } from '../core/staging.js';
import { jsonText, writeStagedFile } from '../core/store.js';
import { baseExists, defaultBaseFor, ensureBuiltInBase, requireMatchingBase } from './base.js';
import { consoleLogPath, containerCgroup, lxcArgs, lxcLogPath, monitorPidPath, previousLxcLogPath, type AppRecord } from './layout.js';
import { makeOwnedDir } from '../core/access.js';
import { confineDir, prepareContainerAccess, rootIdRange, shiftOwners } from './userns.js';
import { refuseUnless, requireContainer, requireContainerDir, runningInit } from './state.js';
import { containerIdRange, lowerDirs, renderLxcConfig, syncLxcConfig } from './lxcconfig.js';
import { prepareDaware } from './dawareruntime.js';
import { prepareNotifyDir } from './notifydir.js';
import { terminateRegistered, unmountRegistry } from './registrydir.js';
import { claimNetwork, forgetNetwork, prepareStart, releaseNetwork } from './network.js';
import { armPortHook, closeContainerPort, disarmPortHook } from './portforward.js';
import { checkPublicKey, writeAuthorizedKeys } from './ssh.js';

/** dre_app_data in idiomatic form: the Base Image (null: the busybox default) and the SSH port. */
export interface AppConfig {
  base?: string | null;
  /** Host port forwarded to SSH in the container; 0, null or absent: none. */
  port?: number | null;
  /** false: loopback only (no address, no port). Default: a veth on this root's bridge. */
  network?: boolean;
  /** OpenSSH public key(s) allowed to log in as root; default: the host user's ~/.ssh/id_*.pub. */
  sshKey?: string;
  /** true: no user namespace, the container's root is the host's root (see README). Default: unprivileged. */
  privileged?: boolean;
}

const PATH_IN_CONTAINER = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * lxc-start's environment: a PATH without shadow's newuidmap (/usr/bin, and /bin, its merged-/usr alias).
 * Where newuidmap is installed (Podman, mmdebstrap pull it in) LXC insists on it even as root, which then
 * needs a `root:` line in /etc/subuid, and forks a shell and two tools per start; root writes the maps
 * itself, and the range is reserved in /etc/subuid under this root's own name (userns.ts).
 */
export const lxcStartEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: '/usr/local/sbin:/usr/sbin:/sbin' });

/** Runs a state-changing operation: root, a valid name, the container's lock, the container present. */
export function changing<T>(what: string, name: unknown, fn: (name: string, rec: AppRecord, lock: ContainerLock) => Promise<T>): Promise<T> {
  return changingContainer('app', what, name, requireContainer, fn);
}

function checkConfig(config: AppConfig): { base: string; port: number | null; network: boolean; sshKey: string | undefined; privileged: boolean } {
  if (config.privileged !== undefined && typeof config.privileged !== 'boolean') throw dreError('DRE_ERR_INVALID_ARGUMENT', 'privileged must be true or false');
  const privileged = config.privileged === true;
  const base = config.base === null || config.base === undefined ? defaultBaseFor(privileged) : checkName(config.base, 'base');
  const port = config.port === null || config.port === undefined || config.port === 0 ? null : checkInt(config.port, 'port', 1, 65535);
  const sshKey = config.sshKey === undefined ? undefined : checkPublicKey(config.sshKey, 'ssh key');
  return { base, port, network: config.network !== false, sshKey, privileged };
}

export async function create(name: string, config: AppConfig = {}): Promise<void> {
  const n = checkName(name, 'container name');
  const { base, port, network, sshKey, privileged } = checkConfig(config ?? {});
  requireRoot(`create ${n}`);
  await withLock('app', n, 'create', async () => {
    if (existsSync(containerDir('app', n))) {
      throw dreError('DRE_ERR_CONTAINER_EXISTENCE', `create ${n}: an application container of that name exists`);
    }
    removeCgroups(n); // left by a destroy that was killed half-way
    const range = privileged ? null : rootIdRange();
    await ensureBuiltInBase(base);
    if (!baseExists(base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: no Base Image named ${base}`);
    requireMatchingBase(base, range, `create ${n}`);
    await withRevertAsync(async (revert) => {
      const { address } = await claimNetwork(n, network, port);
      revert.add(() => releaseNetwork(n));
      const rec: AppRecord = { name: n, base, port, address, created: new Date().toISOString(), privileged };
      // Made aside and renamed into place: a killed create leaves only a staging entry, removed next time.
      const dir = await buildAside(
        containersDir('app'),
        n,
        (staging) => {
          makeOwnedDir(join(staging, 'upper'), range);
          writeAuthorizedKeys(join(staging, 'upper'), sshKey);
          if (range) {
            shiftOwners(join(staging, 'upper'), range);
            makeOwnedDir(join(staging, 'work'), range, 0o700);
          }
          mkdirSync(join(staging, 'rootfs'), { mode: 0o755 });
          // LXC's config is written as it is (start writes it again from the record); the record is the container.
          writeFileSync(join(staging, 'config'), renderLxcConfig(rec), { mode: 0o644, flag: 'wx' });
          writeStagedFile(join(staging, 'dre.json'), jsonText(rec));
          confineDir(staging, range);
        },
        { dirMode: 0o711 },
      );
      revert.add(() => rmSync(dir, { recursive: true, force: true }));
      // A base removed while this was being made: undo (remove_base checks for users after moving the base away).
      if (!baseExists(base)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `create ${n}: Base Image ${base} was removed meanwhile`);
    });
  });
}

/** Removes the container's cgroups and its LXC monitor's, in every hierarchy. */
const removeCgroups = (name: string): void => removeContainerGroups(containerCgroup(name), [`${containerCgroup(name)}.monitor`]);

export async function destroy(name: string): Promise<void> {
  // A container whose record is damaged can still be stopped and destroyed (neither needs the record).
  await changingContainer('app', 'destroy', name, requireContainerDir, async (n, _rec, lock) => {
    const { monitor } = refuseUnless(n, 'destroy', [STATUS.STOP]);
    if (monitor === undefined) await clearLeftovers(n, 'destroy');
    removeContainerFiles('app', n);
    await forgetNetwork(n);
    unmountRegistry(n);
    rmSync(containerRunDir('app', n), { recursive: true, force: true });
    removeCgroups(n);
    lock.removeFile();
  });
}

/** The lines of LXC's log that say why a start failed: its first errors, not lxc-start's closing advice. */
export function lxcReason(log: string): string {
  const errors = log.split('\n').filter((l) => / ERROR /.test(l) && !/lxc_start\.c:main:/.test(l));
  return errors.length > 0
    ? errors
        .slice(0, 4)
        .map((l) => l.replace(/^.*? ERROR\s+/, ''))
        .join(' | ')
    : lastLines(log);
}

/** Waits (bounded) for a monitor left from the previous run to finish its clean-up, then clears what a dead one left. */
async function waitForOldMonitor(name: string, m: number | undefined): Promise<void> {
  if (m !== undefined) {
    const gone = await waitFor(() => (isAlive(m) ? undefined : true), 10_000);
    if (!gone) throw dreError('DRE_ERR_CONTAINER_BUSY', `start ${name}: LXC is still cleaning up the previous run (monitor ${m})`);
  }
  await clearLeftovers(name, 'start');
}

/** The container's groups and its monitor's that exist, in every hierarchy. */
function leftoverGroups(name: string): string[] {
  const groups = allHierarchyMounts().flatMap((mount) => [join(mount, containerCgroup(name)), join(mount, `${containerCgroup(name)}.monitor`)]);
  return groups.filter((g) => existsSync(g));
}

/**
 * Clears what a dead LXC monitor left (killed, or one that gave up a failed start): its groups, which
 * make the next lxc-start fail ("Numerical result out of range - Failed to create container cgroup",
 * or "File exists"), and any process still in them. LXC's death signal kills the container's init
 * with its monitor, but a frozen task cannot die until thawed. Only called while no monitor of the
 * container runs (LXC removes these groups itself when its monitor ends normally). Resolves to
 * whether a process was ended.
 */
export async function clearLeftovers(name: string, what: string): Promise<boolean> {
  const groups = leftoverGroups(name);
  if (groups.length === 0) return false;
  const living = () => [...new Set(groups.flatMap(treeProcesses))].filter(isAlive);
  const found = living();
  if (found.length > 0) {
    try {
      setFrozen(containerCgroup(name), false); // a frozen task's SIGKILL waits for the thaw
    } catch {
      /* no freezer group: nothing frozen */
    }
    const gone = await waitFor(
      () => {
        const pids = living();
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone meanwhile */
          }
        }
        return pids.length === 0 ? true : undefined;
      },
      10_000,
      20,
    );
    if (!gone) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${name}: processes left by a dead LXC monitor do not end: ${living().join(' ')}`);
  }
  for (const g of groups) removeGroupTree(g);
  const stuck = leftoverGroups(name);
  if (stuck.length > 0) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${name}: cannot remove the cgroups a dead LXC monitor left: ${stuck[0]}`);
  return found.length > 0;
}

export async function start(name: string): Promise<void> {
  await changing('start', name, async (n, rec, lock) => {
    const { monitor } = refuseUnless(n, 'start', [STATUS.STOP]);
    for (const dir of lowerDirs(rec)) {
      if (!existsSync(dir)) throw dreError('DRE_ERR_BASE_NONEXISTENCE', `start ${n}: its Base Image ${rec.base} is missing (${dir})`);
    }
    await waitForOldMonitor(n, monitor);
    prepareContainerAccess(n, containerIdRange(rec));
    readyCpusetPath(kindGroup('app')); // LXC makes the container's groups below it
    rmSync(monitorPidPath(n), { force: true });
    keepPreviousLog(n);
    prepareDaware(n);
    prepareNotifyDir(n);
    syncLxcConfig(rec);
    await withRevertAsync(async (revert) => {
      await prepareStart(revert, n, rec);
      const r = await run('/usr/bin/lxc-start', [...lxcArgs(n), '-d', '-p', monitorPidPath(n), '-o', lxcLogPath(n), '-l', 'ERROR'], {
        timeoutMs: 60_000,
        env: lxcStartEnv(),
        // lxc-start keeps the container locked until the container runs, even if we are killed meanwhile.
        inheritFds: [lock.fd],
      });
      if (r.code !== 0 || runningInit(n) === undefined) {
        let log = '';
        try {
          log = readFileSync(lxcLogPath(n), 'utf8');
        } catch {
          /* no log written */
        }
        throw dreError(
          'DRE_ERR_CONTAINER_STOPPED',
          `start ${n}: LXC could not start it: ${lxcReason(log || r.stderr) || `lxc-start exited ${r.code}`}`,
          engineCause('lxc-start', r, log),
        );
      }
    });
  });
}

export async function stop(name: string, opts: StopOptions = {}): Promise<void> {
  const timeoutMs = stopTimeout(opts);
  await changingContainer('app', 'stop', name, requireContainerDir, async (n, _rec, lock) => {
    const { status, monitor, init } = refuseUnless(n, 'stop', [STATUS.RUNNING, STATUS.STOP]);
    if (status === STATUS.STOP) {
      // A killed monitor's leftovers (a suspended container's frozen processes among them): ending them is this stop's work.
      const ended = monitor === undefined && (await clearLeftovers(n, 'stop'));
      closeContainerPort(n); // a forward left by a killed start or monitor goes even when there was nothing to stop
      if (!ended) refuseState(n, 'stop', status, [STATUS.RUNNING]);
      unmountRegistry(n);
      return;
    }
    // D-Aware processes first: their signal, up to the same timeout to finish their callbacks and exit.
    await terminateRegistered(n, init, timeoutMs);
    // -t: graceful halt (init's SIGUSR1), then LXC kills whatever is left when the time is up.
    const graceArgs = timeoutMs === 0 ? ['-k'] : ['-t', String(Math.ceil(timeoutMs / 1000))];
    await withRevertAsync(async (revert) => {
      // LXC's post-stop hook is left nothing to do: the forward is ended below, once LXC is done (portHookLines).
      const armed = disarmPortHook(n);
      revert.add(() => void (armed && armPortHook(n))); // should the container still run
      const r = await run('lxc-stop', [...lxcArgs(n), ...graceArgs], { timeoutMs: timeoutMs + 30_000, inheritFds: [lock.fd] });
      // LXC's monitor tears down (cgroups, post-stop hook) after lxc-stop returns: 1 ms polls, as a 10 ms one cost 5 ms of every stop on average.
      if (monitor !== undefined) await waitFor(() => (isAlive(monitor) ? undefined : true), 10_000, 1);
      if (runningInit(n) !== undefined) {
        throw dreError(
          'DRE_ERR_CONTAINER_RUNNING',
          `stop ${n}: the container is still running: ${lastLines(r.stderr) || `lxc-stop exited ${r.code}`}`,
          engineCause('lxc-stop', r),
        );
      }
    });
    unmountRegistry(n);
    closeContainerPort(n);
  });
}

async function waitForFreezer(name: string, want: 'FROZEN' | 'THAWED'): Promise<boolean> {
  // Short first polls: a freeze usually completes in well under a millisecond.
  for (let delay = 0.2, waited = 0; waited < 10_000; waited += delay, delay = Math.min(delay * 2, 50)) {
    if (freezerState(containerCgroup(name)) === want) return true;
    await sleep(delay);
  }
  return freezerState(containerCgroup(name)) === want;
}

export async function suspend(name: string): Promise<void> {
  await changing('suspend', name, async (n) => {
    refuseUnless(n, 'suspend', [STATUS.RUNNING]);
    setFrozen(containerCgroup(n), true);
    if (!(await waitForFreezer(n, 'FROZEN'))) {
      setFrozen(containerCgroup(n), false);
      throw dreError('DRE_ERR_DEVICE_BUSY', `suspend ${n}: the kernel did not finish freezing the container in 10 s; it was thawed again`);
    }
  });
}

export async function resume(name: string): Promise<void> {
  await changing('resume', name, async (n) => {
    refuseUnless(n, 'resume', [STATUS.SUSPENDED]);
    setFrozen(containerCgroup(n), false);
    if (!(await waitForFreezer(n, 'THAWED'))) {
      throw dreError('DRE_ERR_DEVICE_BUSY', `resume ${n}: the kernel did not finish thawing the container in 10 s`);
    }
  });
}

/** Runs `argv` inside the running container with the caller's stdio (lxc-attach); resolves to its exit status. */
export const exec = (name: string, argv: string[]): Promise<number> =>
  attached(
    name,
    argv,
    (args) => runInteractive('lxc-attach', args),
    (status) => status,
  );

/** Runs `argv` inside the running container with its output captured, killed after `timeoutMs`. */
export const execCapture = (name: string, argv: string[], timeoutMs = 600_000): Promise<ExecResult> =>
  attached(
    name,
    argv,
    async (args) => {
      const r = await run('lxc-attach', args, { timeoutMs }).catch((e: RunError) => {
        throw dreError('DRE_ERR_DEVICE_BUSY', `exec in ${name}: ${e.message}`, e);
      });
      return { status: r.code >= 0 ? r.code : 128 + (r.signal ? signalNumber(r.signal) : 0), stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) };
    },
    (r) => r.status,
  );

/** lxc-attach of `argv` in the running container, run by `launch`; LXC's own failures become DRE_ERR_*, the command's status stays its own. */
export async function attached<T>(name: string, argv: string[], launch: (args: string[]) => Promise<T>, statusOf: (t: T) => number): Promise<T> {
  const n = checkName(name, 'container name');
  requireRoot(`exec in ${n}`);
  requireContainer(n, 'exec in');
  if (!Array.isArray(argv) || argv.length === 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `exec in ${n}: no command given`);
  refuseUnless(n, 'exec in', [STATUS.RUNNING]);
  // LXC's own errors also go to a log of this exec's, to tell them from the command's output and status.
  const log = join(containerRunDir('app', n), `attach-${process.pid}-${++attachCount}.log`);
  mkdirSync(containerRunDir('app', n), { recursive: true, mode: 0o700 });
  try {
    const result = await launch([
      ...lxcArgs(n),
      '-o',
      log,
      '-l',
      'ERROR',
      '--clear-env',
      '--set-var',
      PATH_IN_CONTAINER,
      '--set-var',
      'HOME=/root',
      '--',
      ...argv,
    ]);
    if (statusOf(result) !== 0 && attachFailed(readLog(log))) {
      // A helper of the failed attach may still print its errors after lxc-attach itself exited: let it finish first.
      await waitFor(() => (processWithArg(log) ? undefined : true), 2_000);
      refuseFailedAttach(n, readLog(log));
    }
    return result;
  } finally {
    rmSync(log, { force: true });
  }
}

let attachCount = 0;

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** LXC's errors in an attach log, but for a command that could not be executed inside (lxc_attach_run_command, exit 127). */
function attachErrors(log: string): string[] {
  return log.split('\n').filter((l) => / ERROR /.test(l) && !/:lxc_attach_run_command:/.test(l));
}

/** Whether lxc-attach itself failed before the command ran (a command that ran keeps its own status). */
const attachFailed = (log: string) => attachErrors(log).length > 0;

/** Whether some process has `arg` among its arguments (read from /proc). */
function processWithArg(arg: string): boolean {
  return readdirSync('/proc').some((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(arg);
    } catch {
      return false; // gone
    }
  });
}

/**
 * Throws for an attach that failed: the container stopped between the state check and the attach
 * (LXC's monitor no longer answers, or its init is gone), or LXC could not attach for another reason.
 */
function refuseFailedAttach(n: string, log: string): void {
  const reason = lxcReason(log);
  if (runningInit(n) === undefined || attachErrors(log).some((l) => /Failed to get init pid/.test(l))) {
    throw dreError('DRE_ERR_CONTAINER_STOPPED', `exec in ${n}: the container stopped before the command could run (${reason})`);
  }
  throw dreError('DRE_ERR_DEVICE_BUSY', `exec in ${n}: LXC could not attach to the container: ${reason}`);
}

/** Moves the last run's LXC log aside (lxc.log.1) instead of wiping it: its stop and D-Aware lines stay readable (`dre-app logs`). */
function keepPreviousLog(n: string): void {
  try {
    renameSync(lxcLogPath(n), previousLxcLogPath(n));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The container's log files on the host, oldest first: its console, the previous run's LXC log, this run's. */
export function logFiles(name: string): Promise<LogFile[]> {
  const { n } = inspecting('read the logs of', name, requireContainer);
  return Promise.resolve([
    { source: 'console', path: consoleLogPath(n) },
    { source: 'lxc.1', path: previousLxcLogPath(n) },
    { source: 'lxc', path: lxcLogPath(n) },
  ]);
}

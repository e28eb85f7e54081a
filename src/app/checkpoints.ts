/**
 * Checkpoints of a running container (its processes and memory) through LXC's CRIU support, one
 * directory of CRIU images per checkpoint. Gated on `criu check`: where CRIU cannot work on this
 * kernel the call fails before anything is touched.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readyCpusetPath, setFrozen } from '../core/cgroup.js';
import { STATUS } from '../core/driver.js';
import { dreError, type DreErrName } from '../core/errors.js';
import { type ContainerLock } from '../core/lock.js';
import { checkName } from '../core/names.js';
import { isAlive, waitFor } from '../core/proc.js';
import { kindGroup } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { lastLines, run, RunError, engineCause } from '../core/run.js';
import { buildAside, moveAside } from '../core/staging.js';
import { listEntries } from '../core/store.js';
import { checkpointDir, checkpointsDir, containerCgroup, isMonitorOf, lxcArgs, lxcLogPath, monitorPidPath } from './layout.js';
import { changing, lxcStartEnv } from './lifecycle.js';
import { refuseUnless, requireContainer, runningInit } from './state.js';
import { containerIdRange } from './lxcconfig.js';
import { prepareContainerAccess } from './userns.js';

/** What to install where the host's CRIU fails: Debian 12's 3.17 does not know 6.x kernels' vDSO. */
export const CRIU_ADVICE = "install a CRIU that supports this kernel (Debian 13's criu 4.x)";

let verdict: Promise<{ ok: boolean; why: string }> | undefined;

/** Whether CRIU works on this host (`criu check`), asked once per process. */
export function criuWorks(): Promise<{ ok: boolean; why: string }> {
  verdict ??= run('criu', ['check'], { timeoutMs: 60_000 }).then(
    (r) => ({ ok: r.code === 0, why: lastLines(r.stderr || r.stdout, 2) || `criu check exited ${r.code}` }),
    (e: RunError) => ({ ok: false, why: `criu is not installed (${e.message})` }),
  );
  return verdict;
}

async function requireCriu(code: DreErrName, what: string): Promise<void> {
  const v = await criuWorks();
  if (!v.ok) throw dreError(code, `${what}: CRIU cannot work on this host: ${v.why}; ${CRIU_ADVICE}`);
}

/** CRIU's own account of a failure: the last lines of its log in the image directory, else the tool's stderr. */
function criuWords(dir: string, stderr: string): string {
  for (const log of ['dump.log', 'restore.log']) {
    try {
      return lastLines(readFileSync(join(dir, log), 'utf8'));
    } catch {
      /* not written */
    }
  }
  return lastLines(stderr);
}

export async function checkpoint(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'checkpoint tag');
  await changing(`checkpoint ${t} of`, name, async (n, _rec, lock) => {
    const what = `checkpoint ${t} of ${n}`;
    refuseUnless(n, `checkpoint ${t} of`, [STATUS.RUNNING]);
    if (existsSync(checkpointDir(n, t))) throw dreError('DRE_ERR_SNAPSHOT_EXISTENCE', `${what}: the container already has a checkpoint of that name`);
    await requireCriu('DRE_ERR_SAVE_SNAPSHOT_FAILED', `${what} (the container keeps running)`);
    // Dumped aside and renamed into place: a failed or killed dump is never listed.
    await buildAside(checkpointsDir(n), t, async (staging) => {
      const r = await run('lxc-checkpoint', [...lxcArgs(n), '-D', staging], { timeoutMs: 300_000, inheritFds: [lock.fd] });
      if (r.code !== 0)
        throw dreError('DRE_ERR_SAVE_SNAPSHOT_FAILED', `${what}: lxc-checkpoint failed: ${criuWords(staging, r.stderr)}`, engineCause('lxc-checkpoint', r));
    });
  });
}

/** The LXC monitor of a container started outside lxc-start (a restore), found by its command line. */
function findMonitor(name: string): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (isMonitorOf(readFileSync(`/proc/${e}/cmdline`, 'utf8'), name)) return Number(e);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Ends a running container at once, for a restore to replace it. */
async function endRun(n: string, what: string, monitor: number | undefined, lock: ContainerLock): Promise<void> {
  const r = await run('lxc-stop', [...lxcArgs(n), '-k'], { timeoutMs: 30_000, inheritFds: [lock.fd] });
  if (monitor !== undefined) await waitFor(() => (isAlive(monitor) ? undefined : true), 10_000);
  if (runningInit(n) !== undefined)
    throw dreError(
      'DRE_ERR_LOAD_SNAPSHOT_FAILED',
      `${what}: the running container could not be ended: ${lastLines(r.stderr) || `lxc-stop exited ${r.code}`}`,
      engineCause('lxc-stop', r),
    );
}

export async function restart(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'checkpoint tag');
  await changing(`restart from ${t}`, name, async (n, rec, lock) => {
    const what = `restart ${n} from checkpoint ${t}`;
    // As for system containers: running (the spec's case), suspended or stopped; it ends running at the checkpoint.
    const { status, monitor: before } = refuseUnless(n, `restart from ${t}`, [STATUS.RUNNING, STATUS.SUSPENDED, STATUS.STOP]);
    if (!existsSync(checkpointDir(n, t))) throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `${what}: no checkpoint of that name`);
    await requireCriu('DRE_ERR_LOAD_SNAPSHOT_FAILED', what);
    // CRIU restores into a stopped container: the running one is ended only now, once nothing else can refuse.
    if (status === STATUS.SUSPENDED) setFrozen(containerCgroup(n), false); // frozen tasks do not die
    if (status !== STATUS.STOP) await endRun(n, what, before, lock);
    prepareContainerAccess(n, containerIdRange(rec));
    readyCpusetPath(kindGroup('app')); // LXC makes the container's groups below it
    rmSync(monitorPidPath(n), { force: true });
    // No lock handed down here: the restored container's monitor would keep it for as long as it runs.
    const r = await run('/usr/bin/lxc-checkpoint', [...lxcArgs(n), '-r', '-D', checkpointDir(n, t), '-o', lxcLogPath(n)], {
      timeoutMs: 300_000,
      env: lxcStartEnv(),
    });
    const monitor = findMonitor(n);
    if (monitor !== undefined) writeFileSync(monitorPidPath(n), `${monitor}\n`);
    if (r.code !== 0 || runningInit(n) === undefined) {
      throw dreError(
        'DRE_ERR_LOAD_SNAPSHOT_FAILED',
        `${what}: lxc-checkpoint -r failed: ${criuWords(checkpointDir(n, t), r.stderr) || `exit ${r.code}`}`,
        engineCause('lxc-checkpoint', r),
      );
    }
  });
}

export async function listCheckpoints(name: string): Promise<string[]> {
  const n = checkName(name, 'container name');
  requireRoot(`list checkpoints of ${n}`);
  requireContainer(n, 'list checkpoints of');
  return listEntries(checkpointsDir(n));
}

export async function removeCheckpoint(name: string, tag: string): Promise<void> {
  const t = checkName(tag, 'checkpoint tag');
  await changing(`remove checkpoint ${t} of`, name, async (n) => {
    const what = `remove checkpoint ${t} of ${n}`;
    if (!existsSync(checkpointDir(n, t))) throw dreError('DRE_ERR_SNAPSHOT_NONEXISTENCE', `${what}: no checkpoint of that name`);
    try {
      rmSync(moveAside(checkpointsDir(n), t), { recursive: true, force: true });
    } catch (e) {
      throw dreError('DRE_ERR_REMOVE_SNAPSHOT_FAILED', `${what}: ${(e as Error).message}`, e);
    }
  });
}

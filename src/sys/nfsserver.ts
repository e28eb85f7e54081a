/**
 * An NFS server for sharing system containers, run by D-RE on the host that should serve the share:
 * the kernel's nfsd (exportfs) where the kernel has it, else nfs-ganesha with its VFS backend in user
 * space (plus rpcbind when none answers here). Serves one directory, read-write, no root squash.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { runRoot } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { isAlive, sleep, waitFor } from '../core/proc.js';
import { lastLines, run, engineCause } from '../core/run.js';
import { readJson, writeJsonAtomic } from '../core/store.js';
import { NfsClient } from './nfs.js';

interface ServerState {
  engine: 'kernel' | 'ganesha';
  exportDir: string;
  ganeshaPid?: number;
  rpcbindPid?: number;
}

const serverDir = () => join(runRoot(), 'nfs-server');
const statePath = () => join(serverDir(), 'server.json');
const READY_TIMEOUT_MS = 30_000;

/** The kernel serves NFS here: its nfsd file system is registered and exportfs is installed. */
export function kernelNfsd(): boolean {
  try {
    return /\bnfsd\b/.test(readFileSync('/proc/filesystems', 'utf8')) && ['/usr/sbin/exportfs', '/sbin/exportfs'].some(existsSync);
  } catch {
    return false;
  }
}

/** True when something accepts TCP on 127.0.0.1:port in this network namespace. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1_000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function ganeshaConf(exportDir: string): string {
  // No Bind_addr: ganesha refuses 127.0.0.1 there; it serves every address of its network namespace.
  return `NFS_CORE_PARAM { Protocols = 3, 4; }
NFSv4 { Graceless = true; RecoveryBackend = fs; }
EXPORT {
  Export_Id = 1; Path = ${exportDir}; Pseudo = ${exportDir};
  Access_Type = RW; Squash = No_Root_Squash; SecType = sys; Protocols = 3, 4;
  FSAL { Name = VFS; }
}
`;
}

function kill(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Serves `exportDir` over NFS from this host (and network namespace); resolves once a client can write to it. */
export async function startNfsServer(exportDir: string): Promise<'kernel' | 'ganesha'> {
  const what = `serve ${exportDir} over NFS`;
  requireRoot(what);
  if (typeof exportDir !== 'string' || !exportDir.startsWith('/') || /[\s"{};]/.test(exportDir)) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the directory must be an absolute path without spaces, quotes, braces or semicolons`);
  }
  if (!existsSync(exportDir)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: no such directory`);
  const running = readJson<ServerState>(statePath());
  if (running && (running.engine === 'kernel' || (running.ganeshaPid !== undefined && isAlive(running.ganeshaPid)))) {
    throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: this host already serves ${running.exportDir} (dre-sys nfs-server stop first)`);
  }
  mkdirSync(serverDir(), { recursive: true, mode: 0o700 });
  if (kernelNfsd()) {
    // Not exercised on the machines D-RE is tested on (no kernel nfsd there).
    const r = await run('exportfs', ['-o', 'rw,sync,no_subtree_check,no_root_squash', `*:${exportDir}`], { timeoutMs: 30_000 });
    if (r.code !== 0) throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: exportfs failed: ${lastLines(r.stderr)}`, engineCause('exportfs', r));
    writeJsonAtomic(statePath(), { engine: 'kernel', exportDir } satisfies ServerState);
    return 'kernel';
  }
  const state: ServerState = { engine: 'ganesha', exportDir };
  if (!(await answers(111))) {
    const rpcbind = spawn('rpcbind', ['-f'], { detached: true, stdio: 'ignore' });
    rpcbind.on('error', () => {});
    rpcbind.unref();
    state.rpcbindPid = rpcbind.pid;
    if (!(await waitFor(() => (answers(111) as Promise<boolean>).then((ok) => ok || undefined), 5_000, 50))) {
      kill(state.rpcbindPid);
      throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: rpcbind did not start (is another one holding /run/rpcbind.lock?)`);
    }
  }
  const conf = join(serverDir(), 'ganesha.conf');
  const log = join(serverDir(), 'ganesha.log');
  const pidFile = join(serverDir(), 'ganesha.pid');
  writeFileSync(conf, ganeshaConf(exportDir), { mode: 0o600 });
  rmSync(pidFile, { force: true });
  const r = await run('ganesha.nfsd', ['-f', conf, '-L', log, '-p', pidFile, '-N', 'NIV_EVENT'], { timeoutMs: 30_000 }).catch((e: Error) => {
    kill(state.rpcbindPid);
    throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: ganesha.nfsd could not be run (install nfs-ganesha and nfs-ganesha-vfs): ${e.message}`);
  });
  state.ganeshaPid = await waitFor(() => {
    try {
      return Number(readFileSync(pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }, 10_000);
  writeJsonAtomic(statePath(), state);
  // Ready when a write reaches the export (ganesha answers NFS3ERR_JUKEBOX while it starts).
  let last = r.code === 0 ? '' : lastLines(r.stderr);
  const end = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < end && state.ganeshaPid !== undefined && isAlive(state.ganeshaPid)) {
    try {
      const c = NfsClient.mount({ server: '127.0.0.1', exportPath: exportDir }, what);
      try {
        c.writeText('.dre-probe', 'ok');
        c.remove('.dre-probe');
        return 'ganesha';
      } finally {
        c.close();
      }
    } catch (e) {
      last = (e as Error).message;
      await sleep(200);
    }
  }
  await stopNfsServer();
  const tail = existsSync(log) ? lastLines(readFileSync(log, 'utf8'), 3) : '';
  throw dreError('DRE_ERR_NFS_MOUNT_FAILED', `${what}: ganesha did not serve it: ${last} ${tail}`.trim());
}

/** Stops what startNfsServer started here; nothing when it serves nothing. */
export async function stopNfsServer(): Promise<void> {
  requireRoot('stop the NFS server');
  const state = readJson<ServerState>(statePath());
  if (!state) return;
  if (state.engine === 'kernel') {
    await run('exportfs', ['-u', `*:${state.exportDir}`], { timeoutMs: 30_000 });
  } else {
    for (const pid of [state.ganeshaPid, state.rpcbindPid]) {
      kill(pid);
      if (pid !== undefined) await waitFor(() => (isAlive(pid) ? undefined : true), 5_000);
    }
  }
  rmSync(statePath(), { force: true });
}

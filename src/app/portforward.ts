/**
 * The host side of a container's SSH port: starts the detached forwarder (forwarder.ts) before the
 * container starts, so a taken port stops the start before anything runs, and ends it at stop/destroy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dreError } from '../core/errors.js';
import { containerRunDir } from '../core/paths.js';
import { isAlive, procStat, waitFor } from '../core/proc.js';
import { writeFileAtomic } from '../core/store.js';

/** The port SSH listens on inside the container. */
export const SSH_PORT = 22;
// From ../app/: the same file whether this module runs from dist/src/app or inlined in the CLI bundle in dist/src/bin.
const FORWARDER = fileURLToPath(new URL('../app/forwarder.js', import.meta.url));

export const forwarderPidPath = (name: string) => join(containerRunDir('app', name), 'forward.pid');
const forwarderLogPath = (name: string) => join(containerRunDir('app', name), 'forward.log');

/** The container's running forwarder, from its pid file, verified through /proc so a reused PID never counts. */
export function forwarderPid(name: string): number | undefined {
  try {
    const pid = Number(readFileSync(forwarderPidPath(name), 'utf8').trim());
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[1] === FORWARDER && argv[2] === forwarderPidPath(name) && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True once every thread of `pid` has exited. A killed Node process shows its main thread as a zombie
 * while other threads still hold its files, so "not alive" alone can leave the port listening.
 */
function exited(pid: number): boolean {
  if (isAlive(pid)) return false;
  try {
    return readdirSync(`/proc/${pid}/task`).length <= 1;
  } catch {
    return true;
  }
}

/** Ends the container's forwarder, if one runs (also one left by a killed run), and waits until it is gone. */
export async function closePort(name: string): Promise<void> {
  const pid = forwarderPid(name);
  if (pid !== undefined) {
    process.kill(pid, 'SIGKILL');
    await waitFor(() => (exited(pid) ? true : undefined), 5_000, 2);
  }
  rmSync(forwarderPidPath(name), { force: true });
}

/** A forwarder listening on the port, waiting to be told which container init to follow. */
export interface OpenPort {
  /** The container runs: forward for as long as `initPid` lives. */
  started(initPid: number): void;
  /** The start failed: close the port. */
  failed(): Promise<void>;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve('error no answer in 10 s'), 10_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.split('\n')[0]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(out.split('\n')[0] || `error exited ${code}`);
    });
  });
}

/**
 * Listens on `port` on the host for the container at `address` before it starts.
 * A port taken by another program → DRE_ERR_NO_SOCKET_AVAILABLE.
 */
export async function openPort(name: string, address: string, port: number): Promise<OpenPort> {
  await closePort(name);
  const log = openSync(forwarderLogPath(name), 'a', 0o600);
  let child: ChildProcess;
  try {
    // Detached in its own session: it outlives this process and no terminal signal reaches it.
    child = spawn(process.execPath, [FORWARDER, forwarderPidPath(name), String(port), address, String(SSH_PORT)], {
      detached: true,
      cwd: '/',
      stdio: ['pipe', 'pipe', log],
    });
  } finally {
    closeSync(log);
  }
  const answer = await firstLine(child);
  if (answer !== 'ready') {
    child.kill('SIGKILL');
    const why = answer.replace(/^error /, '');
    throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `start ${name}: host port ${port} cannot be opened for SSH (${why === 'EADDRINUSE' ? 'another program uses it' : why})`);
  }
  writeFileAtomic(forwarderPidPath(name), `${child.pid}\n`);
  const letGo = () => {
    child.stdout!.destroy();
    child.unref();
  };
  return {
    started(initPid) {
      child.stdin!.end(`${initPid} ${procStat(initPid)?.startTime ?? 0}\n`);
      letGo();
    },
    async failed() {
      child.stdin!.destroy();
      letGo();
      await closePort(name);
    },
  };
}

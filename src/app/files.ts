/**
 * Files in and out of an application container (`push`, `pull`). Every path inside the container is
 * opened by a process inside it, never by the host: in a running container through lxc-attach, in a
 * stopped one through lxc-execute (a short-lived instance of the same config, its user namespace and
 * root included, without network, under the container's lock). So a link the container's root planted
 * resolves inside the container's own root, and the host's writes go only to the host path the caller
 * named. The data streams through the attached process's stdin or stdout (binary-safe, any size);
 * owners are the ids as seen inside (through the container's id map), modes are kept.
 */
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { STATUS } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkInt, checkName } from '../core/names.js';
import { containerRunDir } from '../core/paths.js';
import { requireRoot } from '../core/privilege.js';
import { withRevertAsync } from '../core/revert.js';
import { lastLines, run, type RunOptions, type RunResult } from '../core/run.js';
import { lxcArgs } from './layout.js';
import { attached, changing, lxcReason } from './lifecycle.js';
import { containerIdRange, syncLxcConfig } from './lxcconfig.js';
import { refuseUnless, requireContainer } from './state.js';
import { prepareContainerAccess } from './userns.js';

export interface PushOptions {
  /** Owner inside the container; default: the host file's uid (gid) number. */
  uid?: number;
  gid?: number;
  /** Permission bits; default: the host file's. */
  mode?: number;
}

/** A transfer is given this long (a few GiB at the speed of a pipe). */
const TRANSFER_TIMEOUT_MS = 30 * 60_000;
const SH_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// $1 destination, $2 uid:gid, $3 octal mode, $4 the source's name (used when $1 is a directory).
// Written aside and renamed over the destination: a reader never sees half a file.
const PUSH_SCRIPT = `set -e; ${SH_PATH}
d=$1; [ -d "$d" ] && d=$d/$4
t=$d.dre-push.$$
trap 'rm -f "$t"' EXIT
cat > "$t"
chown "$2" "$t"
chmod "$3" "$t"
mv -f "$t" "$d"
trap - EXIT`;

// $1 the file: "uid gid octal-mode size" of a regular file (links followed inside the container), else exit 3.
const STAT_SCRIPT = `${SH_PATH}
[ -f "$1" ] || { echo "$1: no such regular file in the container" >&2; exit 3; }
exec stat -L -c '%u %g %a %s' -- "$1"`;
// $1 the file, $2 its size: at most that many bytes.
const READ_SCRIPT = `${SH_PATH}
exec head -c "$2" -- "$1"`;

/** An absolute path inside the container: no NUL, not empty. */
function checkInsidePath(p: unknown, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0') || p.length > 4096) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the path inside the container must be absolute, not ${JSON.stringify(p)}`);
  }
  return p;
}

/**
 * Runs `sh -c script sh args...` inside the container: attached to a running one, in a short-lived
 * instance of a stopped one (lxc-execute, holding the container's lock). A failure of LXC itself is
 * DRE_ERR_DEVICE_BUSY (DRE_ERR_CONTAINER_STOPPED when a running one stopped meanwhile); the script's
 * own status is returned.
 */
async function inContainer(name: string, what: string, script: string, args: string[], io: RunOptions): Promise<RunResult> {
  const argv = ['/bin/sh', '-c', script, 'sh', ...args];
  const opts = { ...io, timeoutMs: TRANSFER_TIMEOUT_MS };
  const { status } = refuseUnless(name, what, [STATUS.RUNNING, STATUS.STOP]);
  if (status === STATUS.RUNNING)
    return attached(
      name,
      argv,
      (a) => run('lxc-attach', a, opts),
      (r) => r.code,
    );
  return changing(what, name, async (n, rec, lock) => {
    refuseUnless(n, what, [STATUS.STOP]);
    prepareContainerAccess(n, containerIdRange(rec));
    syncLxcConfig(rec);
    const log = join(containerRunDir('app', n), `execute-${process.pid}.log`);
    try {
      // No network: the container's address and port stay free for a start; its user namespace and root are its own.
      const r = await run('lxc-execute', [...lxcArgs(n), '-s', 'lxc.net=', '-o', log, '-l', 'ERROR', '--', ...argv], { ...opts, inheritFds: [lock.fd] });
      const lxcLog = r.code === 0 ? '' : readLog(log);
      if (/ ERROR /.test(lxcLog))
        throw dreError('DRE_ERR_DEVICE_BUSY', `${what}: LXC could not run a helper in the stopped container: ${lxcReason(lxcLog)}`, r);
      return r;
    } finally {
      rmSync(log, { force: true });
    }
  });
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The common checks: root, a valid existing container, an absolute path inside. */
function begin(verb: string, name: unknown, inside: unknown): { n: string; path: string; what: string } {
  const n = checkName(name, 'container name');
  const what = `${verb} ${n}`;
  requireRoot(what);
  requireContainer(n, verb);
  return { n, path: checkInsidePath(inside, what), what };
}

/**
 * Copies the host file `src` to `dst` inside the container (into it when `dst` is a directory), with
 * its mode and its owner numbers as ids inside, unless `opts` says otherwise.
 */
export async function push(name: string, src: string, dst: string, opts: PushOptions = {}): Promise<void> {
  const { n, path, what } = begin('push to', name, dst);
  if (typeof src !== 'string' || src === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: no host file given`);
  let fd: number;
  try {
    fd = openSync(resolve(src), fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: cannot open ${src}: ${(e as Error).message}`, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${src} is not a regular file`);
    const o = opts ?? {};
    const uid = o.uid === undefined ? st.uid : checkInt(o.uid, 'uid', 0, 65535);
    const gid = o.gid === undefined ? st.gid : checkInt(o.gid, 'gid', 0, 65535);
    const mode = o.mode === undefined ? st.mode & 0o7777 : checkInt(o.mode, 'mode', 0, 0o7777);
    const r = await inContainer(n, what, PUSH_SCRIPT, [path, `${uid}:${gid}`, mode.toString(8), basename(src)], { stdinFd: fd });
    if (r.code !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: writing ${path} inside failed: ${lastLines(r.stderr) || `status ${r.code}`}`, r);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies the regular file `src` inside the container to the host path `dst` (into it when `dst` is a
 * directory), with its mode and its owner numbers as seen inside. Written aside and renamed: a failed
 * pull leaves the destination as it was.
 */
export async function pull(name: string, src: string, dst: string): Promise<void> {
  const { n, path, what } = begin('pull from', name, src);
  if (typeof dst !== 'string' || dst === '') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: no host path given`);
  let target = resolve(dst);
  try {
    if (statSync(target).isDirectory()) target = join(target, basename(path));
  } catch {
    /* a new file */
  }
  const meta = await inContainer(n, what, STAT_SCRIPT, [path], {});
  const m = /^(\d+) (\d+) ([0-7]+) (\d+)\s*$/.exec(meta.stdout);
  if (meta.code !== 0 || !m) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${lastLines(meta.stderr) || `cannot read ${path}`}`, meta);
  const [uid, gid, mode, size] = [Number(m[1]), Number(m[2]), parseInt(m[3], 8), Number(m[4])];
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.dre-pull-${process.pid}`;
  await withRevertAsync(async (revert) => {
    const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    revert.add(() => rmSync(tmp, { force: true }));
    let written = 0;
    try {
      // At most the size stat gave: a container that sends more is cut off (never fills the host's disk).
      const r = await inContainer(n, what, READ_SCRIPT, [path, String(size)], {
        onStdout: (chunk) => {
          if (written + chunk.length > size) return false;
          writeSync(fd, chunk);
          written += chunk.length;
        },
      });
      if (r.code !== 0 || written !== size) {
        throw dreError(
          'DRE_ERR_INVALID_ARGUMENT',
          `${what}: reading ${path} gave ${written} of its ${size} bytes${r.stderr ? `: ${lastLines(r.stderr)}` : ''}`,
          r,
        );
      }
      fchownSync(fd, uid, gid);
      fchmodSync(fd, mode);
      fsyncSync(fd);
      renameSync(tmp, target);
    } finally {
      closeSync(fd);
    }
  });
}

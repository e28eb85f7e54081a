/**
 * Files into and out of a running guest through its agent (`dre-sys push/pull`): the data travels
 * as the stdin and stdout of agent requests, in chunks (the guest holds one chunk in its /run at a
 * time, and an answer is one line), so a file larger than the guest's RAM passes. The file's mode
 * (permission bits) goes with it; the destination appears whole or not at all (a part file beside it,
 * renamed at the end).
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, chmodSync, writeSync, constants } from 'node:fs';
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { withRevertAsync } from '../core/revert.js';
import { shellQuote } from './agent.js';
import { execCapture } from './lifecycle.js';

/** Bytes per request: 4 MiB (5.6 MB of base64 on an answer line); 100 MiB is 25 requests. */
const CHUNK = 4 * 2 ** 20;
const CHUNK_TIMEOUT_MS = 120_000;

function checkPath(p: unknown, what: string): string {
  if (typeof p !== 'string' || p.length === 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be a path`);
  if (p.length > 4096) throw dreError('DRE_ERR_REQUEST_TOO_LONG', `${what} is longer than 4096 characters`);
  return p;
}

/** Runs a sh script in the guest; a failure → DRE_ERR_INVALID_ARGUMENT with what the guest said. */
async function guestSh(n: string, script: string, what: string, stdin?: Buffer): Promise<Buffer> {
  const r = await execCapture(n, ['sh', '-c', script], CHUNK_TIMEOUT_MS, stdin);
  if (r.status !== 0) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${r.stderr.toString().trim() || `exit status ${r.status}`}`, r);
  return r.stdout;
}

/** Copies host file `src` to `dst` in the running guest, with its mode. */
export async function push(name: string, src: string, dst: string): Promise<void> {
  const n = checkName(name, 'container name');
  const what = `push to ${n}:${dst}`;
  checkPath(src, 'source');
  checkPath(dst, 'destination');
  let fd: number;
  try {
    fd = openSync(src, constants.O_RDONLY);
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${src} cannot be read (${(e as NodeJS.ErrnoException).code})`, e);
  }
  const part = `${dst}.dre-part`;
  try {
    await withRevertAsync(async (revert) => {
      const st = fstatSync(fd);
      if (!st.isFile()) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${src} is not a regular file`);
      const q = shellQuote(part);
      revert.add(() => execCapture(n, ['rm', '-f', part], CHUNK_TIMEOUT_MS));
      await guestSh(n, `: > ${q}`, what);
      const buf = Buffer.alloc(CHUNK);
      for (let off = 0; off < st.size;) {
        const got = readSync(fd, buf, 0, CHUNK, off);
        if (got === 0) break; // shrank meanwhile
        await guestSh(n, `cat >> ${q}`, what, buf.subarray(0, got));
        off += got;
      }
      const mode = (st.mode & 0o7777).toString(8);
      await guestSh(n, `chmod ${mode} ${q} && mv -f ${q} ${shellQuote(dst)}`, what);
    });
  } finally {
    closeSync(fd);
  }
}

/** Copies file `src` of the running guest to host path `dst`, with its mode. */
export async function pull(name: string, src: string, dst: string): Promise<void> {
  const n = checkName(name, 'container name');
  const what = `pull from ${n}:${src}`;
  checkPath(src, 'source');
  checkPath(dst, 'destination');
  const q = shellQuote(src);
  const [size, mode] = (await guestSh(n, `[ -f ${q} ] || { echo "not a regular file" >&2; exit 1; }; stat -c '%s %a' ${q}`, what)).toString().trim().split(' ');
  const part = `${dst}.dre-part`;
  await withRevertAsync(async (revert) => {
    let fd: number;
    try {
      fd = openSync(part, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: ${part} cannot be written (${(e as NodeJS.ErrnoException).code})`, e);
    }
    revert.add(() => rmSync(part, { force: true }));
    try {
      for (let i = 0; i * CHUNK < Number(size); i++) {
        const data = await guestSh(n, `dd if=${q} bs=${CHUNK} skip=${i} count=1 2>/dev/null`, what);
        writeSync(fd, data, 0, data.length, i * CHUNK);
      }
    } finally {
      closeSync(fd);
    }
    chmodSync(part, parseInt(mode, 8));
    renameSync(part, dst);
  });
}

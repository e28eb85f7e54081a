/**
 * QEMU's confinement: the unprivileged user it runs as and the few files and directories given to
 * that user (the command line that starts it, without capabilities and under QEMU's seccomp
 * sandbox, is machine.ts's confinedCommand).
 * As libvirt does, D-RE (root) prepares the files and then runs QEMU as the user; QEMU's own
 * `-runas` is not used (it would still start as root and drop privileges only after set-up).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, constants, copyFileSync, existsSync, mkdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { addSearch, makeOwnedDir } from '../core/access.js';
import { dreError } from '../core/errors.js';
import { runRoot, stateRoot } from '../core/paths.js';
import { tlsStagingDir } from './layout.js';
import type { QemuUser } from './machine.js';

/** The system user every QEMU of D-RE runs as (made by scripts/setup.sh). */
export const QEMU_USER = 'dre-qemu';

let known: QemuUser | undefined;

/** The QEMU user from the system's user database; missing → DRE_ERR_PERMISSION_DENIED naming the set-up. */
export function qemuUser(what: string): QemuUser {
  if (known) return known;
  const r = spawnSync('getent', ['passwd', QEMU_USER], { encoding: 'utf8', timeout: 5_000 });
  const fields = r.status === 0 ? r.stdout.trim().split(':') : [];
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (fields.length < 4 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw dreError(
      'DRE_ERR_PERMISSION_DENIED',
      `${what}: QEMU's unprivileged user ${QEMU_USER} does not exist; run the set-up (bash scripts/setup.sh) or ` +
        `useradd --system --no-create-home --shell /usr/sbin/nologin ${QEMU_USER}; D-RE does not run QEMU as root`,
    );
  }
  if (uid === 0 || gid === 0) throw dreError('DRE_ERR_PERMISSION_DENIED', `${what}: user ${QEMU_USER} has uid ${uid} gid ${gid}; QEMU must not run with id 0`);
  known = { name: QEMU_USER, uid, gid };
  return known;
}

/** True when the user may pass (search) a directory with status `st` by its mode bits. */
function searchable(st: Stats, user: QemuUser): boolean {
  if (st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === user.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * The directories above D-RE's roots are not D-RE's to change: each must let the user pass, or the
 * start fails saying which one (QEMU would only say "Permission denied" on its first file).
 */
function requireAncestorsSearchable(root: string, user: QemuUser, what: string): void {
  for (let dir = dirname(resolve(root)); ; dir = dirname(dir)) {
    const st = statSync(dir);
    if (!searchable(st, user)) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      throw dreError(
        'DRE_ERR_PERMISSION_DENIED',
        `${what}: QEMU runs as ${user.name}, which cannot pass ${dir} (mode ${mode}) on the way to ${root}: chmod o+x ${dir}, or use a DRE_ROOT/DRE_RUNDIR below directories others may pass`,
      );
    }
    if (dir === '/') return;
  }
}

/** The roots (stateRoot, runRoot) whose ancestors this process found passable: directories above D-RE's roots do not change under it. */
let passableAbove: string | undefined;

/**
 * D-RE's two roots are shared with application containers: the way to each must be open to the user
 * (checked once per process and pair of roots, like rootIdRange), and each root gets search added for
 * others (no listing), no bit taken away (every start: a root made again would have lost it).
 */
function openRootsTo(user: QemuUser, roots: string[], what: string): void {
  const key = JSON.stringify(roots);
  if (passableAbove !== key) {
    for (const root of roots) requireAncestorsSearchable(root, user, what);
    passableAbove = key;
  }
  for (const root of roots) addSearch(root, 0o001);
}

/** What one QEMU is given before it runs. */
export interface Grant {
  /** The container's run dir: QEMU makes its QMP, agent and console sockets, pid file and console log there. */
  runDir: string;
  /** Local disk images QEMU writes (the container's overlay). */
  writable: string[];
  /** Files QEMU only reads: the base's kernel, initramfs and backing image. */
  readable: string[];
}

/**
 * Prepares the files of one QEMU for the user, and nothing more: every directory on the way may be
 * passed but not listed, the rest of D-RE's state stays root-only (records, shares, locks, other
 * bases' metadata).
 */
export function grantFiles(user: QemuUser, g: Grant, what: string): void {
  const roots = [stateRoot(), runRoot()];
  openRootsTo(user, roots, what);
  // Every directory between a root and a granted file (sys/, containers/, the container's, bases/, the base's).
  const dirs = new Set<string>();
  for (const f of [...g.writable, ...g.readable, g.runDir]) {
    const root = roots.find((r) => resolve(f).startsWith(resolve(r) + '/'));
    if (!root) continue; // outside D-RE's roots (a --rootfs image is passed to QEMU as an open file instead)
    for (let d = dirname(resolve(f)); d !== resolve(root); d = dirname(d)) dirs.add(d);
  }
  // Only QEMU's group may pass them, and nobody but root may list them: root:dre-qemu 0710.
  for (const d of dirs) makeOwnedDir(d, { uid: 0, gid: user.gid }, 0o710);
  // The run dir is QEMU's own: it binds its sockets and writes its pid file and console log there.
  makeOwnedDir(g.runDir, user, 0o700);
  // The container's disk: QEMU writes the guest's blocks, snapshots and checkpoints into it.
  for (const f of g.writable) {
    chownSync(f, user.uid, user.gid);
    chmodSync(f, 0o600);
  }
  // A base is shared by containers: QEMU may read it, never change it.
  for (const f of g.readable) {
    chownSync(f, 0, user.gid);
    chmodSync(f, 0o640);
  }
}

/** QEMU's x509 file names; QEMU reads those of its endpoint (and a CRL and DH parameters when present). */
const TLS_FILES = ['ca-cert.pem', 'ca-crl.pem', 'server-cert.pem', 'server-key.pem', 'client-cert.pem', 'client-key.pem', 'dh-params.pem'];

/**
 * The user's TLS credentials copied (by root) for QEMU: root:dre-qemu 0440 in a root:dre-qemu 0710
 * directory beside the run dir (not inside it: QEMU owns the run dir and could swap in a symlink that
 * root would then write through). The user's own files keep their modes. Returns the directory; the
 * caller removes it (removeTlsCredentials) once QEMU has loaded the credentials.
 */
export function stageTlsCredentials(user: QemuUser, fromDir: string, runDir: string): string {
  const dir = tlsStagingDir(runDir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  for (const f of TLS_FILES) {
    if (!existsSync(join(fromDir, f))) continue;
    const to = join(dir, f);
    copyFileSync(join(fromDir, f), to, constants.COPYFILE_EXCL);
    chownSync(to, 0, user.gid);
    chmodSync(to, 0o440);
  }
  chownSync(dir, 0, user.gid);
  chmodSync(dir, 0o710);
  return dir;
}

export function removeTlsCredentials(runDir: string): void {
  rmSync(tlsStagingDir(runDir), { recursive: true, force: true });
}

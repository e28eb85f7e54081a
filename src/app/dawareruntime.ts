/**
 * What a container needs for D-Aware programs: the registry at /run/daware (on a /run tmpfs LXC
 * mounts, so init never hides it) and, read-only at /opt/dre, the host's Node with its own C library
 * and this package. The host's node is dynamically linked and the base (busybox by default) may have
 * no C library, or another one: so the host's library directory is bound at /opt/dre/lib and
 * /opt/dre/bin/node runs node through the host's dynamic loader from there (`ld.so --library-path`),
 * never touching the container's own /lib. The runtime is one tree of read-only, nosuid, nodev bind
 * mounts made on the host (once per run dir), which LXC binds recursively: mounts the container inherits
 * from the host have their flags locked by the kernel in a user namespace, so its root cannot remount
 * them read-write (binds LXC made inside the namespace could be). The bind is optional, so a container
 * still starts when the runtime is missing.
 * Beside Node: libdaware for C (/opt/dre/c: include, lib, lib/pkgconfig; /opt/dre/bin/daware-register)
 * from this package's c/daware build, and the host's python3 with its standard library
 * (/opt/dre/bin/python3, the same loader trick) with python/daware.py on its path.
 */
import { closeSync, existsSync, mkdirSync, openSync, readlinkSync, readSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bindReadOnly, isReadOnlyBind, mountTable, MS_NODEV, MS_NOSUID, unmount } from '../core/mounts.js';
import { runRoot } from '../core/paths.js';
import { writeIfChanged } from '../core/store.js';
import { mountRegistry, registryDir } from './registrydir.js';

/** Where the runtime appears inside the container. */
export const DAWARE_OPT = '/opt/dre';

/** The host directory mounted at /opt/dre: the wrapper, an ESM entry point, and the mount points. */
export function runtimeDir(): string {
  return join(runRoot(), 'daware-runtime');
}

interface HostRuntime {
  node: string;
  libDir: string;
  loader: string;
  pkg: string;
  koffi: string;
  koffiNative: string;
  /** The host's python3 and its standard library directory, when it has one. */
  python?: { exe: string; stdlib: string };
}

/** Debian's python3 (the interpreter D-RE binds in: its libraries are all in the host's libDir). */
const HOST_PYTHON = '/usr/bin/python3';

function hostPython(): HostRuntime['python'] {
  try {
    const exe = realpathSync(HOST_PYTHON);
    const stdlib = join('/usr/lib', basename(exe));
    return existsSync(join(stdlib, 'os.py')) ? { exe, stdlib } : undefined;
  } catch {
    return undefined;
  }
}

/** The program interpreter (PT_INTERP) of an ELF64 little-endian executable. */
function elfInterpreter(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const read = (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      return b.subarray(0, readSync(fd, b, 0, len, pos));
    };
    const h = read(0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    for (let i = 0; i < h.readUInt16LE(56); i++) {
      const ph = read(phoff + i * phentsize, phentsize);
      if (ph.readUInt32LE(0) !== 3) continue; // PT_INTERP
      return read(Number(ph.readBigUInt64LE(8)), Number(ph.readBigUInt64LE(32)))
        .toString('latin1')
        .replace(/\0.*$/s, '');
    }
  } finally {
    closeSync(fd);
  }
  throw new Error(`${file} has no program interpreter`);
}

let host: HostRuntime | undefined;

/** The host paths to bind, found once: node, its loader's directory, this package, koffi and its native part. */
function hostRuntime(): HostRuntime {
  if (!host) {
    const node = realpathSync(process.execPath);
    const loader = realpathSync(elfInterpreter(node));
    const koffi = realpathSync(dirname(createRequire(import.meta.url).resolve('koffi')));
    host = {
      node,
      libDir: dirname(loader),
      loader: basename(loader),
      pkg: realpathSync(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')),
      koffi,
      // koffi loads its prebuilt binary from this sibling package (see koffi's loader).
      koffiNative: join(dirname(koffi), '@koromix', `koffi-${process.platform}-${process.arch}`),
      python: hostPython(),
    };
  }
  return host;
}

/** A path as a field of an fstab-style mount entry (spaces and the like as octal escapes). */
export const field = (p: string) => p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
/** Where the host's Python standard library goes, relative to /opt/dre (PYTHONHOME is /opt/dre/python). */
const pythonStdlibAt = () => join('python', 'lib', basename(hostRuntime().python!.stdlib));
/** Where koffi's native package goes, relative to /opt/dre. */
const koffiNativeAt = () => `node_modules/@koromix/${basename(hostRuntime().koffiNative)}`;

/** The LXC config lines: /run tmpfs, the bind of the registry tmpfs, and the read-only runtime tree. */
export function dawareMountEntries(name: string): string[] {
  return [
    '# D-Aware: the registry at /run/daware, the host Node runtime and this package at /opt/dre.',
    'lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=0755,create=dir 0 0',
    `lxc.mount.entry = ${field(registryDir(name))} run/daware none bind,nosuid,nodev,noexec,create=dir,optional 0 0`,
    `lxc.mount.entry = ${field(runtimeDir())} opt/dre none rbind,ro,nosuid,nodev,create=dir,optional 0 0`,
  ];
}

/** The host's mount points at or below `dir`. */
const mountsBelow = (dir: string): string[] => mountTable().flatMap((m) => (m.at === dir || m.at.startsWith(`${dir}/`) ? [m.at] : []));

/**
 * Lays out the runtime tree and its host mounts (idempotent; shared by the containers of this D-RE): a
 * few stats when they are in place (isReadOnlyBind); a mount missing or left read-write by a killed
 * lay-out makes it lay the tree out again.
 */
function ensureRuntimeDir(): void {
  const h = hostRuntime();
  const dir = runtimeDir();
  const binds: [string, string][] = [
    [dir, dir],
    [h.libDir, join(dir, 'lib')],
    [h.node, join(dir, 'bin', 'node.bin')],
    [h.pkg, join(dir, 'node_modules', 'dre')],
    [h.koffi, join(dir, 'node_modules', 'koffi')],
    ...(existsSync(h.koffiNative) ? [[h.koffiNative, join(dir, koffiNativeAt())] as [string, string]] : []),
    ...(h.python
      ? ([
          [h.python.exe, join(dir, 'bin', 'python3.bin')],
          [h.python.stdlib, join(dir, pythonStdlibAt())],
        ] as [string, string][])
      : []),
  ];
  const links: [string, string][] = [
    // libdaware's staged install (c/daware/build/root, made by set-up's make) as seen through the package bind.
    ['node_modules/dre/c/daware/build/root', join(dir, 'c')],
    ['../c/bin/daware-register', join(dir, 'bin', 'daware-register')],
  ];
  const linked = ([to, at]: [string, string]) => {
    try {
      return readlinkSync(at) === to;
    } catch {
      return false;
    }
  };
  if (binds.every(([source, target]) => isReadOnlyBind(source, target)) && links.every(linked)) return;
  // Unmount what a killed lay-out left, deepest first, then lay it out again.
  for (const at of mountsBelow(dir).sort((a, b) => b.length - a.length)) unmount(at);
  for (const d of ['bin', 'lib', 'node_modules/dre', 'node_modules/koffi', koffiNativeAt(), ...(h.python ? [pythonStdlibAt()] : [])]) {
    mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  }
  closeSync(openSync(join(dir, 'bin', 'node.bin'), 'a', 0o755));
  if (h.python) closeSync(openSync(join(dir, 'bin', 'python3.bin'), 'a', 0o755));
  for (const link of links) {
    if (linked(link)) continue;
    rmSync(link[1], { force: true });
    symlinkSync(...link);
  }
  writeIfChanged(
    join(dir, 'bin', 'node'),
    [
      '#!/bin/sh',
      "# Written by D-RE: the host's node, on the host's C library, whatever the container's own /lib holds.",
      `exec ${DAWARE_OPT}/lib/${h.loader} --library-path ${DAWARE_OPT}/lib --argv0 "$0" ${DAWARE_OPT}/bin/node.bin "$@"`,
      '',
    ].join('\n'),
    0o755,
  );
  if (h.python) {
    writeIfChanged(
      join(dir, 'bin', 'python3'),
      [
        '#!/bin/sh',
        "# Written by D-RE: the host's python3 and standard library on the host's C library; daware.py on its path.",
        `export PYTHONHOME=${DAWARE_OPT}/python`,
        `export PYTHONPATH=${DAWARE_OPT}/node_modules/dre/python\${PYTHONPATH:+:\$PYTHONPATH}`,
        `exec ${DAWARE_OPT}/lib/${h.loader} --library-path ${DAWARE_OPT}/lib --argv0 "$0" ${DAWARE_OPT}/bin/python3.bin "$@"`,
        '',
      ].join('\n'),
      0o755,
    );
  }
  writeIfChanged(join(dir, 'package.json'), '{ "type": "module" }\n', 0o644);
  writeIfChanged(join(dir, 'daware.js'), "export * from './node_modules/dre/dist/src/daware/index.js';\n", 0o644);
  for (const [source, target] of binds) bindReadOnly(source, target, MS_NOSUID | MS_NODEV);
}

/** Before each start: an empty registry (its own tmpfs) for the new run, and the runtime directory in place. */
export function prepareDaware(name: string): void {
  mountRegistry(name);
  try {
    ensureRuntimeDir();
  } catch {
    /* no Node runtime on this host (the config says why): the container starts without /opt/dre */
  }
}

/** `dre-app` commands that bring systems and files in and out: Base Image builds and imports. */
import { dreError } from '../core/errors.js';
import { lazy } from './commands.js';
import { intArg, parse, type Command } from './common.js';

const app = lazy(() => import('../app/driver.js').then((m) => m.appDriver));

/** mmdebstrap's own progress display on a terminal; its lines, prefixed, otherwise (logs, CI). */
const progress = () => (process.stderr.isTTY ? ('inherit' as const) : (line: string) => process.stderr.write(`dre-app: ${line}\n`));

const baseCommand: Command = {
  name: 'base',
  usage: 'build debian [--release RELEASE] [--include PKG,...] [NAME] | import NAME ROOTFS [--oci] [--tag TAG]',
  summary:
    'make a Base Image: build debian (mmdebstrap from the Debian archive; NAME defaults to debian), or import a root ' +
    'file system (directory or tarball) or an OCI image (layout directory or oci-archive; found out by itself, or --oci)',
  run: async (args) => {
    const [verb, ...rest] = args;
    if (verb === 'build') {
      const { values, positionals } = parse(rest, { release: { type: 'string' }, include: { type: 'string' } }, 1);
      const [flavour, name] = positionals;
      if (flavour !== 'debian') throw dreError('DRE_ERR_INVALID_ARGUMENT', `base build: only "debian" can be built, not ${JSON.stringify(flavour)}`);
      const include = values.include === undefined ? [] : values.include.split(',').filter(Boolean);
      await app.buildDebianBase(name ?? 'debian', { release: values.release, include, progress: progress() });
      return;
    }
    if (verb === 'import') {
      const { values, positionals } = parse(rest, { oci: { type: 'boolean' }, tag: { type: 'string' } }, 2);
      await app.importBase(positionals[0], positionals[1], { format: values.oci ? 'oci' : undefined, tag: values.tag });
      return;
    }
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `base: expected build or import, not ${JSON.stringify(verb)}; see dre-app base --help`);
  },
};

const modeArg = (text: string | undefined) => {
  if (text === undefined) return undefined;
  if (!/^[0-7]{1,4}$/.test(text)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `--mode must be octal permission bits, not ${JSON.stringify(text)}`);
  return parseInt(text, 8);
};

const pushCommand: Command = {
  name: 'push',
  usage: 'NAME HOST_FILE PATH [--uid UID] [--gid GID] [--mode OCTAL]',
  summary: 'copy a host file into a container (running or stopped), keeping its mode and owner numbers unless told',
  run: async (args) => {
    const opts = { uid: { type: 'string' }, gid: { type: 'string' }, mode: { type: 'string' } } as const;
    const { values, positionals: [n, src, dst] } = parse(args, opts, 3);
    await app.push(n, src, dst, { uid: intArg(values.uid, '--uid'), gid: intArg(values.gid, '--gid'), mode: modeArg(values.mode) });
  },
};

const pullCommand: Command = {
  name: 'pull',
  usage: 'NAME PATH HOST_FILE',
  summary: 'copy a file out of a container (running or stopped) to the host, with its mode and owner numbers as seen inside',
  run: async (args) => {
    const { positionals: [n, src, dst] } = parse(args, {}, 3);
    await app.pull(n, src, dst);
  },
};

const exportCommand: Command = {
  name: 'export',
  usage: 'NAME FILE [--zstd]',
  summary: 'write a stopped container, its snapshots and its Base Images into one file (zstd with --zstd or a .zst/.tzst name; docs/export-format.md)',
  run: async (args) => {
    const { values, positionals: [n, file] } = parse(args, { zstd: { type: 'boolean' } }, 2);
    await app.exportContainer(n, file, { compress: values.zstd ? true : undefined });
  },
};

const importCommand: Command = {
  name: 'import',
  usage: 'FILE [NEWNAME]',
  summary: 'make a container from an exported file (every member checked against its sha256 first), under its own name or NEWNAME',
  run: async (args) => {
    const { positionals: [file, name] } = parse(args, {}, 1);
    process.stdout.write(`${await app.importContainer(file, name)}\n`);
  },
};

/** The commands of this file, spread into dre-app's list. */
export const transferCommands: Command[] = [baseCommand, pushCommand, pullCommand, exportCommand, importCommand];

/** `dre-app` commands that bring systems and files in and out: Base Image builds and imports, push/pull, export/import. */
import { dreError } from '../core/errors.js';
import { archiveCommands, lazy } from './commands.js';
import { intArg } from './common.js';
import type { CommandSpec } from './framework.js';

const app = lazy(() => import('../app/driver.js').then((m) => m.appDriver));

/** mmdebstrap's own progress display on a terminal; its lines, prefixed, otherwise (logs, CI). */
const progress = () => (process.stderr.isTTY ? ('inherit' as const) : (line: string) => process.stderr.write(`dre-app: ${line}\n`));

const modeArg = (text: string | boolean | undefined) => {
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || !/^[0-7]{1,4}$/.test(text))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `--mode must be octal permission bits, not ${JSON.stringify(text)}`);
  return parseInt(text, 8);
};

/** The commands of this file, spread into dre-app's list. */
export const transferCommands: CommandSpec[] = [
  {
    name: 'base build',
    args: 'FLAVOUR [NAME]',
    summary: 'build a Base Image from the Debian archive with mmdebstrap (FLAVOUR: debian; NAME defaults to debian), with progress on a terminal',
    options: { '--release RELEASE': 'the Debian release (default bookworm)', '--include PKGS': 'more packages, comma-separated' },
    run: async ([flavour, name], o) => {
      if (flavour !== 'debian') throw dreError('DRE_ERR_INVALID_ARGUMENT', `base build: only "debian" can be built, not ${JSON.stringify(flavour)}`);
      const include = typeof o.include === 'string' ? o.include.split(',').filter(Boolean) : [];
      await app.buildDebianBase(name ?? 'debian', { release: o.release as string | undefined, include, progress: progress() });
    },
  },
  {
    name: 'base import',
    args: 'NAME ROOTFS',
    summary: 'make a Base Image of a root file system (directory or tarball) or an OCI image (layout directory or oci-archive; found out by itself, or --oci)',
    options: { '--oci': 'ROOTFS is an OCI image', '--tag TAG': "the OCI image's tag (default: its only one)" },
    run: async ([name, rootfs], o) => {
      await app.importBase(name, rootfs, { format: o.oci ? 'oci' : undefined, tag: o.tag as string | undefined });
    },
  },
  {
    name: 'push',
    args: 'NAME HOST_FILE PATH',
    summary: 'copy a host file into a container (running or stopped), keeping its mode and owner numbers unless told',
    options: { '--uid UID': 'owner inside the container', '--gid GID': 'group inside the container', '--mode OCTAL': 'permission bits' },
    run: async ([n, src, dst], o) => {
      await app.push(n, src, dst, { uid: intArg(o.uid, '--uid'), gid: intArg(o.gid, '--gid'), mode: modeArg(o.mode) });
    },
  },
  {
    name: 'pull',
    args: 'NAME PATH HOST_FILE',
    summary: 'copy a file out of a container (running or stopped) to the host, with its mode and owner numbers as seen inside',
    run: async ([n, src, dst]) => {
      await app.pull(n, src, dst);
    },
  },
  ...archiveCommands(app, 'its snapshots and its Base Images'),
];

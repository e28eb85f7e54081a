/** `dre-app` commands that bring systems and files in and out: Base Image builds and imports. */
import { dreError } from '../core/errors.js';
import { lazy } from './commands.js';
import { parse, type Command } from './common.js';

const app = lazy(() => import('../app/driver.js').then((m) => m.appDriver));

/** mmdebstrap's own progress display on a terminal; its lines, prefixed, otherwise (logs, CI). */
const progress = () => (process.stderr.isTTY ? ('inherit' as const) : (line: string) => process.stderr.write(`dre-app: ${line}\n`));

const baseCommand: Command = {
  name: 'base',
  usage: 'build debian [--release RELEASE] [--include PKG,...] [NAME]',
  summary: 'make a Base Image: build debian (mmdebstrap from the Debian archive; NAME defaults to debian)',
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
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `base: expected build, not ${JSON.stringify(verb)}; see dre-app base --help`);
  },
};

/** The commands of this file, spread into dre-app's list. */
export const transferCommands: Command[] = [baseCommand];

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { dreError, isDreError } from '../core/errors.js';

/** One subcommand of a CLI: `run` gets the words after the subcommand's name. */
export interface Command {
  name: string;
  /** e.g. "NAME [--base BASE] [--port PORT]" */
  usage: string;
  summary: string;
  run(args: string[]): Promise<number | void>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a subcommand's words; unknown flags and missing positionals are DRE_ERR_INVALID_ARGUMENT.
 * `--json` and `--help` are known to every subcommand.
 */
export function parse<O extends Options>(args: string[], options: O, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', (e as Error).message);
  }
  if (parsed.positionals.length < positionals) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  }
  return { values: parsed.values as { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { json?: boolean }, positionals: parsed.positionals };
}

/** Parses an integer flag or argument, or throws DRE_ERR_INVALID_ARGUMENT naming it. */
export function intArg(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be an integer, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** Prints rows as an aligned table with a header line. */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const r of cells) process.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n');
}

/**
 * The rows of a `list`: a container whose row cannot be made (a damaged record) is listed with status
 * UNKNOWN and its error, and named on stderr, so one broken container never hides the others.
 */
export async function listRows<R extends object>(prog: string, names: string[], row: (name: string) => Promise<R>): Promise<(({ name: string } & R) | { name: string; status: 'UNKNOWN'; error: string })[]> {
  return Promise.all(
    names.map(async (name) => {
      try {
        return { name, ...(await row(name)) };
      } catch (e) {
        if (!isDreError(e)) throw e;
        process.stderr.write(`${prog}: ${name}: ${e.errName}: ${e.message}\n`);
        return { name, status: 'UNKNOWN' as const, error: `${e.errName}: ${e.message}` };
      }
    }),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function help(prog: string, about: string, commands: Command[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    `${prog}: ${about}`,
    '',
    `usage: ${prog} COMMAND [ARGS]   (${prog} COMMAND --help for one command)`,
    '',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Environment: DRE_ROOT (state, default /var/lib/dre), DRE_RUNDIR (runtime, default /run/dre), DRE_SYS_ACCEL (kvm|tcg).',
    'Exit status: 0 on success, else the absolute value of the DRE_ERR_* code (e.g. 112 for DRE_ERR_CONTAINER_EXISTENCE).',
    '',
  ].join('\n');
}

/** Runs the CLI: dispatches to the subcommand, prints a failure as one line naming its DRE_ERR_*, and exits. */
export async function cliMain(prog: string, about: string, commands: Command[], argv = process.argv.slice(2)): Promise<never> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help(prog, about, commands));
    process.exit(name ? 0 : 101);
  }
  const cmd = commands.find((c) => c.name === name);
  let status = 0;
  try {
    if (!cmd) throw dreError('DRE_ERR_INVALID_ARGUMENT', `unknown command ${JSON.stringify(name)}; see ${prog} --help`);
    if (rest.includes('--help') || rest.includes('-h')) {
      const cut = rest.indexOf('--');
      if (cut < 0 || rest.slice(0, cut).some((a) => a === '--help' || a === '-h')) {
        process.stdout.write(`usage: ${prog} ${cmd.name} ${cmd.usage}\n\n${cmd.summary}\n`);
        process.exit(0);
      }
    }
    status = (await cmd.run(rest)) ?? 0;
  } catch (e) {
    if (isDreError(e)) {
      process.stderr.write(`${prog}: ${e.errName}: ${e.message}\n`);
      status = -e.code;
    } else {
      process.stderr.write(`${prog}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      status = 1;
    }
  }
  process.exit(status);
}

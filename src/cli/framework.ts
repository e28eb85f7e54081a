/**
 * The CLIs' command framework, on commander (strict arity, "did you mean", generated help, --version).
 *
 * How to define a command: a plain object, listed in the CLI's `commands` array.
 *
 *   {
 *     name: 'snapshot',                      // or 'config set' for a word inside a group ('config')
 *     args: 'NAME TAG [BASE]',               // UPPER required, [UPPER] optional, UPPER... variadic (last)
 *     summary: 'save a snapshot of a stopped container',
 *     options: { '--good': 'mark it good', '--timeout SECONDS': 'wait at most SECONDS' },
 *     output: true,                          // prints data: gets --json, --format table|json|yaml|csv and -q
 *     run: async ([name, tag], opts, out) => { ...; out.print(rows, { columns: [['NAME', (r) => r.name]] }) },
 *   }
 *
 * `run` gets the positionals as strings (a variadic one spread at the end), the options by their long
 * name as written (`opts.timeout`, `opts['no-network']`: string for a flag with a value, true for a
 * switch, undefined when absent), and `out` to print data in the chosen format. It may resolve to an
 * exit status (exec's). A DreError thrown becomes one line `PROG: DRE_ERR_X: message` on stderr and the
 * exit status |code|; bad usage (too many or too few arguments, an unknown flag or command) is
 * DRE_ERR_INVALID_ARGUMENT (101). Help (`--help`, `help CMD`, bare `PROG`) and `--version` exit 0.
 */
import { Command as Commander, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { backgroundSettled } from '../core/background.js';
import { DRE_ERR, dreError, isDreError } from '../core/errors.js';
import { Output, type Format } from './output.js';

export type Opts = Record<string, string | boolean | undefined>;

export interface CommandSpec {
  name: string;
  args?: string;
  summary: string;
  options?: Record<string, string>;
  output?: boolean;
  run(args: string[], opts: Opts, out: Output): Promise<number | void>;
}

export interface CliSpec {
  prog: 'dre-app' | 'dre-sys';
  about: string;
  commands: CommandSpec[];
}

export const ENVIRONMENT = 'Environment: DRE_ROOT (state, default /var/lib/dre), DRE_RUNDIR (runtime, default /run/dre), DRE_SYS_ACCEL (kvm|tcg).';
export const EXIT_STATUS =
  'Exit status: 0 on success, else the absolute value of the DRE_ERR_* code (e.g. 112 for DRE_ERR_CONTAINER_EXISTENCE; 101 for bad usage). ' +
  "exec: the command's own status (see dre-app exec --help).";

export const FORMATS: Format[] = ['table', 'json', 'yaml', 'csv'];

/** 'NAME TAG [BASE] CMD...' as commander's arguments: '<NAME>', '[BASE]', '<CMD...>'. */
export function argumentsOf(args: string | undefined): string[] {
  if (!args) return [];
  return args.split(/\s+/).map((w) => (w.startsWith('[') ? w : `<${w}>`));
}

/** '--port PORT' as commander's '--port <PORT>', '-f, --follow' as it is ('--tls [DIR]' stays optional). */
function flagsOf(flags: string): string {
  const m = /^(.*?--[\w-]+)(?: (\S+))?$/.exec(flags);
  if (!m) throw new Error(`option ${JSON.stringify(flags)}: write it as '--name', '-n, --name' or '--name VALUE'`);
  const [, names, value] = m;
  return value === undefined ? names : `${names} ${value.startsWith('[') ? value : `<${value}>`}`;
}

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The commander program of a CLI: used to run it and, by scripts/gen-docs, to write its completion and man page. */
export function buildProgram(spec: CliSpec, onRun?: (status: number | void) => void, only?: string): Commander {
  const program = new Commander(spec.prog)
    .description(spec.about)
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print help')
    .addHelpCommand('help [COMMAND]', 'print help of a command')
    .addHelpText('after', `\n${ENVIRONMENT}\n${EXIT_STATUS}`)
    .allowExcessArguments(false)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
  const groups = new Map<string, Commander>();
  // Only the command asked for, when it is one (start-up time); all of them for help, typos and the docs.
  const asked = spec.commands.filter((c) => c.name.split(' ')[0] === only);
  for (const c of asked.length ? asked : spec.commands) {
    const words = c.name.split(' ');
    let parent = program;
    for (const g of words.slice(0, -1)) {
      let group = groups.get(g);
      if (!group) {
        group = parent.command(g).description(
          `${spec.commands
            .filter((x) => x.name.startsWith(`${g} `))
            .map((x) => x.name.slice(g.length + 1))
            .join(', ')}`,
        );
        group.helpOption('-h, --help', 'print help').allowExcessArguments(false);
        groups.set(g, group);
      }
      parent = group;
    }
    const cmd = parent
      .command(words[words.length - 1])
      .description(c.summary)
      .helpOption('-h, --help', 'print help')
      .allowExcessArguments(false);
    for (const a of argumentsOf(c.args)) cmd.argument(a);
    for (const [flags, help] of Object.entries(c.options ?? {})) cmd.addOption(new Option(flagsOf(flags), help));
    if (c.output) {
      cmd.addOption(new Option('--format <FORMAT>', 'output format').choices(FORMATS));
      cmd.addOption(new Option('--json', 'the same as --format json'));
      cmd.addOption(new Option('-q, --quiet', 'print only the names (keys), one a line'));
    }
    cmd.action(async (...params: unknown[]) => {
      const self = params[params.length - 1] as Commander;
      const positionals = (params.slice(0, -2) as (string | string[] | undefined)[]).flatMap((p) => (p === undefined ? [] : p));
      const raw = self.opts();
      const opts: Opts = {};
      for (const o of self.options as Option[]) {
        const key = o.long!.slice(2);
        const v = raw[o.attributeName()];
        opts[key] = o.negate ? (v === false ? true : undefined) : (v as string | boolean | undefined);
      }
      const format = (opts.json ? 'json' : (opts.format as Format | undefined)) ?? 'table';
      onRun?.(await c.run(positionals, opts, new Output(format, opts.quiet === true)));
    });
  }
  return program;
}

/** A commander usage error as one line: its message without "error: ", the suggestion joined on. */
function usageMessage(e: CommanderError): string {
  return e.message
    .replace(/^error: /, '')
    .replace(/\n+/g, ' ')
    .trim();
}

/** Runs the CLI: parses, dispatches, prints a failure as one line naming its DRE_ERR_*, and exits. */
export async function cliMain(spec: CliSpec, argv = process.argv.slice(2)): Promise<never> {
  let status = 0;
  const program = buildProgram(spec, (s) => (status = typeof s === 'number' ? s : 0), argv[0]);
  try {
    if (argv.length === 0) {
      program.outputHelp(); // bare PROG: help on stdout, exit 0 (as incus does): asking what there is is no error
      process.exit(0);
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    status = failure(spec.prog, e);
  }
  await backgroundSettled(); // e.g. the upper a load set aside: removed before the exit, not left to the next tidy
  process.exit(status);
}

function failure(prog: string, e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    process.stderr.write(`${prog}: DRE_ERR_INVALID_ARGUMENT: ${usageMessage(e)}\n`);
    return -DRE_ERR.DRE_ERR_INVALID_ARGUMENT;
  }
  if (isDreError(e)) {
    process.stderr.write(`${prog}: ${e.errName}: ${e.message}\n`);
    return -e.code;
  }
  process.stderr.write(`${prog}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}

/** Throws DRE_ERR_INVALID_ARGUMENT unless `word` is one of `choices` (a positional with a fixed set of values). */
export function oneOf<T extends string>(word: string, choices: readonly T[], what: string): T {
  if (!(choices as readonly string[]).includes(word))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be one of ${choices.join(', ')}, not ${JSON.stringify(word)}`);
  return word as T;
}

/**
 * Shell completion (bash, zsh) and man pages made from the same command definitions the CLIs run
 * (framework.ts); scripts/gen-docs.mjs writes them to dist/share at build time.
 */
import type { Command as Commander, Option } from 'commander';
import { buildProgram, type CliSpec } from './framework.js';

interface Entry {
  /** 'start', or 'base build' inside a group */
  path: string;
  usage: string;
  summary: string;
  options: { flags: string; help: string }[];
  /** The positionals' names in order, e.g. ['NAME', 'TAG'] */
  args: string[];
}

/** Every runnable command of the CLI, groups flattened ('base build'). */
function entries(spec: CliSpec): Entry[] {
  const out: Entry[] = [];
  const walk = (cmd: Commander, prefix: string) => {
    for (const c of cmd.commands as Commander[]) {
      if (c.name() === 'help') continue;
      const path = prefix ? `${prefix} ${c.name()}` : c.name();
      if (c.commands.length) walk(c, path);
      else
        out.push({
          path,
          usage: c.usage(),
          summary: c.description(),
          options: (c.options as Option[]).filter((o) => o.long !== '--help').map((o) => ({ flags: o.flags, help: o.description })),
          args: c.registeredArguments.map((a) => a.name() + (a.variadic ? '...' : '')),
        });
    }
  };
  walk(buildProgram(spec), '');
  return out;
}

const longFlags = (e: Entry) => e.options.flatMap((o) => o.flags.split(/[ ,]+/).filter((f) => f.startsWith('-')));
const fnName = (prog: string) => `_${prog.replace(/-/g, '_')}`;

/** A bash completion script: commands, their flags, and container names (from `PROG list -q`) for NAME. */
export function bashCompletion(spec: CliSpec): string {
  const es = entries(spec);
  const top = [...new Set(es.map((e) => e.path.split(' ')[0]))];
  const cases = es
    .map((e) => {
      const words = e.path.split(' ');
      const sub = words.length > 1 ? `${words[0]}/${words[1]}` : words[0];
      const names = e.args[0] === 'NAME' ? ' $(' + spec.prog + ' list -q 2>/dev/null)' : '';
      return `    ${sub}) opts="${longFlags(e).join(' ')} --help"; words_="${names}" ;;`;
    })
    .join('\n');
  const groups = [...new Set(es.filter((e) => e.path.includes(' ')).map((e) => e.path.split(' ')[0]))];
  const groupCases = groups
    .map(
      (g) =>
        `    ${g}) COMPREPLY=($(compgen -W "${es
          .filter((e) => e.path.startsWith(`${g} `))
          .map((e) => e.path.split(' ')[1])
          .join(' ')}" -- "$cur")); return ;;`,
    )
    .join('\n');
  const f = fnName(spec.prog);
  return `# bash completion for ${spec.prog} (made by scripts/gen-docs from the command definitions)
${f}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]} key opts words_
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${top.join(' ')} help --help --version" -- "$cur")); return
  fi
  key=$cmd
  if [ "$COMP_CWORD" -eq 2 ]; then
    case $cmd in
${groupCases}
    esac
  fi
  case $cmd in ${groups.map((g) => `${g}) key=$cmd/\${COMP_WORDS[2]} ;;`).join(' ')} esac
  case $key in
${cases}
    *) opts="--help"; words_="" ;;
  esac
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -W "$(eval echo "$words_")" -- "$cur")); fi
}
complete -F ${f} ${spec.prog}
`;
}

const zshQuote = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "'\\''").replace(/:/g, '\\:');

/** A zsh completion function (`#compdef PROG`): commands with their summaries, flags, and container names. */
export function zshCompletion(spec: CliSpec): string {
  const es = entries(spec);
  const top = new Map<string, string>();
  for (const e of es) if (!top.has(e.path.split(' ')[0])) top.set(e.path.split(' ')[0], e.path.includes(' ') ? e.path.split(' ')[0] : e.summary);
  const f = fnName(spec.prog);
  const cases = es
    .map((e) => {
      const sub = e.path.replace(' ', '/');
      const flags = e.options.map((o) => `'${o.flags.split(/[ ,]+/).find((x) => x.startsWith('--'))}[${zshQuote(o.help)}]'`).join(' ');
      const names = e.args[0] === 'NAME' ? ` '1:name:(\${(f)"$(${spec.prog} list -q 2>/dev/null)"})'` : '';
      return `    ${sub}) _arguments ${flags}${names} '*:argument:' ;;`;
    })
    .join('\n');
  return `#compdef ${spec.prog}
# zsh completion for ${spec.prog} (made by scripts/gen-docs from the command definitions)
${f}() {
  local -a cmds
  cmds=(
${[...top].map(([n, s]) => `    '${n}:${zshQuote(s)}'`).join('\n')}
  )
  if (( CURRENT == 2 )); then _describe command cmds; return; fi
  local key=$words[2]
  case $key in ${[...new Set(es.filter((e) => e.path.includes(' ')).map((e) => e.path.split(' ')[0]))]
    .map(
      (g) =>
        `${g}) if (( CURRENT == 3 )); then compadd -- ${es
          .filter((e) => e.path.startsWith(`${g} `))
          .map((e) => e.path.split(' ')[1])
          .join(' ')}; return; fi; key=$key/$words[3]; shift words; (( CURRENT-- )) ;;`,
    )
    .join(' ')} esac
  shift words; (( CURRENT-- ))
  case $key in
${cases}
  esac
}
${f} "$@"
`;
}

/** Text for roff: backslashes escaped, dashes as \\-, and a line never starting with a control character. */
const roff = (s: string) =>
  s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');

/** The man page (section 1) of the CLI. */
export function manPage(spec: CliSpec, version: string, environment: string, exitStatus: string): string {
  const es = entries(spec);
  const lines = [
    `.TH ${spec.prog.toUpperCase()} 1 "" "dre ${version}" "D-RE"`,
    '.SH NAME',
    `${spec.prog} \\- ${roff(spec.about)}`,
    '.SH SYNOPSIS',
    `.B ${spec.prog}`,
    '.I COMMAND',
    '[\\fIARGS\\fR] [\\fIOPTIONS\\fR]',
    '.br',
    `.B ${spec.prog}`,
    '\\-\\-help | \\-\\-version | help \\fICOMMAND\\fR',
    '.SH DESCRIPTION',
    `${roff(spec.about)}. Commands that print data take \\fB\\-\\-format table|json|yaml|csv\\fR, \\fB\\-\\-json\\fR (the same as \\fB\\-\\-format json\\fR) and \\fB\\-q\\fR (only the names, one a line). Tables fit the terminal.`,
    '.SH COMMANDS',
  ];
  for (const e of es) {
    lines.push('.TP', `.B ${roff(`${e.path} ${e.usage}`)}`, roff(e.summary));
    if (e.options.length) {
      lines.push('.RS');
      for (const o of e.options) lines.push('.TP', `.B ${roff(o.flags)}`, roff(o.help));
      lines.push('.RE');
    }
  }
  lines.push(
    '.SH ENVIRONMENT',
    roff(environment),
    '.SH EXIT STATUS',
    roff(exitStatus),
    '.SH SEE ALSO',
    spec.prog === 'dre-app' ? '\\fBdre\\-sys\\fR(1), \\fBdred\\fR' : '\\fBdre\\-app\\fR(1), \\fBdred\\fR',
    '',
  );
  return lines.join('\n');
}

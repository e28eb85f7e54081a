/** Completion scripts and man pages made at build time (scripts/gen-docs.mjs) from the commands the CLIs run. */
import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { appCli } from '../../src/cli/app-commands.js';
import { sysCli } from '../../src/cli/sys-commands.js';
import { distDir } from '../support/env.js';

const share = join(distDir, 'share');
const sh = (cmd: string, args: string[]) =>
  spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, HOME: process.env.DRE_TEST_TMP, MANWIDTH: '200' } });

for (const spec of [appCli, sysCli]) {
  const prog = spec.prog;
  const fn = `_${prog.replace(/-/g, '_')}`;
  describe(`${prog}'s documentation`, () => {
    it('has a man page that man renders, naming every command', () => {
      const page = join(share, 'man', 'man1', `${prog}.1`);
      const r = sh('man', ['-l', '-P', 'cat', page]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^${prog.toUpperCase()}\\(1\\)`));
      for (const c of spec.commands) assert.ok(r.stdout.includes(`${c.name} `), `${c.name} is missing from the man page`);
      assert.match(r.stdout, /EXIT STATUS/);
    });

    it('has a bash completion that loads and completes commands, subcommands and flags', () => {
      const file = join(share, 'bash-completion', 'completions', prog);
      const complete = (words: string[]) =>
        sh('bash', [
          '-c',
          `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; ${fn}; echo "\${COMPREPLY[*]}"`,
          'x',
          file,
        ]).stdout.trim();
      const loaded = sh('bash', ['-c', `source "$1"; complete -p ${prog}`, 'x', file]);
      assert.equal(loaded.status, 0, loaded.stderr);
      assert.equal(loaded.stdout.trim(), `complete -F ${fn} ${prog}`);
      assert.equal(complete([prog, 'sta']), 'start status');
      assert.equal(complete([prog, 'stop', '--t']), '--timeout');
      assert.equal(complete([prog, 'list', '--fo']), '--format');
      if (prog === 'dre-sys') assert.equal(complete([prog, 'base', 'b']), 'build');
    });

    it('has a zsh completion that zsh parses and compinit registers for the command', () => {
      const dir = join(share, 'zsh', 'site-functions');
      assert.ok(existsSync(join(dir, `_${prog}`)));
      assert.equal(sh('zsh', ['-n', join(dir, `_${prog}`)]).status, 0);
      const r = sh('zsh', ['-fc', `fpath=(${dir} $fpath); autoload -U compinit; compinit -u -D; print -- \${_comps[${prog}]}`]);
      assert.equal(r.stdout.trim(), `_${prog}`, r.stderr);
    });
  });
}

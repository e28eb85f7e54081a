/**
 * The shared cases of test/clib/vectors.json: run through the TypeScript spec layer (dre/app, dre/sys,
 * in-process) and through the C libraries (test/clib/app.c, sys.c compiled with the installed
 * pkg-config line, talking to a dred), each step's return code compared with the same expectation.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Daemon } from '../support/dred.js';
import { cli, cliPath } from '../support/env.js';
import * as A from '../../src/spec/app.js'; // what the package exports as dre/app
import * as S from '../../src/spec/sys.js'; // and as dre/sys

export type Kind = 'app' | 'sys';
type Arg = null | number | string | Record<string, unknown>;
export interface Step {
  fn: string;
  args: Arg[];
  expect: number | number[] | 'handle' | 'null';
  expect_c?: number;
  why?: string;
  as?: string;
  contains?: string;
}
/** One step as run: what came back, and whether a listed name was in the list. */
export interface Outcome {
  index: number;
  fn: string;
  got: number | 'handle' | 'null';
  contains?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The source tree's test/clib (the JSON and the C files are not compiled into dist). */
export const sourceDir = join(here, '..', '..', '..', 'test', 'clib');
export const vectorsPath = join(sourceDir, 'vectors.json');

export function loadVectors(kind: Kind): Step[] {
  return (JSON.parse(readFileSync(vectorsPath, 'utf8')) as Record<Kind, Step[]>)[kind];
}

/** The run's values of the $ names. */
export interface Vars {
  prefix: string;
  sleeper: number;
}

/** The command line of the process an exec step starts in the container: a shell loop named by MARKER. */
export const insideCommand = (marker: string) => `sh -c 'while sleep 1; do :; done; :' ${marker} </dev/null >/dev/null 2>&1 &`;

/** The host PID and the in-container PID of the process whose command line holds MARKER (waits up to 5 s). */
export async function findInside(marker: string): Promise<{ pid: number; vpid: number }> {
  for (let i = 0; i < 100; i++) {
    for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (!readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes(marker)) continue;
        const nspid = /^NSpid:\s+(.*)$/m
          .exec(readFileSync(`/proc/${e}/status`, 'utf8'))![1]
          .trim()
          .split(/\s+/);
        return { pid: Number(e), vpid: Number(nspid[nspid.length - 1]) };
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no process ${marker}`);
}

/** Every spec function the header declares (the vectors must call each at least once). */
export function headerFunctions(kind: Kind): string[] {
  const header = readFileSync(join(sourceDir, '..', '..', 'c', 'dre', `dre_${kind}.h`), 'utf8');
  return [...header.matchAll(new RegExp(`\\b(dre_${kind}_[a-z_]+)\\(`, 'g'))].map((m) => m[1]);
}

/** The failures of a run against the vectors: one line each, empty when all agree. */
export function mismatches(steps: Step[], outcomes: Outcome[], side: 'ts' | 'c'): string[] {
  const bad: string[] = [];
  steps.forEach((s, i) => {
    const o = outcomes.find((x) => x.index === i);
    const want = side === 'c' && s.expect_c !== undefined ? s.expect_c : s.expect;
    const ok = (got: Outcome['got']) => (Array.isArray(want) ? want.includes(got as number) : got === want);
    if (!o) bad.push(`#${i} ${s.fn}(${JSON.stringify(s.args)}): not run`);
    else if (!ok(o.got)) bad.push(`#${i} ${s.fn}(${JSON.stringify(s.args)}): expected ${want}, got ${o.got}`);
    else if (s.contains !== undefined && o.contains !== true) bad.push(`#${i} ${s.fn}: the list lacks ${s.contains}`);
  });
  return bad;
}

/** A $ name's value in this run. */
function variable(text: string, vars: Vars, pids: Record<string, number>): string | number {
  if (text === '$long') return 'a'.repeat(65);
  if (text === '$sleeper') return vars.sleeper;
  if (text.slice(1) in pids) return pids[text.slice(1)];
  return `${vars.prefix}${text.slice(1)}`;
}

/** The spec structs from a vector's object: dre_*_data for create_container, else a resource value. */
function struct(fn: string, o: Record<string, unknown>, str: (x: unknown) => unknown): unknown {
  if (fn.endsWith('_create_container')) {
    return o.type === 100 || fn.startsWith('dre_sys')
      ? { type: o.type, udata: { kvm: { memory_size: o.memory_size ?? null, base: str(o.base ?? null), rootfs: o.rootfs ?? null } } }
      : { type: o.type, udata: { lxc: { port: o.port ?? null, base: str(o.base ?? null) } } };
  }
  const v = o.value;
  const udata =
    o.type === 1
      ? { cpu: { parcent: v } }
      : o.type === 2
        ? { cpu: { cores: o.cores } }
        : o.type === 3
          ? { mem: { usage_in_bytes: v } }
          : o.type === 4
            ? { mem: { memsw_usage_in_bytes: v } }
            : {};
  return { type: o.type, udata };
}

/** Runs the steps through dre/app or dre/sys in this process. */
export async function runTs(kind: Kind, steps: Step[], vars: Vars): Promise<Outcome[]> {
  const api = (kind === 'app' ? A : S) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const handles = new Map<string, unknown>();
  let list: unknown;
  const pids: Record<string, number> = { pid: 0, inpid: 0, invpid: 0 };
  const outcomes: Outcome[] = [];
  for (const [index, s] of steps.entries()) {
    const str = (a: unknown): unknown => (typeof a === 'string' && a.startsWith('$') ? variable(a, vars, pids) : a);
    if (s.fn === 'exec') {
      const marker = `${vars.prefix}in${index}`;
      const r = cli('dre-app', ['exec', String(str(s.args[0])), '--', 'sh', '-c', insideCommand(marker)]);
      if (r.code === 0) ({ pid: pids.inpid, vpid: pids.invpid } = await findInside(marker));
      outcomes.push({ index, fn: s.fn, got: r.code });
      continue;
    }
    const args = s.args.map((a) => {
      if (typeof a === 'string' && a.startsWith('@')) return handles.get(a.slice(1)) ?? null;
      if (typeof a === 'string' && a.startsWith('&')) return {};
      if (a === '*list') return list;
      if (a !== null && typeof a === 'object') return struct(s.fn, a, str);
      return str(a);
    });
    const fn = api[s.fn];
    if (typeof fn !== 'function') throw new Error(`${s.fn} is not a function of dre/${kind}`);
    const r = await fn(...args);
    let got: Outcome['got'];
    if (s.fn.endsWith('_open')) {
      got = r === null ? 'null' : 'handle';
      if (r !== null && s.as) handles.set(s.as, r);
    } else got = r as number;
    const out: Outcome = { index, fn: s.fn, got };
    for (const [i, a] of s.args.entries()) {
      if (a === '&list' && got === 0) list = (args[i] as { value?: unknown }).value;
      if (a === '&pid' && got === 0) pids.pid = (args[i] as { value: number }).value;
    }
    if (s.contains !== undefined) out.contains = Array.isArray(list) && list.includes(str(s.contains));
    outcomes.push(out);
  }
  return outcomes;
}

/** Compiles test/clib/KIND.c with the installed `pkg-config --cflags --libs dreKIND` line; returns the program. */
export function compileC(kind: Kind): string {
  // The installed header must be this tree's: a stale install (set-up not run since c/dre changed) fails here.
  const includedir = execFileSync('pkg-config', ['--variable=includedir', `dre${kind}`], { encoding: 'utf8' }).trim();
  const header = `dre_${kind}.h`;
  if (readFileSync(join(includedir, header), 'utf8') !== readFileSync(join(sourceDir, '..', '..', 'c', 'dre', header), 'utf8'))
    throw new Error(`${join(includedir, header)} is not c/dre/${header}: run scripts/setup.sh (make -C c/dre install)`);
  const out = join(mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-')), `vectors-${kind}`);
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', `dre${kind}`, 'json-c'], { encoding: 'utf8' })
    .trim()
    .split(/\s+/);
  const r = spawnSync('cc', ['-Wall', '-Wextra', '-Werror', '-o', out, join(sourceDir, `${kind}.c`), ...flags], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc ${kind}.c failed: ${r.stderr}`);
  return out;
}

/** Runs the compiled program over the steps; it prints "INDEX FN GOT CONTAINS" per step. */
export function runC(
  program: string,
  kind: Kind,
  vars: Vars,
  env: NodeJS.ProcessEnv = {},
): Promise<{ outcomes: Outcome[]; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    // DRE_VEC_CLI: how the program's exec steps run dre-app.
    const cliLine = `${process.execPath} ${cliPath('dre-app')}`;
    const child = spawn(program, [vectorsPath, kind, vars.prefix, String(vars.sleeper)], {
      env: { ...process.env, DRE_VEC_CLI: cliLine, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => {
      const outcomes = stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [index, fn, got, contains] = line.split(' ');
          return {
            index: Number(index),
            fn,
            got: got === 'handle' || got === 'null' ? got : Number(got),
            contains: contains === '-' ? undefined : contains === '1',
          } as Outcome;
        });
      resolve({ outcomes, stderr, code });
    });
  });
}

/**
 * The suite of one chapter: the vectors cover every function of the header (COUNT of them), the
 * TypeScript layer gives their codes, and the C program gives the same through a dred of this run.
 * `removeRun(prefix)` removes what a run made, whatever state it is in.
 */
export function vectorSuite(kind: Kind, count: number, removeRun: (prefix: string) => Promise<void>, prepare: () => void = () => {}): void {
  const steps = loadVectors(kind);
  const tsPrefix = `clts${process.pid}-`;
  const cPrefix = `clc${process.pid}-`;
  const where = kind === 'app' ? 'on a real container' : 'on a real guest';
  describe(`the C interface of chapter ${kind === 'app' ? '1.2 (libdreapp)' : '1.3 (libdresys)'} against the TypeScript spec layer`, () => {
    let sleeper: ChildProcess;
    let daemon: Daemon | undefined;
    before(() => {
      prepare();
      sleeper = spawn('sleep', ['3600'], { stdio: 'ignore' });
    });
    after(async () => {
      await daemon?.kill();
      sleeper.kill('SIGKILL');
      await removeRun(tsPrefix);
      await removeRun(cPrefix);
    });

    it(`has a vector for every function dre_${kind}.h declares`, () => {
      const called = new Set(steps.map((s) => s.fn));
      const declared = headerFunctions(kind);
      assert.equal(declared.length, count);
      assert.deepEqual(
        declared.filter((f) => !called.has(f)),
        [],
      );
    });

    it(`the TypeScript spec layer (dre/${kind}) gives the vectors' codes, step by step, ${where}`, async () => {
      const outcomes = await runTs(kind, steps, { prefix: tsPrefix, sleeper: sleeper.pid! });
      assert.deepEqual(mismatches(steps, outcomes, 'ts'), []);
    });

    it(`a C program built with \`pkg-config --cflags --libs dre${kind}\` gives the same codes through dred`, async () => {
      const program = compileC(kind);
      daemon = await Daemon.start();
      const r = await runC(program, kind, { prefix: cPrefix, sleeper: sleeper.pid! });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(mismatches(steps, r.outcomes, 'c'), [], daemon.stderr.join(''));
    });
  });
}

/**
 * Test environment: every test process works under a private DRE_ROOT/DRE_RUNDIR (scripts/test.sh
 * makes one per run; a test file run alone gets its own), and helpers to run the CLIs.
 */
import { spawnSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../src/core/proc.js';
import { sweep, useTestNetwork } from './sweep.js';

if (!process.env.DRE_TEST_TMP) {
  const tmp = mkdtempSync('/tmp/dre-test-');
  chmodSync(tmp, 0o711); // unprivileged containers' LXC passes through it as their mapped root
  process.env.DRE_TEST_TMP = tmp;
  process.env.DRE_ROOT = join(tmp, 'root');
  process.env.DRE_RUNDIR = join(tmp, 'run');
  process.on('exit', () => {
    sweep(tmp);
    rmSync(tmp, { recursive: true, force: true });
  });
}
useTestNetwork(process.env.DRE_TEST_TMP);

export const distDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = (prog: 'dre-app' | 'dre-sys') => join(distDir, 'src', 'cli', `${prog}.js`);

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let counter = 0;
/** A container name unique in this run: `prefix-<pid>-<n>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How a CLI runs: `wrap` is a command line to run it under (e.g. `ip netns exec NS`), `env` adds to this run's. */
export interface CliOptions {
  wrap?: string[];
  env?: NodeJS.ProcessEnv;
}

/** The command and arguments that run `prog args` under `wrap`. */
function command(prog: 'dre-app' | 'dre-sys', args: string[], wrap: string[] = []): [string, string[]] {
  const [cmd, ...rest] = [...wrap, process.execPath, cliPath(prog), ...args];
  return [cmd, rest];
}

/** Runs a CLI synchronously with this run's environment. */
export function cli(prog: 'dre-app' | 'dre-sys', args: string[], opts: CliOptions & { input?: string; uid?: number; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(...command(prog, args, opts.wrap), {
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    uid: opts.uid,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 180_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a CLI asynchronously (for races and kills); resolves with its result. */
export function cliAsync(prog: 'dre-app' | 'dre-sys', args: string[], opts: CliOptions = {}): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(...command(prog, args, opts.wrap), { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => (stdout += b));
  child.stderr!.on('data', (b) => (stderr += b));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, sig) => resolve({ code: code ?? (sig ? -1 : 0), stdout, stderr })));
  return { child, done };
}

/** Kills `PROG ARGS` with SIGKILL `delayMs` after it was spawned, and waits for it to be gone. */
export async function killDuring(prog: 'dre-app' | 'dre-sys', args: string[], delayMs: number): Promise<void> {
  const { child, done } = cliAsync(prog, args);
  await sleep(delayMs);
  child.kill('SIGKILL');
  await done;
}

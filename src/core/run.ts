import { spawn, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this long; every wait has a bound. Default 60 s. */
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Open file descriptors the command inherits as fd 3, 4, ... (e.g. a held lock it must keep while it runs). */
  inheritFds?: number[];
  /** 'inherit': the command writes to our stderr (a progress display on a terminal); nothing is collected. */
  stderr?: 'pipe' | 'inherit';
  /** An open file descriptor the command reads as its stdin (a file streamed in), instead of `input`. */
  stdinFd?: number;
  /** Called with each chunk of stdout instead of collecting it (a stream out); returning false kills the command. */
  onStdout?: (chunk: Buffer) => boolean | void;
  /** Called with each chunk of stderr as it comes (progress lines); it is still collected. */
  onStderr?: (chunk: Buffer) => void;
}

/**
 * A command that could not be spawned, ran over its time (`timedOut`, with what it printed until
 * then in `result`). A command that exits non-zero is not an error here: see `run` and `engineCause`.
 */
export class RunError extends Error {
  readonly command: string;
  readonly timedOut: boolean;
  readonly result?: RunResult;

  constructor(message: string, opts: { command: string; timedOut?: boolean; result?: RunResult; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.command = opts.command;
    this.timedOut = opts.timedOut ?? false;
    this.result = opts.result;
  }
}

/** What a DreError's `cause` holds for an engine tool that failed: the tool, its whole result and the log it wrote, if any. */
export interface EngineCause extends RunResult {
  tool: string;
  log?: string;
}

export function engineCause(tool: string, r: Omit<RunResult, 'signal'> & { signal?: NodeJS.Signals | null }, log?: string): EngineCause {
  return { tool, signal: null, ...r, ...(log ? { log } : {}) };
}

/**
 * Runs an engine tool with an argument array (never a shell) and collects its output. A non-zero exit
 * is returned, not thrown: callers turn it into the right DreError with the tool's stderr as cause.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.stdinFd ?? 'pipe', 'pipe', opts.stderr ?? 'pipe', ...(opts.inheritFds ?? [])],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (b: Buffer) => {
      if (!opts.onStdout) out.push(b);
      else if (opts.onStdout(b) === false) child.kill('SIGKILL');
    });
    child.stderr?.on('data', (b: Buffer) => {
      err.push(b);
      opts.onStderr?.(b);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RunError(`${cmd}: ${e.message}`, { command: cmd, cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const command = [cmd, ...args].join(' ');
      const result = { code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (timedOut) reject(new RunError(`${command}: no answer after ${timeoutMs} ms`, { command, timedOut: true, result }));
      else resolve(result);
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs a command with the caller's stdin/stdout/stderr (for `exec` and `console`), resolving to its exit status. */
export function runInteractive(cmd: string, args: readonly string[], stdio: StdioOptions = 'inherit'): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio });
    child.on('error', (e) => reject(new RunError(`${cmd}: ${e.message}`, { command: cmd, cause: e })));
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
}

/** The number of a signal by name (SIGKILL → 9), for exit statuses of 128 + N. */
export function signalNumber(sig: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0;
}

/** The last non-empty lines of a tool's stderr, for an error message. */
export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').filter(Boolean).slice(-n).join(' | ');
}

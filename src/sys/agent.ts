import type { ExecResult } from '../core/driver.js';
import { connectUnix } from './socket.js';

export type { ExecResult };

/** Quotes one argument for the guest's sh: the command line reaches it word for word. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

let requestCounter = 0;
const requestId = () => `${process.pid}.${Date.now().toString(36)}.${++requestCounter}`;

/**
 * One request to the guest agent (framing in guest.ts): connects to the agent's socket, sends `line`
 * (built from a fresh id), and resolves with the answer words carrying that id. Answers to earlier,
 * abandoned requests are skipped.
 */
async function request(socketPath: string, make: (id: string) => string, timeoutMs: number, payload?: Buffer): Promise<string[]> {
  const id = requestId();
  const end = Date.now() + timeoutMs;
  const sock = await connectUnix(socketPath, timeoutMs);
  return new Promise((resolve, reject) => {
    let buffer = '';
    let settled = false;
    const finish = (err: Error | undefined, words?: string[]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(words!);
    };
    const timer = setTimeout(() => finish(new Error(`the guest agent did not answer in ${timeoutMs} ms`)), Math.max(1, end - Date.now()));
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const words = buffer.slice(0, nl).split(' ');
        buffer = buffer.slice(nl + 1);
        if (words[1] === id) return finish(undefined, words);
      }
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error('the guest agent connection closed')));
    sock.write(make(id) + '\n');
    if (payload) sock.write(payload);
  });
}

/** True once the agent answers a ping within `timeoutMs`. */
export async function ping(socketPath: string, timeoutMs: number): Promise<boolean> {
  try {
    await request(socketPath, (id) => `P ${id}`, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** Runs `argv` in the guest through its agent, `stdin` as its input (none: empty); resolves to its exit status and output. */
export async function execInGuest(socketPath: string, argv: string[], timeoutMs: number, stdin?: Buffer): Promise<ExecResult> {
  const script = Buffer.from(argv.map(shellQuote).join(' ') + '\n').toString('base64');
  const words = await request(socketPath, (id) => `X ${id} ${script}${stdin ? ` ${stdin.length}` : ''}`, timeoutMs, stdin);
  const [, , status, out = '.', err = '.'] = words;
  return { status: Number(status), stdout: Buffer.from(out.slice(1), 'base64'), stderr: Buffer.from(err.slice(1), 'base64') };
}

/** A `dred` of the test's own root, run in the foreground, and a client for its socket. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { sleep } from '../../src/core/proc.js';
import { after, before } from 'node:test';
import { cli, distDir } from './env.js';

export const dredPath = join(distDir, 'src', 'cli', 'dred.js');
export const socketPath = () => join(process.env.DRE_RUNDIR!, 'dred.sock');

export interface Reply {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request over the unix socket; `body` is sent as JSON (a string is sent as it is). */
export function call(method: string, path: string, body?: unknown, opts: { socket?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = httpRequest(
      {
        socketPath: opts.socket ?? socketPath(),
        method,
        path,
        headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            /* not JSON: returned as text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.setTimeout(opts.timeoutMs ?? 300_000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end(text);
  });
}

/** Runs a background operation's request and waits for its end; returns the finished operation. */
export async function callAndWait(method: string, path: string, body?: unknown): Promise<Reply> {
  const r = await call(method, path, body);
  if (r.status !== 202) return r;
  for (;;) {
    const w = await call('GET', `/1.0/operations/${r.body.id}/wait?timeout=60`);
    if (w.status !== 200 || w.body.status !== 'running') return w;
  }
}

export class Daemon {
  readonly stderr: string[] = [];
  private constructor(readonly proc: ChildProcess) {
    proc.stderr!.on('data', (c: Buffer) => this.stderr.push(c.toString()));
  }

  /** Starts dred with this run's DRE_ROOT/DRE_RUNDIR and waits until its socket answers. */
  static async start(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
    const d = new Daemon(spawn(process.execPath, [dredPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] }));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (d.proc.exitCode !== null) throw new Error(`dred exited ${d.proc.exitCode}: ${d.stderr.join('')}`);
      if (existsSync(socketPath())) {
        try {
          if ((await call('GET', '/1.0', undefined, { timeoutMs: 2000 })).status === 200) return d;
        } catch {
          /* not listening yet */
        }
      }
      if (Date.now() > deadline) {
        d.proc.kill('SIGKILL');
        throw new Error(`dred did not answer in 20 s: ${d.stderr.join('')}`);
      }
      await sleep(50);
    }
  }

  /** Ends the daemon (SIGKILL: as a crash would) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill(signal);
    await gone;
  }
}

/** A subscriber of GET /1.0/events: the events seen so far, and a way to wait for one. */
export class EventLog {
  readonly events: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  private res: IncomingMessage | undefined;
  private buffer = '';

  static async open(): Promise<EventLog> {
    const log = new EventLog();
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ socketPath: socketPath(), path: '/1.0/events' }, (res) => {
        log.res = res;
        res.on('data', (c: Buffer) => log.feed(c.toString('utf8')));
        resolve();
      });
      req.on('error', reject);
      req.end();
    });
    return log;
  }

  private feed(text: string): void {
    this.buffer += text;
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) this.events.push(JSON.parse(data.slice(6)));
    }
  }

  /** Waits until an event matches (or throws after `timeoutMs`). */
  async waitFor(pred: (e: any) => boolean, timeoutMs = 30_000): Promise<any> {
    // eslint-disable-line @typescript-eslint/no-explicit-any
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > deadline)
        throw new Error(`no matching event in ${timeoutMs} ms; seen: ${JSON.stringify(this.events.map((x) => `${x.type} ${x.name ?? ''}`))}`);
      await sleep(25);
    }
  }

  close(): void {
    this.res?.destroy();
  }
}

/**
 * A daemon and a subscriber of its events for one describe block (before/after hooks), once
 * `requireEngines` passes; `cleanup` removes the block's containers after the daemon ended.
 */
export function daemonWithEvents(requireEngines: () => void, cleanup: () => Promise<void>): { log: () => EventLog; daemon: () => Daemon } {
  let daemon: Daemon | undefined;
  let log: EventLog | undefined;
  before(async () => {
    requireEngines();
    daemon = await Daemon.start();
    log = await EventLog.open();
  });
  after(async () => {
    log?.close();
    await daemon?.kill('SIGTERM');
    await cleanup();
  });
  return { log: () => log!, daemon: () => daemon! };
}

/** daemonWithEvents for a block that makes one application container, `name`, removed at the end. */
export const daemonWithApp = (name: string) =>
  daemonWithEvents(
    () => undefined,
    async () => {
      cli('dre-app', ['stop', name, '--timeout', '0']);
      cli('dre-app', ['destroy', name]);
    },
  );

/** Clears the container's policy, again while a recovery holds its lock (DRE_ERR_CONTAINER_BUSY) for a moment. */
export async function clearPolicy(name: string): Promise<void> {
  let r = cli('dre-app', ['policy', name, '--clear']);
  for (let i = 0; i < 50 && r.code !== 0; i++, await sleep(100)) r = cli('dre-app', ['policy', name, '--clear']);
  if (r.code !== 0) throw new Error(`policy ${name} --clear: ${r.stderr}`);
}

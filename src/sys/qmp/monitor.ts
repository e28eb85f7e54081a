/** A QMP connection to one QEMU: framing, commands matched to replies by id, events. */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { connectUnix } from '../socket.js';
import { QmpClosed, QmpRefused, QmpTimeout } from './errors.js';

/** A QMP event as QEMU sends it (SHUTDOWN, STOP, RESUME, ...). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  command: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A QMP connection that owns its socket: commands carry an id and replies are matched to them;
 * events are emitted as 'event' (and by name), and 'close' when QEMU goes away.
 */
export class Qmp extends EventEmitter {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  /**
   * Connects and negotiates capabilities without waiting for the greeting or the answer: QEMU handles
   * requests in order, so the caller's first command rides in the same round trip (status stays cheap).
   * A refused negotiation surfaces as that command's error.
   */
  static async connect(path: string, timeoutMs = 5_000): Promise<Qmp> {
    const socket = await connectUnix(path, timeoutMs);
    const qmp = new Qmp(socket);
    qmp.execute('qmp_capabilities', undefined, timeoutMs).catch(() => qmp.close());
    return qmp;
  }

  /** Runs one command; resolves to its `return`, rejects with QmpRefused, QmpTimeout or QmpClosed (errors.ts). Typed commands are in commands.ts. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (this.closed) return Promise.reject(new QmpClosed(command));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeout(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  /** Resolves with the first event named `name` (or undefined after `timeoutMs`, or when QEMU goes away). */
  waitEvent(name: string, timeoutMs: number): Promise<QmpEvent | undefined> {
    return new Promise((resolve) => {
      const done = (ev?: QmpEvent) => {
        clearTimeout(timer);
        this.off(name, onEvent);
        this.off('close', onClose);
        resolve(ev);
      };
      const onEvent = (ev: QmpEvent) => done(ev);
      const onClose = () => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.on(name, onEvent);
      this.on('close', onClose);
      if (this.closed) done(undefined);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      this.emit(msg.event, msg as unknown as QmpEvent);
      return;
    }
    const id = msg.id === undefined ? undefined : String(msg.id);
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return; // the greeting, or a reply to a command that timed out
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpRefused(p.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else p.resolve(msg.return);
  }

  private onClose(): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new QmpClosed(p.command));
      this.pending.delete(id);
    }
    this.emit('close');
  }
}

/** Opens a connection, runs `fn`, and always closes it (QMP serves one client at a time). */
export async function withQmp<T>(path: string, fn: (qmp: Qmp) => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const qmp = await Qmp.connect(path, timeoutMs);
  try {
    return await fn(qmp);
  } finally {
    qmp.close();
  }
}

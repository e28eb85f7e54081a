/**
 * The daemon's side of the containers' NOTIFY_SOCKETs (src/app/notifydir.ts): one relay process for
 * the whole root (c/notify/dre-notify, a unix datagram server: Node has none), told over its stdin
 * which sockets to bind; it checks each sender (SO_PASSCRED: a process of that container), caps size
 * and rate, and writes one JSON line per accepted message, which becomes a call of `onMessage` with
 * the message's fields (READY, STATUS, WATCHDOG, STOPPING, WATCHDOG_USEC, ...). A relay that dies is
 * started again (every socket bound again) after 100 ms, up to 5 s when it keeps dying.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { containerCgroup } from '../app/layout.js';
import { notifySocketPath, prepareNotifyDir } from '../app/notifydir.js';

/** The relay binary: $DRE_NOTIFY_HELPER, this package's own build (c/notify/build), or the one set-up installs. */
export function notifyHelperPath(): string {
  if (process.env.DRE_NOTIFY_HELPER) return process.env.DRE_NOTIFY_HELPER;
  const own = join(realpathSync(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')), 'c', 'notify', 'build', 'dre-notify');
  return existsSync(own) ? own : '/usr/local/libexec/dre/dre-notify';
}

/** A message's fields: `READY=1\nSTATUS=up` → { READY: '1', STATUS: 'up' } (a line without = is ignored). */
export function notifyFields(msg: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of msg.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export class NotifyRelay {
  private child: ChildProcess | undefined;
  private readonly names = new Set<string>();
  private stopped = false;
  private restartMs = 100;
  private timer: NodeJS.Timeout | undefined;
  /** Starts of the relay process (the first and each restart after it died). */
  starts = 0;

  constructor(
    private readonly onMessage: (name: string, fields: Record<string, string>, pid: number) => void,
    private readonly log: (line: string) => void = (l) => process.stderr.write(`dred: notify: ${l}\n`),
  ) {}

  start(): void {
    this.stopped = false;
    this.spawn();
  }

  /** Serves the container's socket from now on (bound again whenever the relay restarts). */
  watch(name: string): void {
    if (this.names.has(name)) return;
    this.names.add(name);
    this.send(name);
  }

  unwatch(name: string): void {
    if (!this.names.delete(name)) return;
    this.child?.stdin?.write(`del\t${name}\n`);
  }

  /** The relay's pid (tests kill it to see it come back). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }

  private send(name: string): void {
    const child = this.child;
    if (!child?.stdin?.writable) return; // bound when the relay (re)starts
    try {
      prepareNotifyDir(name);
    } catch (e) {
      return this.log(`${name}: ${(e as Error).message}`);
    }
    const path = notifySocketPath(name);
    if (/[\t\n]/.test(path)) return this.log(`${name}: its socket path ${JSON.stringify(path)} holds a tab or a newline: not served`);
    child.stdin.write(`add\t${name}\t${path}\t/${containerCgroup(name)}\n`);
  }

  private spawn(): void {
    const child = spawn(notifyHelperPath(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.starts++;
    const started = Date.now();
    child.on('error', (e) => this.log(`cannot run ${notifyHelperPath()}: ${e.message}`));
    child.stdin!.on('error', () => undefined); // a dead relay: its exit restarts it
    createInterface({ input: child.stdout! }).on('line', (line) => this.line(line));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      this.restartMs = Date.now() - started > 10_000 ? 100 : Math.min(this.restartMs * 2, 5000);
      this.log(`the relay ended (${signal ?? `status ${code}`}); starting it again in ${this.restartMs} ms`);
      this.timer = setTimeout(() => this.spawn(), this.restartMs);
    });
    for (const n of this.names) this.send(n);
  }

  private line(line: string): void {
    let m: { key?: string; pid?: number; msg?: string; error?: string; dropped?: number; why?: string };
    try {
      m = JSON.parse(line);
    } catch {
      return this.log(`unreadable line from the relay: ${line.slice(0, 200)}`);
    }
    if (typeof m.key !== 'string' || !this.names.has(m.key)) return;
    if (m.error) return this.log(`${m.key}: cannot bind its socket: ${m.error}`);
    if (m.dropped) return this.log(`${m.key}: dropped ${m.dropped} message(s): ${m.why}`);
    if (typeof m.msg === 'string' && typeof m.pid === 'number') this.onMessage(m.key, notifyFields(m.msg), m.pid);
  }
}

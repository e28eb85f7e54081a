/**
 * The daemon's event stream: every change recorded in the root's journal (by the daemon, the library
 * in another process or a CLI), and what the engines do on their own, which no journal line explains:
 * an LXC container whose init exits, a QEMU that is killed (`died`), or one that runs without a D-RE
 * start (`appeared`).
 */
import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { isLocked } from '../core/lock.js';
import { journalPath, parseEvents, record, type EventType, type JournalEvent } from '../core/journal.js';
import type { Kind } from '../core/paths.js';

/** What the stream carries: journal events and the daemon's operation updates. */
export type StreamEvent = JournalEvent | { time: string; type: 'operation'; operation: unknown };

/** A container kind as the watcher sees it: its names and the process whose life is the container's. */
export interface Watched {
  kind: Kind;
  list(): Promise<string[]>;
  enginePid(name: string): number | undefined;
}

/** Events after which the container's engine process is expected to live, or to be gone. */
const ALIVE_AFTER = new Set<EventType>(['started', 'restarted', 'immigrating', 'appeared']);
const GONE_AFTER = new Set<EventType>(['stopped', 'destroyed', 'migrated', 'died', 'created', 'snapshot-loaded']);

/** Follows the journal file from its end, across rotations (the writer renames it to `.1`). */
class JournalReader {
  private fd: number | undefined;
  private ino = 0;
  private offset = 0;
  private partial = '';

  constructor(private readonly path: string) {
    this.open(true);
  }

  private open(atEnd: boolean): void {
    try {
      this.fd = openSync(this.path, 'r');
      const st = fstatSync(this.fd);
      this.ino = st.ino;
      this.offset = atEnd ? st.size : 0;
    } catch {
      this.fd = undefined;
    }
  }

  /** The events appended since the last read. */
  read(): JournalEvent[] {
    if (this.fd === undefined) this.open(false);
    const out = this.drain();
    let current: number | undefined;
    try {
      current = statSync(this.path).ino;
    } catch {
      current = undefined;
    }
    if (this.fd !== undefined && current !== this.ino) {
      closeSync(this.fd); // rotated: the old file is drained above, the new one is read from its start
      this.fd = undefined;
      this.partial = '';
      if (current !== undefined) {
        this.open(false);
        out.push(...this.drain());
      }
    }
    return out;
  }

  private drain(): JournalEvent[] {
    if (this.fd === undefined) return [];
    const chunks: string[] = [];
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      chunks.push(buf.toString('utf8', 0, n));
    }
    const text = this.partial + chunks.join('');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? ''; // an unfinished last line waits for its end
    return parseEvents(lines);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

interface Tracked {
  /** What the journal says the engine process should be doing. */
  expectAlive: boolean;
  /** How many ticks in a row the engine has disagreed with that while nobody held the lock. */
  disagreed: number;
}

export class EventHub {
  private readonly subscribers = new Set<(e: StreamEvent) => void>();
  private readonly reader = new JournalReader(journalPath());
  private readonly tracked = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;

  constructor(
    private readonly kinds: Watched[],
    private readonly tickMs = 200,
  ) {}

  async start(): Promise<void> {
    for (const k of this.kinds)
      for (const n of await safeList(k)) this.tracked.set(`${k.kind}/${n}`, { expectAlive: k.enginePid(n) !== undefined, disagreed: 0 });
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    try {
      // Wakes the stream as soon as a writer appends (the tick is the fallback: inotify may miss a rotation).
      this.watcher = watch(journalPath(), () => this.readJournal());
    } catch {
      this.watcher = undefined;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.watcher?.close();
    this.reader.close();
  }

  subscribe(fn: (e: StreamEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  publish(e: StreamEvent): void {
    for (const fn of this.subscribers) fn(e);
  }

  /** Publishes what the journal has gained since the last read (the supervisor calls it before each step it takes). */
  readJournal(): void {
    for (const e of this.reader.read()) {
      const t = this.tracked.get(`${e.kind}/${e.name}`) ?? { expectAlive: false, disagreed: 0 };
      if (ALIVE_AFTER.has(e.type)) t.expectAlive = true;
      if (GONE_AFTER.has(e.type)) t.expectAlive = false;
      t.disagreed = 0;
      if (e.type === 'destroyed') this.tracked.delete(`${e.kind}/${e.name}`);
      else this.tracked.set(`${e.kind}/${e.name}`, t);
      this.publish(e);
    }
  }

  /**
   * The journal first, then the engines. A disagreement counts only while no D-RE process holds the
   * container's lock, and must last two ticks: a change's journal line is written just after its lock
   * is dropped, and must not be taken for the engine acting alone.
   */
  private async tick(): Promise<void> {
    if (this.ticking) return; // the one before is still listing
    this.ticking = true;
    try {
      await this.checkEngines();
    } finally {
      this.ticking = false;
    }
  }

  private ticking = false;

  private async checkEngines(): Promise<void> {
    const names = await Promise.all(this.kinds.map(safeList)); // listed before the journal is read: a create meanwhile is in both
    this.readJournal();
    let recorded = false;
    for (const [i, k] of this.kinds.entries()) {
      for (const n of names[i]) {
        const key = `${k.kind}/${n}`;
        const t = this.tracked.get(key) ?? { expectAlive: false, disagreed: 0 };
        this.tracked.set(key, t);
        const alive = k.enginePid(n) !== undefined;
        if (alive === t.expectAlive || isLocked(k.kind, n)) {
          t.disagreed = 0;
          continue;
        }
        if (++t.disagreed < 2) continue;
        t.expectAlive = alive;
        t.disagreed = 0;
        const why = alive ? 'runs without a D-RE start' : k.kind === 'app' ? "the container's init exited" : 'the QEMU process is gone';
        // Into the journal, like every change: the stream shows it from there, and it stays on record.
        record(k.kind, n, alive ? 'appeared' : 'died', { cause: 'engine', reason: why });
        recorded = true;
      }
    }
    if (recorded) this.readJournal();
  }
}

async function safeList(k: Watched): Promise<string[]> {
  try {
    return await k.list();
  } catch {
    return [];
  }
}

/**
 * Background operations of the daemon: long work (a create that builds its base, commit, checkpoint,
 * restart, migration) answered at once with an operation a client polls or waits on. They live in the
 * daemon's memory only: what they change is on disk under the container's lock, so a daemon killed
 * mid-operation leaves what a killed CLI would, and the next call heals it.
 */
import { randomUUID } from 'node:crypto';
import type { Kind } from '../core/paths.js';
import { errorBody, type ErrorBody } from './errors.js';

export interface Operation {
  id: string;
  description: string;
  kind: Kind;
  name: string;
  status: 'running' | 'success' | 'failure';
  progress: { stage: string; percent?: number } | null;
  created_at: string;
  updated_at: string;
  result: unknown;
  error: ErrorBody | null;
}

/** Finished operations are kept this long (and at most KEEP_FINISHED of them) for late waiters. */
const FINISHED_TTL_MS = 10 * 60_000;
const KEEP_FINISHED = 256;

export type Progress = (stage: string, percent?: number) => void;

export class Operations {
  private readonly ops = new Map<string, Operation>();
  private readonly done = new Map<string, Promise<void>>();

  /** Called on every change of an operation (the event stream shows them). */
  constructor(private readonly changed: (op: Operation) => void = () => {}) {}

  start(kind: Kind, name: string, description: string, work: (progress: Progress) => Promise<unknown>): Operation {
    const now = new Date().toISOString();
    const op: Operation = {
      id: randomUUID(),
      description,
      kind,
      name,
      status: 'running',
      progress: null,
      created_at: now,
      updated_at: now,
      result: null,
      error: null,
    };
    this.ops.set(op.id, op);
    const update = (fields: Partial<Operation>) => {
      Object.assign(op, fields, { updated_at: new Date().toISOString() });
      this.changed({ ...op });
    };
    this.changed({ ...op });
    const finished = (async () => {
      try {
        const result = await work((stage, percent) => update({ progress: { stage, percent } }));
        update({ status: 'success', result: result ?? null });
      } catch (e) {
        update({ status: 'failure', error: errorBody(e) });
      }
      this.prune();
    })();
    this.done.set(op.id, finished);
    return { ...op };
  }

  get(id: string): Operation | undefined {
    const op = this.ops.get(id);
    return op && { ...op };
  }

  list(): Operation[] {
    return [...this.ops.values()].map((op) => ({ ...op }));
  }

  /** The operation once it has ended, or as it stands after `timeoutMs`. */
  async wait(id: string, timeoutMs: number): Promise<Operation | undefined> {
    const finished = this.done.get(id);
    if (!finished) return undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    return this.get(id);
  }

  private prune(): void {
    const finished = [...this.ops.values()].filter((op) => op.status !== 'running');
    const cutoff = Date.now() - FINISHED_TTL_MS;
    finished.forEach((op, i) => {
      if (Date.parse(op.updated_at) < cutoff || i < finished.length - KEEP_FINISHED) {
        this.ops.delete(op.id);
        this.done.delete(op.id);
      }
    });
  }
}

/**
 * The one undo idiom: each step that changed something adds how to take it back; when the work fails,
 * the steps run last first, each best effort, and the work's own error is the one thrown (an undo that
 * fails too is not allowed to hide why the work failed). When the work succeeds, nothing is undone.
 */
export class Revert {
  private steps: (() => void)[] = [];

  /** Adds how to take back the change just made. */
  add(step: () => void): void {
    this.steps.push(step);
  }

  /** Takes every change back, last first; a step that throws is passed over. */
  undo(): void {
    for (const step of this.steps.reverse()) {
      try {
        step();
      } catch {
        /* best effort: the work's error is the one to report */
      }
    }
    this.steps = [];
  }
}

/** As Revert for asynchronous work: a step may return a promise, which is awaited before the step before it runs. */
export class AsyncRevert {
  private steps: (() => unknown)[] = [];

  /** Adds how to take back the change just made. */
  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** Takes every change back, last first, each awaited; a step that throws or rejects is passed over. */
  async undo(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch {
        /* best effort: the work's error is the one to report */
      }
    }
    this.steps = [];
  }
}

/** Runs `work` with a Revert that is undone if it throws. */
export function withRevert<T>(work: (r: Revert) => T): T {
  const r = new Revert();
  try {
    return work(r);
  } catch (e) {
    r.undo();
    throw e;
  }
}

/** As withRevert for asynchronous work, whose undo steps may be asynchronous too. */
export async function withRevertAsync<T>(work: (r: AsyncRevert) => Promise<T>): Promise<T> {
  const r = new AsyncRevert();
  try {
    return await work(r);
  } catch (e) {
    await r.undo();
    throw e;
  }
}

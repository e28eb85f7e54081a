/**
 * Work an operation leaves running after it returned (removing what it set aside, off a rollback's
 * path). Failures are dropped: such work is clean-up that a later operation redoes. A process that is
 * about to exit (the CLIs) waits for it first, so nothing is left half-done for no reason.
 */
const pending = new Set<Promise<void>>();

export function inBackground(work: Promise<unknown>): void {
  const settled: Promise<void> = work.then(
    () => undefined,
    () => undefined,
  );
  pending.add(settled);
  void settled.finally(() => pending.delete(settled));
}

/** Resolves once all background work, including work started meanwhile, has ended. */
export async function backgroundSettled(): Promise<void> {
  while (pending.size > 0) await Promise.all(pending);
}

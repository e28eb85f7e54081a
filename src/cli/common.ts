/** Small helpers of the CLIs' commands: integer words and list rows. */
import { dreError, isDreError } from '../core/errors.js';

/** Parses an integer flag or argument, or throws DRE_ERR_INVALID_ARGUMENT naming it. */
export function intArg(text: string | boolean | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || !/^-?\d+$/.test(text)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be an integer, not ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * The rows of a `list`: a container whose row cannot be made (a damaged record) is listed with status
 * UNKNOWN and its error, and named on stderr, so one broken container never hides the others.
 */
export async function listRows<R extends object>(
  prog: string,
  names: string[],
  row: (name: string) => Promise<R>,
): Promise<(({ name: string } & R) | { name: string; status: 'UNKNOWN'; error: string })[]> {
  return Promise.all(
    names.map(async (name) => {
      try {
        return { name, ...(await row(name)) };
      } catch (e) {
        if (!isDreError(e)) throw e;
        process.stderr.write(`${prog}: ${name}: ${e.errName}: ${e.message}\n`);
        return { name, status: 'UNKNOWN' as const, error: `${e.errName}: ${e.message}` };
      }
    }),
  );
}

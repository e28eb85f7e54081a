/** How a failure goes over the wire: `{ error, code, message }` with the spec's code, and an HTTP status that fits it. */
import { isDreError, type DreErrName } from '../core/errors.js';

export interface ErrorBody {
  error: DreErrName;
  code: number;
  message: string;
}

/** A DreError as its body; anything else is a daemon fault, reported as UNKNOWN_STATUS with its message. */
export function errorBody(e: unknown): ErrorBody {
  if (isDreError(e)) return { error: e.errName, code: e.code, message: e.message };
  return { error: 'DRE_ERR_CONTAINER_UNKNOWN_STATUS', code: -117, message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}

const BAD_REQUEST = new Set<DreErrName>(['DRE_ERR_INVALID_ARGUMENT', 'DRE_ERR_NULL_POINTER', 'DRE_ERR_REQUEST_TOO_LONG', 'DRE_ERR_INVALID_HOSTNAME']);
const CONFLICT = new Set<DreErrName>([
  'DRE_ERR_CONTAINER_RUNNING',
  'DRE_ERR_CONTAINER_STOPPED',
  'DRE_ERR_CONTAINER_SUSPENDED',
  'DRE_ERR_CONTAINER_BUSY',
  'DRE_ERR_DEVICE_BUSY',
]);

export function httpStatusOf(name: DreErrName): number {
  if (BAD_REQUEST.has(name)) return 400;
  if (name === 'DRE_ERR_PERMISSION_DENIED') return 403;
  if (name.endsWith('_NONEXISTENCE')) return 404;
  if (name.endsWith('_EXISTENCE') || CONFLICT.has(name)) return 409;
  return 500;
}

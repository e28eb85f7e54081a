import { dreError } from './errors.js';
import type { Kind } from './paths.js';

/** Longest name of a container, base, snapshot, checkpoint or cgroup (DESIGN.md). */
export const NAME_MAX = 64;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Checks a caller's name and returns it: null/undefined → NULL_POINTER, too long → REQUEST_TOO_LONG,
 * anything else malformed → INVALID_ARGUMENT. A valid name never leaves its parent directory.
 */
export function checkName(value: unknown, what: string): string {
  if (value === null || value === undefined) throw dreError('DRE_ERR_NULL_POINTER', `${what} is null`);
  if (typeof value !== 'string') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be a string`);
  if (value.length > NAME_MAX) {
    throw dreError('DRE_ERR_REQUEST_TOO_LONG', `${what} is ${value.length} characters long; the limit is ${NAME_MAX}`);
  }
  if (!NAME_RE.test(value)) {
    throw dreError(
      'DRE_ERR_INVALID_ARGUMENT',
      `${what} ${JSON.stringify(value)} is invalid: use 1-${NAME_MAX} characters of A-Z a-z 0-9 _ . -, not starting with . or -`,
    );
  }
  return value;
}

/**
 * A caller's value as a message shows it, whatever it is: String() and templates throw on a
 * null-prototype object or a Symbol, JSON.stringify on a BigInt.
 */
export function shown(value: unknown): string {
  try {
    if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
    if (typeof value === 'symbol') return value.toString();
    if (typeof value === 'bigint') return `${value.toString()}n`;
    if (typeof value === 'function') return 'a function';
    if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
    return String(value);
  } catch {
    return 'an unreadable value'; // a revoked Proxy
  }
}

/** Checks an integer argument such as a PID or a port: null → NULL_POINTER, else INVALID_ARGUMENT. */
export function checkInt(value: unknown, what: string, min: number, max: number): number {
  if (value === null || value === undefined) throw dreError('DRE_ERR_NULL_POINTER', `${what} is null`);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} ${shown(value)} is not an integer in ${min}..${max}`);
  }
  return value;
}

/** Checks an object argument (a handle, a data or resource struct) is present. */
export function checkObject<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw dreError('DRE_ERR_NULL_POINTER', `${what} is null`);
  if (typeof value !== 'object') throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what} must be an object`);
  return value;
}

/** A name cut into runs of digits and of other characters, the units of natural order. */
const runsOf = (name: string): string[] => name.match(/\d+|\D+/g) ?? [];

const isDigitRun = (run: string) => run.charCodeAt(0) >= 48 && run.charCodeAt(0) <= 57;

/** Two digit runs by value (any length: no overflow), then by spelling ("01" before "1"). */
function compareNumbers(x: string, y: string): number {
  const [sx, sy] = [x.replace(/^0+/, ''), y.replace(/^0+/, '')];
  if (sx.length !== sy.length) return sx.length < sy.length ? -1 : 1;
  if (sx !== sy) return sx < sy ? -1 : 1;
  return x < y ? -1 : 1;
}

function compareRuns(ra: string[], rb: string[], a: string, b: string): number {
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const [x, y] = [ra[i], rb[i]];
    if (x === y) continue;
    if (isDigitRun(x) && isDigitRun(y)) return compareNumbers(x, y);
    return x < y ? -1 : 1;
  }
  return ra.length - rb.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Natural order of names: runs of digits compare as numbers (c1, c2, c10), the rest by code point; a total order. */
export function compareNames(a: string, b: string): number {
  return compareRuns(runsOf(a), runsOf(b), a, b);
}

/** `names` in natural order (compareNames), each cut into runs once rather than at every comparison. */
export function sortNames(names: string[]): string[] {
  return names
    .map((name) => ({ name, runs: runsOf(name) }))
    .sort((p, q) => compareRuns(p.runs, q.runs, p.name, q.name))
    .map((p) => p.name);
}

/**
 * The key of a container's lease in leases.json (and of its port forward): an application
 * container's name as it always was, `sys:NAME` for a system container (no name holds a colon).
 */
export const leaseKey = (kind: Kind, name: string) => (kind === 'app' ? name : `${kind}:${name}`);

/** The container a lease key names. */
export function leaseOwner(key: string): { kind: Kind; name: string } {
  return key.startsWith('sys:') ? { kind: 'sys', name: key.slice(4) } : { kind: 'app', name: key };
}

/** "application container NAME" or "system container NAME", for messages. */
export const ownerLabel = (key: string) => {
  const o = leaseOwner(key);
  return `${o.kind === 'app' ? 'application' : 'system'} container ${o.name}`;
};

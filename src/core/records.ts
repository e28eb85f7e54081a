/**
 * Every record D-RE reads back from its own files, checked for shape and types on each read: a torn
 * or hand-edited file becomes one clear error about that file, never a TypeError deep in an operation.
 * A few typed checks rather than a schema library: five small shapes, and the short-lived CLI pays
 * nothing to load them.
 */
import { readSmallFile } from './smallfile.js';
import { dreError, type DreErrName } from './errors.js';

/** A check returns what is wrong with a value (a short phrase), or undefined when it is fine. */
export type Check = (v: unknown) => string | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const str: Check = (v) => (typeof v === 'string' ? undefined : 'a string');
export const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'true or false');
export const int =
  (min: number, max: number): Check =>
  (v) =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `an integer in ${min}..${max}`;
export const orNull =
  (c: Check): Check =>
  (v) => {
    const wrong = v === null ? undefined : c(v);
    return wrong && `${wrong} or null`;
  };
export const strings: Check = (v) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : 'a list of strings');
export const object: Check = (v) => (isObject(v) ? undefined : 'an object');

/** An object with these fields (a `?` after the name: may be absent); fields not named are allowed, so newer records still read. */
export function shape(fields: Record<string, Check>): Check {
  return (v) => {
    if (!isObject(v)) return 'not a JSON object';
    for (const [key, check] of Object.entries(fields)) {
      const optional = key.endsWith('?');
      const k = optional ? key.slice(0, -1) : key;
      if (!(k in v) || v[k] === undefined) {
        if (optional) continue;
        return `field "${k}" is missing`;
      }
      const wrong = check(v[k]);
      if (wrong) return `field "${k}" must be ${wrong}`;
    }
    return undefined;
  };
}

/** A map of names to values that pass `check`. */
export function mapOf(check: Check): Check {
  return (v) => {
    if (!isObject(v)) return 'not a JSON object';
    for (const [k, x] of Object.entries(v)) {
      const wrong = check(x);
      if (wrong) return `entry "${k}": ${wrong}`;
    }
    return undefined;
  };
}

/** A record file that exists but cannot be used: what is wrong with it, for the caller to turn into its code. */
export class DamagedRecord extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path} is damaged (${problem})`);
    this.name = 'DamagedRecord';
  }
}

/** Reads and checks a JSON record: undefined when the file does not exist, DamagedRecord when it is torn or has the wrong shape. */
export function readRecordFile<T>(path: string, check: Check): T | undefined {
  let text: string;
  try {
    text = readSmallFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DamagedRecord(path, `unreadable: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DamagedRecord(path, text.trim() === '' ? 'empty' : 'not valid JSON');
  }
  const wrong = check(value);
  if (wrong) throw new DamagedRecord(path, wrong);
  return value as T;
}

/** As readRecordFile, with a damaged record as the DreError `code` whose message ends in `fix`. */
export function readRecordOr<T>(path: string, check: Check, code: DreErrName, what: string, fix: string): T | undefined {
  try {
    return readRecordFile<T>(path, check);
  } catch (e) {
    if (e instanceof DamagedRecord) throw dreError(code, `${what}: its record ${e.path} is damaged (${e.problem}); ${fix}`, e);
    throw e;
  }
}

/** Tells the user about a damaged record that was skipped or rebuilt (at once: a CLI exits right after). */
export function warnDamaged(e: DamagedRecord, outcome: string): void {
  process.stderr.write(`D-RE warning: ${e.message}; ${outcome}\n`);
}

/** As readRecordFile, with a damaged record read as absent (its problem handed to `onDamage`). */
export function readRecordOrSkip<T>(path: string, check: Check, onDamage: (e: DamagedRecord) => void): T | undefined {
  try {
    return readRecordFile<T>(path, check);
  } catch (e) {
    if (e instanceof DamagedRecord) {
      onDamage(e);
      return undefined;
    }
    throw e;
  }
}

// The record kinds. Their TypeScript types live beside the code that writes them; these are the checks.

/** An application container's dre.json (src/app/layout.ts AppRecord). */
export const appRecordCheck = shape({
  name: str,
  base: str,
  port: orNull(int(1, 65535)),
  'address?': orNull(str),
  created: str,
  'layers?': strings,
  'privileged?': bool,
  'idmap?': object,
  'memory?': orNull(int(1, Number.MAX_SAFE_INTEGER)),
  'cpus?': orNull(int(1, 1024)),
});

/** A snapshot record of an application container (src/app/layers.ts SnapshotRecord). */
export const snapshotRecordCheck = shape({ tag: str, layers: strings, created: str });

/** A committed Base Image's base.json (src/app/base.ts BaseRecord). */
export const baseRecordCheck = shape({
  parent: orNull(str),
  layers: (v) => strings(v) ?? ((v as string[]).length === 0 ? 'a non-empty list of strings' : undefined),
  from: shape({ container: str, snapshot: str }),
  created: str,
});

/** leases.json: container name → its address and SSH port (src/app/network.ts Lease). */
export const leasesCheck = mapOf(shape({ address: orNull(str), port: orNull(int(1, 65535)) }));

/** A system container's dre.json (src/sys/layout.ts SysRecord). */
export const sysRecordCheck = shape({
  name: str,
  base: orNull(str),
  rootfs: orNull(str),
  memoryMiB: int(1, 2 ** 31 - 1),
  accel: (v) => (v === 'kvm' || v === 'tcg' ? undefined : '"kvm" or "tcg"'),
  'address?': orNull(str),
  'port?': orNull(int(1, 65535)),
  'mac?': str,
  'cpus?': int(1, 255),
  'diskMiB?': int(1, 2 ** 31 - 1),
  created: str,
});

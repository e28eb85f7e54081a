/** The spec's dre_err_t (1.1.2.1): the one table every layer derives its codes from. */
export const DRE_ERR = {
  DRE_ERR_INVALID_ARGUMENT: -101,
  DRE_ERR_PERMISSION_DENIED: -102,
  DRE_ERR_DAWARE_MOD_NONEXISTENCE: -103,
  DRE_ERR_NO_VT: -104,
  DRE_ERR_CONTAINER_NONEXISTENCE: -111,
  DRE_ERR_CONTAINER_EXISTENCE: -112,
  DRE_ERR_CONTAINER_RUNNING: -113,
  DRE_ERR_CONTAINER_STOPPED: -114,
  DRE_ERR_CONTAINER_SUSPENDED: -115,
  DRE_ERR_CONTAINER_BUSY: -116,
  DRE_ERR_CONTAINER_UNKNOWN_STATUS: -117,
  DRE_ERR_BASE_NONEXISTENCE: -121,
  DRE_ERR_BASE_EXISTENCE: -122,
  DRE_ERR_REMOVE_BASE_FAILED: -123,
  DRE_ERR_SNAPSHOT_NONEXISTENCE: -131,
  DRE_ERR_SNAPSHOT_EXISTENCE: -132,
  DRE_ERR_SAVE_SNAPSHOT_FAILED: -133,
  DRE_ERR_LOAD_SNAPSHOT_FAILED: -134,
  DRE_ERR_REMOVE_SNAPSHOT_FAILED: -135,
  DRE_ERR_COMMIT_SNAPSHOT_FAILED: -136,
  DRE_ERR_CGROUP_NONEXISTENCE: -141,
  DRE_ERR_CGROUP_EXISTENCE: -142,
  DRE_ERR_PID_NONEXISTENCE: -143,
  DRE_ERR_SET_LIMIT_FAILED: -144,
  DRE_ERR_UNSET_LIMIT_FAILED: -145,
  DRE_ERR_DESTROY_CGROUP_FAILED: -146,
  DRE_ERR_DEVICE_BUSY: -151,
  DRE_ERR_NO_TAP_AVAILABLE: -152,
  DRE_ERR_NO_SOCKET_AVAILABLE: -153,
  DRE_ERR_NFS_MOUNT_FAILED: -154,
  DRE_ERR_BIND_FAILED: -155,
  DRE_ERR_INVALID_HOSTNAME: -156,
  DRE_ERR_NULL_POINTER: -201,
  DRE_ERR_REQUEST_TOO_LONG: -202,
} as const;

export type DreErrName = keyof typeof DRE_ERR;
export type DreErrCode = (typeof DRE_ERR)[DreErrName];

const NAME_OF_CODE = new Map<number, DreErrName>(Object.entries(DRE_ERR).map(([name, code]) => [code, name as DreErrName]));

/** The spec name of a code, e.g. -112 → "DRE_ERR_CONTAINER_EXISTENCE". */
export function errName(code: number): DreErrName | undefined {
  return NAME_OF_CODE.get(code);
}

/**
 * The one error type of D-RE. `code` is the spec's dre_err_t, `errName` its spec name (e.g.
 * "DRE_ERR_CONTAINER_RUNNING"; `name` is "DreError", as for every Error subclass); the message says
 * which operation on which container failed and why; `cause` carries the engine's own words.
 */
export class DreError extends Error {
  /** The spec's dre_err_t, e.g. -113. */
  readonly code: DreErrCode;
  /** The spec's name of `code`, e.g. "DRE_ERR_CONTAINER_RUNNING". */
  readonly errName: DreErrName;

  constructor(name: DreErrName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DreError';
    this.errName = name;
    this.code = DRE_ERR[name];
  }

  /** "DRE_ERR_X: message", the one line the CLIs print. */
  override toString(): string {
    return `${this.errName}: ${this.message}`;
  }
}

export function isDreError(e: unknown): e is DreError {
  return e instanceof DreError;
}

/** Shorthand used throughout: `throw dreError('DRE_ERR_CONTAINER_RUNNING', 'start web: ...')`. */
export function dreError(name: DreErrName, message: string, cause?: unknown): DreError {
  return new DreError(name, message, cause === undefined ? undefined : { cause });
}

/** Runs `fn`, turning a DreError into its code (the spec layer never throws for a documented failure). */
export async function toReturnCode(fn: () => Promise<unknown>): Promise<number> {
  try {
    const r = await fn();
    return typeof r === 'number' ? r : 0;
  } catch (e) {
    if (isDreError(e)) return e.code;
    throw e;
  }
}

import { DRE_ERR, dreError, toReturnCode } from '../core/errors.js';
import { checkInt, checkName, checkObject, shown } from '../core/names.js';
import { RESOURCE, type Resource, type ResourceType } from '../core/driver.js';
import { checkResourceType } from '../core/limits.js';

/** A C out-parameter: the function sets `value` (e.g. `const list = {}; await dre_app_get_container_list(list)`). */
export interface Out<T> {
  value?: T;
}

/** Each dre_err_t constant under its spec name. */
export const {
  DRE_ERR_INVALID_ARGUMENT,
  DRE_ERR_PERMISSION_DENIED,
  DRE_ERR_DAWARE_MOD_NONEXISTENCE,
  DRE_ERR_NO_VT,
  DRE_ERR_CONTAINER_NONEXISTENCE,
  DRE_ERR_CONTAINER_EXISTENCE,
  DRE_ERR_CONTAINER_RUNNING,
  DRE_ERR_CONTAINER_STOPPED,
  DRE_ERR_CONTAINER_SUSPENDED,
  DRE_ERR_CONTAINER_BUSY,
  DRE_ERR_CONTAINER_UNKNOWN_STATUS,
  DRE_ERR_BASE_NONEXISTENCE,
  DRE_ERR_BASE_EXISTENCE,
  DRE_ERR_REMOVE_BASE_FAILED,
  DRE_ERR_SNAPSHOT_NONEXISTENCE,
  DRE_ERR_SNAPSHOT_EXISTENCE,
  DRE_ERR_SAVE_SNAPSHOT_FAILED,
  DRE_ERR_LOAD_SNAPSHOT_FAILED,
  DRE_ERR_REMOVE_SNAPSHOT_FAILED,
  DRE_ERR_COMMIT_SNAPSHOT_FAILED,
  DRE_ERR_CGROUP_NONEXISTENCE,
  DRE_ERR_CGROUP_EXISTENCE,
  DRE_ERR_PID_NONEXISTENCE,
  DRE_ERR_SET_LIMIT_FAILED,
  DRE_ERR_UNSET_LIMIT_FAILED,
  DRE_ERR_DESTROY_CGROUP_FAILED,
  DRE_ERR_DEVICE_BUSY,
  DRE_ERR_NO_TAP_AVAILABLE,
  DRE_ERR_NO_SOCKET_AVAILABLE,
  DRE_ERR_NFS_MOUNT_FAILED,
  DRE_ERR_BIND_FAILED,
  DRE_ERR_INVALID_HOSTNAME,
  DRE_ERR_NULL_POINTER,
  DRE_ERR_REQUEST_TOO_LONG,
} = DRE_ERR;

/** Runs the idiomatic call behind a spec function: resolves to 0 (or the call's status), or the dre_err_t. */
export const specCall = toReturnCode;

/** Handles given to dre_*_close: using one again is DRE_ERR_INVALID_ARGUMENT, as a freed handle is in C. */
const closedHandles = new WeakSet<object>();

/** A spec handle `{ type, name }`: checks it is there, open, of the right type, and names a valid container. */
export function handleName(h: unknown, type: number): string {
  const { type: t, name } = checkObject(h, 'handle') as { type?: unknown; name?: unknown };
  if (closedHandles.has(h as object)) throw dreError('DRE_ERR_INVALID_ARGUMENT', 'the handle was closed; open the container again');
  if (t !== type) throw dreError('DRE_ERR_INVALID_ARGUMENT', `handle type ${shown(t)} is not ${type}`);
  return checkName(name, 'container name');
}

/** dre_*_close: checks the handle (null → NULL_POINTER, closed twice → INVALID_ARGUMENT), then retires it. */
export async function closeHandle(h: unknown, type: number): Promise<number> {
  return specCall(async () => {
    handleName(h, type);
    closedHandles.add(h as object);
  });
}

/** Checks an out-parameter holder is there. */
export const holder = <T>(out: Out<T> | null | undefined, what: string): Out<T> => checkObject(out, what);

/** Sets a holder's `value`: one that refuses the write (frozen, sealed, read-only `value`) → INVALID_ARGUMENT, never a TypeError. */
export function put<T>(out: Out<T>, what: string, value: T): void {
  if (!Reflect.set(out, 'value', value)) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: the holder cannot take a value (frozen, sealed or read-only)`);
}

/** A host PID (or, with what = 'vpid', a PID inside the container) argument. */
export const pidArg = (p: unknown, what = 'pid') => checkInt(p, what, 1, 2 ** 31 - 1);

/**
 * The dre_*_release_*_list functions: a JavaScript list needs no freeing, but the argument is checked
 * as in C, and a holder passed instead of its list is emptied.
 */
export async function releaseList(list: unknown): Promise<number> {
  if (list === null || list === undefined) return DRE_ERR_NULL_POINTER;
  if (typeof list !== 'object') return DRE_ERR_INVALID_ARGUMENT;
  // Reflect: a frozen holder is left as it is rather than throwing.
  if (!Array.isArray(list) && 'value' in (list as object)) Reflect.deleteProperty(list as object, 'value');
  return 0;
}

/** dre_app_resource_value_t and dre_sys_resource_value_t: one struct, printed twice in the spec. */
export interface ResourceValue {
  type: ResourceType;
  udata: {
    cpu?: { parcent?: number; cores?: string };
    mem?: { usage_in_bytes?: number; memsw_usage_in_bytes?: number };
  };
}

/** The spec's resource struct → the driver's Resource (the union member that matches `type`). */
export function toResource(r: unknown): Resource {
  const v = checkObject(r as ResourceValue, 'resource');
  const u = v.udata ?? {};
  switch (v.type) {
    case RESOURCE.CPU: {
      // The spec's struct has `int parcent`: a fraction is refused here (the idiomatic layer takes one).
      const parcent = u.cpu?.parcent;
      if (typeof parcent === 'number' && !Number.isInteger(parcent))
        throw dreError('DRE_ERR_INVALID_ARGUMENT', `parcent ${parcent} is not a whole number (the spec's int parcent)`);
      return { type: RESOURCE.CPU, percent: parcent };
    }
    case RESOURCE.CPU_CORE:
      return { type: RESOURCE.CPU_CORE, cores: u.cpu?.cores };
    case RESOURCE.MEMORY:
      return { type: RESOURCE.MEMORY, bytes: u.mem?.usage_in_bytes };
    case RESOURCE.MEMSW:
      return { type: RESOURCE.MEMSW, bytes: u.mem?.memsw_usage_in_bytes };
    default:
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `resource type ${shown(v.type)} is not one of 1-4`);
  }
}

/** The type a get_resource struct asks for (only its `type` is read). */
export const resourceTypeOf = (r: unknown): ResourceType => checkResourceType((checkObject(r, 'resource') as { type?: unknown }).type);

/** Writes a measured Resource back into the spec's struct (CPU % rounded: `int parcent`); a struct that refuses the write → INVALID_ARGUMENT. */
export function fillResource(target: ResourceValue, r: Resource): void {
  const refused = () => dreError('DRE_ERR_INVALID_ARGUMENT', 'resource: the struct cannot take the value (frozen, sealed or not an object)');
  let udata: unknown = Reflect.get(target, 'udata');
  if (udata === undefined || udata === null) {
    udata = {};
    if (!Reflect.set(target, 'udata', udata)) throw refused();
  }
  if (typeof udata !== 'object' || udata === null) throw refused();
  const [key, field, value] =
    r.type === RESOURCE.CPU
      ? ['cpu', 'parcent', r.percent === undefined ? undefined : Math.round(r.percent)]
      : r.type === RESOURCE.CPU_CORE
        ? ['cpu', 'cores', r.cores]
        : r.type === RESOURCE.MEMORY
          ? ['mem', 'usage_in_bytes', r.bytes]
          : ['mem', 'memsw_usage_in_bytes', r.bytes];
  const before: unknown = Reflect.get(udata, key);
  if (!Reflect.set(udata, key, { ...(typeof before === 'object' && before !== null ? before : {}), [field]: value })) throw refused();
}

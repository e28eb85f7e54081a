/**
 * `dre/app`: the spec's Application Container API (section 1.2) under its exact names, a thin facade
 * over the LXC driver. Functions resolve to 0, a status (11-14) or a negative dre_err_t; never throw
 * for a documented failure.
 */
import { appDriver } from '../app/driver.js';
import { RESOURCE, STATUS, type ResourceType } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkObject, shown } from '../core/names.js';
import {
  closeHandle,
  fillResource,
  handleName,
  holder,
  put,
  pidArg,
  releaseList,
  resourceTypeOf,
  specCall,
  toResource,
  type Out,
  type ResourceValue,
} from './common.js';

export * from './common.js';

export const DRE_APP_CONTAINER_RESOURCE_CPU = RESOURCE.CPU;
export const DRE_APP_CONTAINER_RESOURCE_CPU_CORE = RESOURCE.CPU_CORE;
export const DRE_APP_CONTAINER_RESOURCE_MEMORY = RESOURCE.MEMORY;
export const DRE_APP_CONTAINER_RESOURCE_MEMSW = RESOURCE.MEMSW;
export const DRE_APP_CONTAINER_STATUS_STOP = STATUS.STOP;
export const DRE_APP_CONTAINER_STATUS_RUNNING = STATUS.RUNNING;
export const DRE_APP_CONTAINER_STATUS_SUSPENDED = STATUS.SUSPENDED;
export const DRE_APP_CONTAINER_STATUS_BUSY = STATUS.BUSY;
export const DRE_APP_CONTAINER_TYPE_LXC = 1;

export type dre_return_t = number;
export type dre_name_t = string;
export type dre_list_t = dre_name_t[];
export type dre_app_resource_t = ResourceType;
export type dre_app_status_t = (typeof STATUS)[keyof typeof STATUS];
export type dre_app_type_t = typeof DRE_APP_CONTAINER_TYPE_LXC;

/** dre_app_data (printed in the spec as a union named dre_app_handle: it is this struct). */
export interface dre_app_data {
  type: dre_app_type_t;
  udata: { lxc: { port?: number | null; base?: string | null } };
}
export interface dre_app_handle {
  type: dre_app_type_t;
  name: string;
}
export interface dre_app_pid_t {
  pid: number;
  vpid: number;
}
export type dre_app_pid_list_t = dre_app_pid_t[];
export type dre_app_resource_value_t = ResourceValue;

const name = (h: unknown) => handleName(h, DRE_APP_CONTAINER_TYPE_LXC);

export const dre_app_create_container = (n: string, data: dre_app_data | null): Promise<dre_return_t> =>
  specCall(async () => {
    const d = checkObject(data, 'data');
    if (d.type !== DRE_APP_CONTAINER_TYPE_LXC) throw dreError('DRE_ERR_INVALID_ARGUMENT', `data.type ${shown(d.type)} is not DRE_APP_CONTAINER_TYPE_LXC`);
    const lxc = checkObject(checkObject(d.udata, 'data.udata').lxc, 'data.udata.lxc');
    await appDriver.create(n, { base: lxc.base, port: lxc.port });
  });
export const dre_app_destroy_container = (n: string): Promise<dre_return_t> => specCall(() => appDriver.destroy(n));

/** Resolves to a handle, or null when the container does not exist or the name is bad. */
export async function dre_app_open(n: string): Promise<dre_app_handle | null> {
  const r = await specCall(async () => {
    await appDriver.status(n);
  });
  return r === 0 ? { type: DRE_APP_CONTAINER_TYPE_LXC, name: n } : null;
}
/** Retires the handle: a later call with it (or a second close) → DRE_ERR_INVALID_ARGUMENT. */
export const dre_app_close = (h: dre_app_handle | null): Promise<dre_return_t> => closeHandle(h, DRE_APP_CONTAINER_TYPE_LXC);

export const dre_app_start = (h: dre_app_handle): Promise<dre_return_t> => specCall(() => appDriver.start(name(h)));
export const dre_app_stop = (h: dre_app_handle): Promise<dre_return_t> => specCall(() => appDriver.stop(name(h)));
export const dre_app_suspend = (h: dre_app_handle): Promise<dre_return_t> => specCall(() => appDriver.suspend(name(h)));
export const dre_app_resume = (h: dre_app_handle): Promise<dre_return_t> => specCall(() => appDriver.resume(name(h)));
export const dre_app_status = (h: dre_app_handle): Promise<dre_return_t> => specCall(() => appDriver.status(name(h)));
export const dre_app_get_pid = (h: dre_app_handle, pid: Out<number>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(pid, 'pid'), 'pid', await appDriver.pid(n));
  });
export const dre_app_get_container_list = (list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    put(holder(list, 'list'), 'list', await appDriver.list());
  });
export const dre_app_release_container_list = releaseList;

export const dre_app_save_snapshot = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.saveSnapshot(name(h), tag));
export const dre_app_load_snapshot = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.loadSnapshot(name(h), tag));
export const dre_app_remove_snapshot = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.removeSnapshot(name(h), tag));
export const dre_app_get_snapshot_list = (h: dre_app_handle, list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(list, 'list'), 'list', await appDriver.listSnapshots(n));
  });
export const dre_app_release_snapshot_list = releaseList;
export const dre_app_commit_snapshot = (h: dre_app_handle, tag: string, base: string): Promise<dre_return_t> =>
  specCall(() => appDriver.commitSnapshot(name(h), tag, base));
export const dre_app_get_base_list = (list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    put(holder(list, 'list'), 'list', await appDriver.listBases());
  });
export const dre_app_release_base_list = releaseList;
export const dre_app_remove_base = (base: string): Promise<dre_return_t> => specCall(() => appDriver.removeBase(base));

export const dre_app_checkpoint = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.checkpoint(name(h), tag));
export const dre_app_restart = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.restart(name(h), tag));
export const dre_app_get_checkpoint_list = (h: dre_app_handle, list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(list, 'list'), 'list', await appDriver.listCheckpoints(n));
  });
export const dre_app_release_checkpoint_list = releaseList;
export const dre_app_remove_checkpoint = (h: dre_app_handle, tag: string): Promise<dre_return_t> => specCall(() => appDriver.removeCheckpoint(name(h), tag));

export const dre_app_create_cgroup = (h: dre_app_handle, cgroup: string): Promise<dre_return_t> => specCall(() => appDriver.createCgroup(name(h), cgroup));
export const dre_app_destroy_cgroup = (h: dre_app_handle, cgroup: string): Promise<dre_return_t> => specCall(() => appDriver.destroyCgroup(name(h), cgroup));
export const dre_app_bind_pid = (h: dre_app_handle, cgroup: string, pid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.bindPid(name(h), cgroup, pidArg(pid)));
export const dre_app_bind_vpid = (h: dre_app_handle, cgroup: string, vpid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.bindVpid(name(h), cgroup, pidArg(vpid, 'vpid')));
export const dre_app_unbind_pid = (h: dre_app_handle, cgroup: string, pid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.unbindPid(name(h), cgroup, pidArg(pid)));
export const dre_app_unbind_vpid = (h: dre_app_handle, cgroup: string, vpid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.unbindVpid(name(h), cgroup, pidArg(vpid, 'vpid')));
export const dre_app_set_resource = (h: dre_app_handle, cgroup: string, r: dre_app_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    await appDriver.setResource(n, cgroup, toResource(r));
  });
export const dre_app_unset_resource = (h: dre_app_handle, cgroup: string, r: dre_app_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    await appDriver.unsetResource(n, cgroup, toResource(r));
  });
export const dre_app_get_resource = (h: dre_app_handle, pid: number, r: dre_app_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    const target = checkObject(r, 'resource');
    fillResource(target, await appDriver.getResource(n, pidArg(pid), resourceTypeOf(target)));
  });

export const dre_app_register_pid = (h: dre_app_handle, pid: number): Promise<dre_return_t> => specCall(() => appDriver.registerPid(name(h), pidArg(pid)));
export const dre_app_register_vpid = (h: dre_app_handle, vpid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.registerVpid(name(h), pidArg(vpid, 'vpid')));
export const dre_app_unregister_pid = (h: dre_app_handle, pid: number): Promise<dre_return_t> => specCall(() => appDriver.unregisterPid(name(h), pidArg(pid)));
export const dre_app_unregister_vpid = (h: dre_app_handle, vpid: number): Promise<dre_return_t> =>
  specCall(() => appDriver.unregisterVpid(name(h), pidArg(vpid, 'vpid')));
export const dre_app_get_registered_pid_list = (h: dre_app_handle, list: Out<dre_app_pid_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(list, 'list'), 'list', await appDriver.registeredPids(n));
  });
export const dre_app_release_registered_pid_list = releaseList;

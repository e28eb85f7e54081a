/**
 * `dre/sys`: the spec's System Container API (section 1.3) under its exact names, a thin facade over
 * the QEMU driver. Functions resolve to 0, a status (11-14) or a negative dre_err_t; never throw for a
 * documented failure.
 */
import { RESOURCE, STATUS, type ResourceType } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkObject, shown } from '../core/names.js';
import { sysDriver } from '../sys/driver.js';
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

export const DRE_SYS_CONTAINER_RESOURCE_CPU = RESOURCE.CPU;
export const DRE_SYS_CONTAINER_RESOURCE_CPU_CORE = RESOURCE.CPU_CORE;
export const DRE_SYS_CONTAINER_RESOURCE_MEMORY = RESOURCE.MEMORY;
export const DRE_SYS_CONTAINER_RESOURCE_MEMSW = RESOURCE.MEMSW;
export const DRE_SYS_CONTAINER_STATUS_STOP = STATUS.STOP;
export const DRE_SYS_CONTAINER_STATUS_RUNNING = STATUS.RUNNING;
export const DRE_SYS_CONTAINER_STATUS_SUSPENDED = STATUS.SUSPENDED;
export const DRE_SYS_CONTAINER_STATUS_BUSY = STATUS.BUSY;
export const DRE_SYS_CONTAINER_TYPE_KVM = 100;

export type dre_return_t = number;
export type dre_name_t = string;
export type dre_list_t = dre_name_t[];
export type dre_sys_resource_t = ResourceType;
export type dre_sys_status_t = (typeof STATUS)[keyof typeof STATUS];
export type dre_sys_type_t = typeof DRE_SYS_CONTAINER_TYPE_KVM;

/** dre_sys_data (printed in the spec with unions: it is this struct). `memory_size` is in MiB. */
export interface dre_sys_data {
  type: dre_sys_type_t;
  udata: { kvm: { memory_size?: number | null; base?: string | null; rootfs?: string | null } };
}
export interface dre_sys_handle {
  type: dre_sys_type_t;
  name: string;
}
export type dre_sys_resource_value_t = ResourceValue;

const name = (h: unknown) => handleName(h, DRE_SYS_CONTAINER_TYPE_KVM);

export const dre_sys_create_container = (n: string, data: dre_sys_data | null): Promise<dre_return_t> =>
  specCall(async () => {
    const d = checkObject(data, 'data');
    if (d.type !== DRE_SYS_CONTAINER_TYPE_KVM) throw dreError('DRE_ERR_INVALID_ARGUMENT', `data.type ${shown(d.type)} is not DRE_SYS_CONTAINER_TYPE_KVM`);
    const kvm = checkObject(checkObject(d.udata, 'data.udata').kvm, 'data.udata.kvm');
    await sysDriver.create(n, { memorySize: kvm.memory_size, base: kvm.base, rootfs: kvm.rootfs });
  });
export const dre_sys_destroy_container = (n: string): Promise<dre_return_t> => specCall(() => sysDriver.destroy(n));

/** Resolves to a handle, or null when the container does not exist or the name is bad. */
export async function dre_sys_open(n: string): Promise<dre_sys_handle | null> {
  const r = await specCall(async () => {
    await sysDriver.status(n);
  });
  return r === 0 ? { type: DRE_SYS_CONTAINER_TYPE_KVM, name: n } : null;
}
/** Retires the handle: a later call with it (or a second close) → DRE_ERR_INVALID_ARGUMENT. */
export const dre_sys_close = (h: dre_sys_handle | null): Promise<dre_return_t> => closeHandle(h, DRE_SYS_CONTAINER_TYPE_KVM);

export const dre_sys_start = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.start(name(h)));
export const dre_sys_stop = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.stop(name(h)));
export const dre_sys_suspend = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.suspend(name(h)));
export const dre_sys_resume = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.resume(name(h)));
export const dre_sys_status = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.status(name(h)));
export const dre_sys_get_pid = (h: dre_sys_handle, pid: Out<number>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(pid, 'pid'), 'pid', await sysDriver.pid(n));
  });
export const dre_sys_get_container_list = (list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    put(holder(list, 'list'), 'list', await sysDriver.list());
  });
export const dre_sys_release_container_list = releaseList;

export const dre_sys_save_snapshot = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.saveSnapshot(name(h), tag));
export const dre_sys_load_snapshot = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.loadSnapshot(name(h), tag));
export const dre_sys_remove_snapshot = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.removeSnapshot(name(h), tag));
export const dre_sys_get_snapshot_list = (h: dre_sys_handle, list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(list, 'list'), 'list', await sysDriver.listSnapshots(n));
  });
export const dre_sys_release_snapshot_list = releaseList;
export const dre_sys_commit_snapshot = (h: dre_sys_handle, tag: string, base: string): Promise<dre_return_t> =>
  specCall(() => sysDriver.commitSnapshot(name(h), tag, base));
export const dre_sys_get_base_list = (list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    put(holder(list, 'list'), 'list', await sysDriver.listBases());
  });
export const dre_sys_release_base_list = releaseList;
export const dre_sys_remove_base = (base: string): Promise<dre_return_t> => specCall(() => sysDriver.removeBase(base));

export const dre_sys_checkpoint = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.checkpoint(name(h), tag));
export const dre_sys_restart = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.restart(name(h), tag));
export const dre_sys_get_checkpoint_list = (h: dre_sys_handle, list: Out<dre_list_t>): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    put(holder(list, 'list'), 'list', await sysDriver.listCheckpoints(n));
  });
export const dre_sys_release_checkpoint_list = releaseList;
export const dre_sys_remove_checkpoint = (h: dre_sys_handle, tag: string): Promise<dre_return_t> => specCall(() => sysDriver.removeCheckpoint(name(h), tag));

export const dre_sys_create_cgroup = (h: dre_sys_handle, cgroup: string): Promise<dre_return_t> => specCall(() => sysDriver.createCgroup(name(h), cgroup));
export const dre_sys_destroy_cgroup = (h: dre_sys_handle, cgroup: string): Promise<dre_return_t> => specCall(() => sysDriver.destroyCgroup(name(h), cgroup));
export const dre_sys_bind_pid = (h: dre_sys_handle, cgroup: string, pid: number): Promise<dre_return_t> =>
  specCall(() => sysDriver.bindPid(name(h), cgroup, pidArg(pid)));
export const dre_sys_unbind_pid = (h: dre_sys_handle, cgroup: string, pid: number): Promise<dre_return_t> =>
  specCall(() => sysDriver.unbindPid(name(h), cgroup, pidArg(pid)));
export const dre_sys_set_resource = (h: dre_sys_handle, cgroup: string, r: dre_sys_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    await sysDriver.setResource(n, cgroup, toResource(r));
  });
export const dre_sys_unset_resource = (h: dre_sys_handle, cgroup: string, r: dre_sys_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    await sysDriver.unsetResource(n, cgroup, toResource(r));
  });
export const dre_sys_get_resource = (h: dre_sys_handle, pid: number, r: dre_sys_resource_value_t): Promise<dre_return_t> =>
  specCall(async () => {
    const n = name(h);
    const target = checkObject(r, 'resource');
    fillResource(target, await sysDriver.getResource(n, pidArg(pid), resourceTypeOf(target)));
  });

export const dre_sys_share = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.share(name(h)));
export const dre_sys_unshare = (h: dre_sys_handle): Promise<dre_return_t> => specCall(() => sysDriver.unshare(name(h)));
/** Migrates over the share when the container is shared, else with its disk copied in the stream (the driver decides, under the lock). */
export const dre_sys_migration_start = (h: dre_sys_handle, target: string, port: number): Promise<dre_return_t> =>
  specCall(async () => {
    await sysDriver.migrate(name(h), target, port);
  });
export const dre_sys_immigration_start = (n: string, port: number): Promise<dre_return_t> => specCall(() => sysDriver.immigrate(n, port));

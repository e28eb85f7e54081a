import { dreError } from '../core/errors.js';
import type { Resource, ResourceType } from '../core/driver.js';
// Placeholder until the shared cgroup module lands: every call fails with the code a failed operation gives.
const todo = (what: string) => Promise.reject(dreError('DRE_ERR_CGROUP_NONEXISTENCE', `${what}: not available in this build`));
export const createCgroup = (name: string, cgroup: string): Promise<void> => todo(`create cgroup ${cgroup} in ${name}`);
export const destroyCgroup = (name: string, cgroup: string): Promise<void> => todo(`destroy cgroup ${cgroup} in ${name}`);
export const bindPid = (name: string, cgroup: string, pid: number): Promise<void> => todo(`bind ${pid} to ${cgroup} in ${name}`);
export const unbindPid = (name: string, cgroup: string, pid: number): Promise<void> => todo(`unbind ${pid} from ${cgroup} in ${name}`);
export const setResource = (name: string, cgroup: string, r: Resource): Promise<void> => todo(`set ${r.type} on ${cgroup} in ${name}`);
export const unsetResource = (name: string, cgroup: string, r: Resource): Promise<void> => todo(`unset ${r.type} on ${cgroup} in ${name}`);
export const getResource = (name: string, pid: number, type: ResourceType): Promise<Resource> => todo(`get ${type} of ${pid} in ${name}`) as never;

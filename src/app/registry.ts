import { dreError } from '../core/errors.js';
/** A process under D-Aware control: its PID on the host and in the container. */
export interface RegisteredPid {
  pid: number;
  vpid: number;
}
// Placeholder until issue 6 lands.
const todo = (what: string) => Promise.reject(dreError('DRE_ERR_DAWARE_MOD_NONEXISTENCE', `${what}: not available in this build`));
export const registerPid = (name: string, pid: number): Promise<void> => todo(`register ${pid} in ${name}`);
export const registerVpid = (name: string, vpid: number): Promise<void> => todo(`register vpid ${vpid} in ${name}`);
export const unregisterPid = (name: string, pid: number): Promise<void> => todo(`unregister ${pid} in ${name}`);
export const unregisterVpid = (name: string, vpid: number): Promise<void> => todo(`unregister vpid ${vpid} in ${name}`);
export const registeredPids = (name: string): Promise<RegisteredPid[]> => todo(`list registered pids of ${name}`) as never;

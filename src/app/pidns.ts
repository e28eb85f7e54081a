/** A running application container's PID namespace, and translation between its PIDs and the host's. */
import { dreError } from '../core/errors.js';
import { readdirSync } from 'node:fs';
import { isAlive, nsId, nsPids } from '../core/proc.js';

/** The running container's PID namespace: its init, the namespace link, and its depth in NSpid. */
export interface PidNamespace {
  init: number;
  ns: string;
  level: number;
}

/** The PID namespace of the container whose init is `init` (undefined: stopped). */
export function pidNamespace(name: string, init: number | undefined, what: string): PidNamespace {
  const ns = init === undefined ? undefined : nsId(init, 'pid');
  const ids = init === undefined ? undefined : nsPids(init);
  if (init === undefined || ns === undefined || ids === undefined) throw dreError('DRE_ERR_CONTAINER_STOPPED', `${what} ${name}: the container is stopped`);
  return { init, ns, level: ids.length - 1 };
}

/** The VPID of host process `pid` if it lives in the container's PID namespace. */
export function vpidIn(c: PidNamespace, pid: number): number | undefined {
  if (nsId(pid, 'pid') !== c.ns || !isAlive(pid)) return undefined;
  return nsPids(pid)?.[c.level];
}

/** VPID → host PID of every process in the container's PID namespace (one pass over /proc). */
export function processesOf(c: PidNamespace): Map<number, number> {
  const map = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const vpid = vpidIn(c, Number(e));
    if (vpid !== undefined) map.set(vpid, Number(e));
  }
  return map;
}

/** The host PID of the process the container knows as `vpid`, or undefined when it has none such. */
export function hostPidOf(c: PidNamespace, vpid: number): number | undefined {
  return processesOf(c).get(vpid);
}

/**
 * What the library does on a host in a cluster (its daemon joined one: config.ts) when a shared
 * container starts, stops or migrates: it claims the container in etcd under the daemon's lease,
 * says what the container should be doing, and gives the claim up or passes it on. Each call opens
 * its own client and returns a DreError (CONTAINER_BUSY) when etcd cannot decide.
 */
import { readSupervision } from '../core/supervision.js';
import { dreError } from '../core/errors.js';
import { clusterConfig, type ClusterConfig } from './config.js';
import { clusterError, withEtcd } from './etcd.js';
import {
  allWanted,
  forgetWanted,
  members,
  ownerOf,
  owners,
  passOwnership,
  releaseOwnership,
  setWanted,
  takeOwnership,
  wantedOf,
  type Ownership,
} from './ownership.js';

/** The cluster this host is in, or undefined (then shares work through lease files). */
export const inCluster = (): ClusterConfig | undefined => clusterConfig();

async function onCluster<T>(cfg: ClusterConfig, what: string, fn: Parameters<typeof withEtcd<T>>[1]): Promise<T> {
  try {
    return await withEtcd(cfg, fn);
  } catch (e) {
    throw clusterError(what, e);
  }
}

/**
 * Before a shared container boots here: ownership taken under the daemon's lease, and (`toRun`) the
 * container marked as one that should run, with its recovery policy, for the host that takes over.
 * Returns the fencing token.
 */
export function claim(cfg: ClusterConfig, n: string, what: string, toRun = true): Promise<number> {
  return onCluster(cfg, `${what} ${n}`, async (etcd) => {
    const token = await takeOwnership(etcd, n, cfg, cfg.leaseId, what);
    if (toRun) await setWanted(etcd, n, { running: true, policy: readSupervision('sys', n).policy, host: cfg.host });
    return token;
  });
}

/** After an unshare: the cluster forgets the container (it is this host's own again). */
export function forget(cfg: ClusterConfig, n: string, what: string): Promise<void> {
  return onCluster(cfg, `${what} ${n}`, async (etcd) => {
    await releaseOwnership(etcd, n, cfg.hostId);
    await forgetWanted(etcd, n);
  });
}

/**
 * After a stop (`stopped`: then the container should not run any more) or a failed start here: this
 * host no longer owns it. Only an ownership under this host's current lease says what the container
 * should do: one under a lease the host lost (it was fenced, and its guest killed) or none at all
 * leaves the container to fail over, as the cluster decides.
 */
export function unclaim(cfg: ClusterConfig, n: string, what: string, stopped: boolean): Promise<void> {
  return onCluster(cfg, `${what} ${n}`, async (etcd) => {
    const held = await ownerOf(etcd, n);
    if (!held || held.owner.hostId !== cfg.hostId) return; // nobody's, or another host's: not this host's to say
    const wanted = stopped && held.lease === cfg.leaseId ? await wantedOf(etcd, n) : undefined;
    if (wanted?.running) await setWanted(etcd, n, { ...wanted, running: false, host: cfg.host });
    await releaseOwnership(etcd, n, cfg.hostId, held);
  });
}

/** Who owns `n` now (undefined: nobody). */
export function ownership(cfg: ClusterConfig, n: string, what: string): Promise<Ownership | undefined> {
  return onCluster(cfg, `${what} ${n}`, (etcd) => ownerOf(etcd, n));
}

/** This host's current fencing token for `n`; not this host's → CONTAINER_BUSY (it must not write the container's image). */
export async function myToken(cfg: ClusterConfig, n: string, what: string): Promise<number> {
  const held = await ownership(cfg, n, what);
  if (held?.owner.hostId !== cfg.hostId) {
    throw dreError(
      'DRE_ERR_CONTAINER_BUSY',
      `${what} ${n}: this host no longer owns it in the cluster (${held ? `host ${held.owner.host} does` : 'nobody does'})`,
    );
  }
  return held.token;
}

/** A migration's hand-over: this host's ownership (token) passes to member `hostId`. Returns the new token and the member's name. */
export function passTo(cfg: ClusterConfig, n: string, token: number, hostId: string, what: string): Promise<{ token: number; host: string }> {
  return onCluster(cfg, `${what} ${n}`, async (etcd) => {
    const to = (await members(etcd)).find((m) => m.hostId === hostId);
    if (!to) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${n}: the target host ${hostId} is not a member of the cluster now`);
    return { token: await passOwnership(etcd, n, token, to, what), host: to.host };
  });
}

/** A shared container as the cluster sees it: which member runs it (null: none), whether it should run, whether it fails over. */
export interface ClusterContainer {
  name: string;
  host: string | null;
  token: number | null;
  wanted: 'running' | 'stopped';
  failover: boolean;
}

/** Every shared container the cluster knows, by name; not in a cluster → DRE_ERR_INVALID_ARGUMENT. */
export async function clusterContainers(what: string): Promise<ClusterContainer[]> {
  const cfg = inCluster();
  if (!cfg) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: this host is not in a cluster (start dred --cluster etcd://...)`);
  return onCluster(cfg, what, async (etcd) => {
    const [wanted, owned] = await Promise.all([allWanted(etcd), owners(etcd)]);
    const names = [...new Set([...wanted.keys(), ...owned.keys()])].sort();
    return names.map((name) => {
      const o = owned.get(name);
      const w = wanted.get(name);
      return { name, host: o?.owner.host ?? null, token: o?.token ?? null, wanted: w?.running ? 'running' : 'stopped', failover: w?.policy?.failover === true };
    });
  });
}

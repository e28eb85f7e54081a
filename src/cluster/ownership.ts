/**
 * What a D-RE cluster keeps in etcd, and the transactions on it:
 *
 *   dre/hosts/HOSTID    a member: its name, daemon address, TLS certificate   (under its lease)
 *   dre/owners/NAME     the host that runs shared container NAME               (under that host's lease)
 *   dre/shared/NAME     what NAME should be doing: running or not, its policy  (no lease: outlives hosts)
 *
 * Ownership is taken in one transaction (the key must not exist) and its key's revision is the
 * fencing token: etcd's revisions only grow, so a later owner always holds a larger token, and a
 * guard beside the image (lease.ts) refuses the writes of a host whose token is older. A host whose
 * lease lapses loses its owner keys with it; another host may then take them.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { dreError } from '../core/errors.js';
import type { RecoveryPolicy } from '../core/supervision.js';
import { clusterError } from './etcd.js';

export const hostKey = (hostId: string) => `dre/hosts/${hostId}`;
export const ownerKey = (n: string) => `dre/owners/${n}`;
export const sharedKey = (n: string) => `dre/shared/${n}`;
const HOSTS = 'dre/hosts/';
const OWNERS = 'dre/owners/';
const SHARED = 'dre/shared/';

/** A member of the cluster as it announces itself. */
export interface Member {
  hostId: string;
  host: string;
  /** Its daemon's HTTPS listener (HOST:PORT), or null when it has none. */
  address: string | null;
  /** Its daemon's TLS certificate (PEM): the other members trust it, and check it when they call. */
  cert: string | null;
  leaseId: string;
  since: string;
}

export interface Owner {
  hostId: string;
  host: string;
  since: string;
}

/** Who owns a container, with the fencing token of that ownership. */
export interface Ownership {
  owner: Owner;
  token: number;
  /** The etcd lease the ownership lives under (its owner's at the time it was taken). */
  lease: string;
}

/** What a shared container should be doing, whoever runs it: a container that should run, and may fail over, is started elsewhere when its host is lost. */
export interface Wanted {
  running: boolean;
  policy: RecoveryPolicy | null;
  /** The host that wrote this last. */
  host: string;
}

const text = (kv: IKeyValue) => kv.value.toString('utf8');
const nameOf = (kv: IKeyValue, prefix: string) => kv.key.toString('utf8').slice(prefix.length);

export async function announce(etcd: Etcd3, m: Member): Promise<void> {
  await etcd.put(hostKey(m.hostId)).value(JSON.stringify(m)).lease(m.leaseId).exec();
}

export async function members(etcd: Etcd3): Promise<Member[]> {
  const r = await etcd.getAll().prefix(HOSTS).exec();
  return r.kvs.map((kv) => JSON.parse(text(kv)) as Member);
}

export async function ownerOf(etcd: Etcd3, n: string): Promise<Ownership | undefined> {
  const kv = (await etcd.get(ownerKey(n)).exec()).kvs[0];
  return kv && { owner: JSON.parse(text(kv)) as Owner, token: Number(kv.mod_revision), lease: kv.lease };
}

/** Every owned container: name → ownership. */
export async function owners(etcd: Etcd3): Promise<Map<string, Ownership>> {
  const r = await etcd.getAll().prefix(OWNERS).exec();
  return new Map(r.kvs.map((kv) => [nameOf(kv, OWNERS), { owner: JSON.parse(text(kv)) as Owner, token: Number(kv.mod_revision), lease: kv.lease }]));
}

/**
 * Takes ownership of `n` for host `me` under lease `leaseId`, in one transaction: granted when
 * nobody owns it (or `me` already does). Returns the fencing token; another owner → CONTAINER_BUSY.
 */
export async function takeOwnership(etcd: Etcd3, n: string, me: Omit<Owner, 'since'>, leaseId: string, what: string): Promise<number> {
  const value = JSON.stringify({ hostId: me.hostId, host: me.host, since: new Date().toISOString() } satisfies Owner);
  let r;
  try {
    r = await etcd
      .if(ownerKey(n), 'Create', '==', 0)
      .then(etcd.put(ownerKey(n)).value(value).lease(leaseId))
      .else(etcd.get(ownerKey(n)))
      .commit();
  } catch (e) {
    throw clusterError(`${what} ${n}`, e);
  }
  if (r.succeeded) return Number(r.header.revision);
  const kv = r.responses[0]?.response_range?.kvs?.[0];
  const holder = kv && (JSON.parse(text(kv)) as Owner);
  if (kv && holder?.hostId === me.hostId) return Number(kv.mod_revision);
  throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${n}: the shared container is run by host ${holder?.host ?? 'unknown'} (since ${holder?.since ?? '?'})`);
}

/** Gives up ownership of `n` when `hostId` holds it (a compare on the key's revision: never another host's). */
export async function releaseOwnership(etcd: Etcd3, n: string, hostId: string, known?: Ownership): Promise<void> {
  const held = known ?? (await ownerOf(etcd, n));
  if (held?.owner.hostId !== hostId) return;
  await etcd
    .if(ownerKey(n), 'Mod', '==', held.token)
    .then(etcd.delete().key(ownerKey(n)))
    .commit();
}

/**
 * A migration's hand-over: ownership passes from the holder of `token` to member `to`, under its
 * lease, in one transaction. Returns the new token; a token that is no longer current → CONTAINER_BUSY.
 */
export async function passOwnership(etcd: Etcd3, n: string, token: number, to: Member, what: string): Promise<number> {
  const value = JSON.stringify({ hostId: to.hostId, host: to.host, since: new Date().toISOString() } satisfies Owner);
  const r = await etcd
    .if(ownerKey(n), 'Mod', '==', token)
    .then(etcd.put(ownerKey(n)).value(value).lease(to.leaseId))
    .commit();
  if (!r.succeeded) throw dreError('DRE_ERR_CONTAINER_BUSY', `${what} ${n}: this host's ownership (token ${token}) is no longer current`);
  return Number(r.header.revision);
}

export async function setWanted(etcd: Etcd3, n: string, w: Wanted): Promise<void> {
  await etcd.put(sharedKey(n)).value(JSON.stringify(w)).exec();
}

export async function wantedOf(etcd: Etcd3, n: string): Promise<Wanted | undefined> {
  const kv = (await etcd.get(sharedKey(n)).exec()).kvs[0];
  return kv && (JSON.parse(text(kv)) as Wanted);
}

export async function allWanted(etcd: Etcd3): Promise<Map<string, Wanted>> {
  const r = await etcd.getAll().prefix(SHARED).exec();
  return new Map(r.kvs.map((kv) => [nameOf(kv, SHARED), JSON.parse(text(kv)) as Wanted]));
}

export async function forgetWanted(etcd: Etcd3, n: string): Promise<void> {
  await etcd.delete().key(sharedKey(n)).exec();
}

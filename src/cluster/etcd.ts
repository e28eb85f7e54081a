/**
 * The etcd client D-RE uses (the `etcd3` package, loaded only by hosts in a cluster): every unary
 * call has a short deadline, so an unreachable etcd is an error in about a second, never a hang,
 * and every failure becomes a DreError that says which step could not reach the cluster.
 */
import { readFileSync } from 'node:fs';
import type { Etcd3, IOptions } from 'etcd3';
import { dreError, isDreError, type DreErrName } from '../core/errors.js';
import type { ClusterConfig, EtcdTls } from './config.js';

/** A unary call to etcd gets this long (a lease of a few seconds must notice a silent cluster well before it expires). */
export const CALL_DEADLINE_MS = 1_500;

/**
 * A client of the cluster at `endpoints`. etcd3's own fault handling (three retries, each member
 * behind a circuit breaker that stays open for 5 s) makes a cut-off host notice in over ten seconds
 * and a healed one wait: here a failed call is tried once more, on another member, and that is all.
 */
export async function openEtcd(endpoints: string[], tls?: EtcdTls, deadlineMs = CALL_DEADLINE_MS): Promise<Etcd3> {
  const [{ Etcd3: Client, isRecoverableError }, { handleWhen, noop, retry }] = await Promise.all([import('etcd3'), import('cockatiel')]);
  const options: IOptions = {
    hosts: endpoints,
    dialTimeout: deadlineMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + deadlineMs }),
    faultHandling: { host: () => noop, global: retry(handleWhen(isRecoverableError), { maxAttempts: 1 }) },
  };
  if (tls) {
    options.credentials = { rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) };
  }
  return new Client(options);
}

/** Runs `fn` on a client of the cluster `cfg` names, closed afterwards. */
export async function withEtcd<T>(cfg: Pick<ClusterConfig, 'endpoints' | 'tls'>, fn: (etcd: Etcd3) => Promise<T>): Promise<T> {
  const etcd = await openEtcd(cfg.endpoints, cfg.tls);
  try {
    return await fn(etcd);
  } finally {
    etcd.close();
  }
}

/** etcd said the lease is gone (expired or revoked): the daemon's lease lapsed, its keys with it. */
export function isLeaseGone(e: unknown): boolean {
  const text = `${(e as Error)?.name ?? ''} ${(e as Error)?.message ?? ''}`;
  return /LeaseInvalid|lease not found|expired or revoked/i.test(text);
}

/** A failure of an etcd call as a DreError (`code`, default CONTAINER_BUSY: the cluster cannot say who may act), the cause kept. */
export function clusterError(what: string, e: unknown, code: DreErrName = 'DRE_ERR_CONTAINER_BUSY') {
  if (isDreError(e)) return e;
  if (isLeaseGone(e)) return dreError(code, `${what}: this host's cluster lease has expired (is dred --cluster running here?)`, e);
  return dreError(code, `${what}: the etcd cluster does not answer: ${(e as Error)?.message ?? e}`, e);
}

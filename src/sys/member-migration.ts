/**
 * Migration in one command inside a cluster (`dre-sys migrate NAME HOST`): the target member's
 * daemon is asked over mutual TLS to wait for the guest (the spec's immigration), then the guest
 * moves there (the spec's migration); the ownership in etcd follows it (lease.ts, handOverLease).
 */
import { dreError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { inCluster } from '../cluster/claims.js';
import { withEtcd } from '../cluster/etcd.js';
import { members, type Member } from '../cluster/ownership.js';
import { runOnMember } from '../cluster/peer.js';
import { isDreError } from '../core/errors.js';
import { isShared } from './lease.js';
import { migrate, type MigrateOptions, type MigrationResult } from './migration.js';

/** Ports the target's QEMU listens on for the guest: a random one of the dynamic range, another if it is taken. */
const PORTS = { first: 49152, count: 16_000, attempts: 3 };
const IMMIGRATE_TIMEOUT_MS = 180_000;

/** The member `host` names: its host name, its id, or its daemon's address (with or without port). */
function findMember(all: Member[], host: string): Member | undefined {
  return all.find((m) => m.host === host || m.hostId === host || m.address === host || m.address?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') === host);
}

export async function migrateToMember(name: string, host: string, opts: Omit<MigrateOptions, 'copyDisk' | 'tlsDir'> = {}): Promise<MigrationResult> {
  const n = checkName(name, 'container name');
  const what = `migrate ${n} to ${host}`;
  const cfg = inCluster();
  if (!cfg) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: this host is not in a cluster (dred --cluster); give the target's PORT too`);
  if (!isShared(n))
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: it is not shared; only a shared container moves in one command (the target runs it from the share)`);
  const all = await withEtcd(cfg, members);
  const target = findMember(all, host);
  if (!target) throw dreError('DRE_ERR_INVALID_HOSTNAME', `${what}: no such member of the cluster (members: ${all.map((m) => m.host).join(', ')})`);
  if (target.hostId === cfg.hostId) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${what}: that is this host`);
  if (!target.address) throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: its dred has no TLS listener (--listen ADDR:PORT --tls DIR)`);
  const address = target.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  for (let attempt = 1; ; attempt++) {
    const port = PORTS.first + Math.floor(Math.random() * PORTS.count);
    try {
      await runOnMember(cfg, target, 'POST', '/1.0/sys/immigrations', { name: n, port }, IMMIGRATE_TIMEOUT_MS);
    } catch (e) {
      if (isDreError(e) && e.errName === 'DRE_ERR_NO_SOCKET_AVAILABLE' && attempt < PORTS.attempts && /port/.test(e.message)) continue; // that port is taken there
      throw e;
    }
    return migrate(n, address, port, opts);
  }
}

/**
 * Which etcd cluster this D-RE host belongs to, and under which lease: `dred --cluster` writes it to
 * the run dir when it joins and removes it when it leaves. The library and the CLIs read it to take
 * and give up ownership of shared containers under the daemon's lease (a lease is etcd's, not a
 * process's: any client may attach keys to it, and they go when the daemon stops renewing it).
 * Without the file this host is not in a cluster and shares work through lease files (lease.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dreError } from '../core/errors.js';
import { runRoot } from '../core/paths.js';
import { readJson, writeJsonAtomic } from '../core/store.js';

/** TLS to etcd: the CA that signed etcd's certificates, and this host's client certificate and key (PEM files). */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

export interface ClusterConfig {
  /** etcd's client URLs (http:// or, with TLS, https://). */
  endpoints: string[];
  tls?: EtcdTls;
  /** This host: its id (lease.ts's hostId), its name in messages, its daemon's HTTPS address (HOST:PORT) for other hosts, or null. */
  hostId: string;
  host: string;
  address: string | null;
  /** The daemon's TLS directory (server.crt/server.key: also its client certificate towards other members), or null. */
  tlsDir: string | null;
  /** The daemon's etcd lease (decimal string, as etcd3 gives it) and its TTL. */
  leaseId: string;
  ttlMs: number;
  daemonPid: number;
}

export const clusterConfigPath = () => join(runRoot(), 'cluster.json');

/** The cluster this host is in now (its daemon joined it), or undefined. */
export const clusterConfig = () => readJson<ClusterConfig>(clusterConfigPath());
export const writeClusterConfig = (c: ClusterConfig) => writeJsonAtomic(clusterConfigPath(), c);
export const removeClusterConfig = () => rmSync(clusterConfigPath(), { force: true });

/**
 * `etcd://HOST:PORT[,HOST:PORT...]` (or `etcds://`, TLS) as etcd's client URLs; anything else →
 * DRE_ERR_INVALID_ARGUMENT.
 */
export function parseClusterUrl(url: string): { endpoints: string[]; secure: boolean } {
  const m = /^(etcds?):\/\/([^/?#]+)\/?$/.exec(url);
  const hosts = m ? m[2].split(',') : [];
  const valid = hosts.length > 0 && hosts.every((h) => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(h) && Number(h.split(':').pop()) <= 65535);
  if (!m || !valid) throw dreError('DRE_ERR_INVALID_ARGUMENT', `cluster ${JSON.stringify(url)}: give etcd://HOST:PORT[,HOST:PORT...] (or etcds:// for TLS)`);
  const secure = m[1] === 'etcds';
  return { endpoints: hosts.map((h) => `${secure ? 'https' : 'http'}://${h}`), secure };
}

/** Where `--cluster-tls DIR` keeps the files for etcds://. */
export const etcdTlsFiles = (dir: string): EtcdTls => ({ ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') });

/** Monotonic milliseconds (CLOCK_MONOTONIC: the daemon and its watchdog read the same clock). */
export const monotonicMs = () => Number(process.hrtime.bigint() / 1_000_000n);

/** Until when (monotonicMs) this host may run shared guests: the daemon writes it at each renewal of its lease. */
export const deadlinePath = () => join(runRoot(), 'cluster', 'deadline');
export function readDeadline(): number | undefined {
  try {
    const text = readFileSync(deadlinePath(), 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Requests to another member's daemon over mutual TLS: this host's daemon certificate is the
 * client's, and the only server certificate accepted is the one the member published in etcd
 * (its fingerprint is checked, not a name: the members' certificates are self-signed).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { DRE_ERR, dreError, type DreErrName } from '../core/errors.js';
import { sleep } from '../core/proc.js';
import type { ClusterConfig } from './config.js';
import type { Member } from './ownership.js';

const REQUEST_TIMEOUT_MS = 30_000;

export interface PeerReply {
  status: number;
  body: Record<string, unknown>;
}

export function callMember(cfg: ClusterConfig, m: Member, method: string, path: string, body?: unknown): Promise<PeerReply> {
  const what = `${method} ${path} on ${m.host}`;
  if (!cfg.tlsDir)
    return Promise.reject(
      dreError('DRE_ERR_PERMISSION_DENIED', `${what}: this host's dred has no --tls directory (its certificate is its identity towards other hosts)`),
    );
  if (!m.address || !m.cert)
    return Promise.reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: that host's dred has no TLS listener (--listen ADDR:PORT --tls DIR)`));
  const expected = new X509Certificate(m.cert).fingerprint256;
  const [, host, port] = /^\[?(.*?)\]?:(\d+)$/.exec(m.address)!;
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        method,
        path,
        cert: readFileSync(join(cfg.tlsDir!, 'server.crt')),
        key: readFileSync(join(cfg.tlsDir!, 'server.key')),
        ca: m.cert!,
        checkServerIdentity: (_name, cert) =>
          cert.fingerprint256 === expected ? undefined : new Error(`${m.host} presented another certificate than the cluster knows`),
        headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
          } catch (e) {
            reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: the answer is not JSON`, e));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', (e) => reject(dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what}: ${e.message}`, e)));
    req.end(text);
  });
}

/** The error a member's daemon answered, as a DreError of its name. */
function remoteError(what: string, r: PeerReply): Error {
  const name = r.body.error as string | undefined;
  const known = name !== undefined && name in DRE_ERR ? (name as DreErrName) : 'DRE_ERR_DEVICE_BUSY';
  return dreError(known, `${what}: ${(r.body.message as string | undefined) ?? `HTTP ${r.status}`}`);
}

/** Runs a background operation on a member's daemon and waits for its end (its failure thrown as the DreError it names). */
export async function runOnMember(cfg: ClusterConfig, m: Member, method: string, path: string, body: unknown, timeoutMs: number): Promise<void> {
  const what = `${m.host}: ${method} ${path}`;
  const r = await callMember(cfg, m, method, path, body);
  if (r.status !== 202 && r.status !== 200) throw remoteError(what, r);
  if (r.status === 200) return;
  const deadline = Date.now() + timeoutMs;
  for (let op = r.body; ;) {
    if (op.status === 'success') return;
    if (op.status === 'failure') throw remoteError(what, { status: 500, body: (op.error as Record<string, unknown>) ?? {} });
    if (Date.now() > deadline) throw dreError('DRE_ERR_DEVICE_BUSY', `${what}: not done within ${Math.round(timeoutMs / 1000)} s`);
    const w = await callMember(cfg, m, 'GET', `/1.0/operations/${op.id as string}/wait?timeout=10`);
    if (w.status !== 200) throw remoteError(what, w);
    op = w.body;
    if (op.status === 'running') await sleep(50);
  }
}

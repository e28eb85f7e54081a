/**
 * The TCP listener: HTTPS that lets in only clients whose certificate is in the daemon's trust store
 * (Incus's model: the store holds the clients' own certificates, matched by SHA-256 fingerprint).
 *
 *   DIR/server.crt, DIR/server.key   the daemon's certificate (made with openssl when absent)
 *   DIR/trust/*.crt                  trusted client certificates (read at each connection)
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { dreError } from '../core/errors.js';
import { run, engineCause } from '../core/run.js';
import { handle, limit, type ServeOptions } from './server.js';

export const serverCertPath = (dir: string) => join(dir, 'server.crt');
export const serverKeyPath = (dir: string) => join(dir, 'server.key');
export const trustDir = (dir: string) => join(dir, 'trust');

/** Makes the daemon's own self-signed certificate the first time (as `incus` does on first start). */
export async function ensureServerCertificate(dir: string): Promise<void> {
  mkdirSync(trustDir(dir), { recursive: true, mode: 0o700 });
  if (existsSync(serverCertPath(dir)) && existsSync(serverKeyPath(dir))) return;
  const r = await run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      `/CN=dred@${hostname()}`,
      '-keyout',
      serverKeyPath(dir),
      '-out',
      serverCertPath(dir),
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0)
    throw dreError('DRE_ERR_PERMISSION_DENIED', `dred: cannot make a server certificate in ${dir}: ${r.stderr.trim()}`, engineCause('openssl', r));
}

/** SHA-256 fingerprints (as Node prints them, AA:BB:...) of the certificates in the trust store. */
export function trustedFingerprints(dir: string): Set<string> {
  const out = new Set<string>();
  let files: string[] = [];
  try {
    files = readdirSync(trustDir(dir)).filter((f) => f.endsWith('.crt') || f.endsWith('.pem'));
  } catch {
    return out;
  }
  for (const f of files) {
    try {
      out.add(new X509Certificate(readFileSync(join(trustDir(dir), f))).fingerprint256);
    } catch {
      process.stderr.write(`dred: ${join(trustDir(dir), f)} is not a certificate; ignored\n`);
    }
  }
  return out;
}

/** `alsoTrusted`: more fingerprints to let in (a cluster's members, whose certificates etcd holds). */
export function tlsServer(dir: string, opts: ServeOptions, alsoTrusted: () => Set<string> = () => new Set()): Server {
  const server = createServer({
    cert: readFileSync(serverCertPath(dir)),
    key: readFileSync(serverKeyPath(dir)),
    requestCert: true,
    // Chains are not what is trusted here, single certificates are: the fingerprint check below decides.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const cert = socket.getPeerCertificate();
    const fp = cert?.fingerprint256;
    if (!fp || !(trustedFingerprints(dir).has(fp) || alsoTrusted().has(fp))) {
      socket.destroy(); // no certificate, or one not in the store: nothing but the refusal
    }
  });
  server.on('request', (req, res) => void handle(req, res, opts));
  return limit(server);
}

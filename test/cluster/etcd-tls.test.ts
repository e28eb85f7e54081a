import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { sleep, waitFor } from '../../src/core/proc.js';
import { Daemon } from '../support/dred.js';
import { freePort } from '../support/env.js';

// One etcd member on loopback that serves only TLS with client certificates (etcds://).
const dir = join(process.env.DRE_TEST_TMP!, `etcd-tls-${process.pid}`);
const certs = join(dir, 'certs');
let etcd: ChildProcess;
let port: number;

function ssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: certs, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed EC certificate `file`.crt with its key `file`.key in `cwd`. */
function selfSigned(cwd: string, cn: string, file: string): void {
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`];
  execFileSync('openssl', [...args, '-keyout', `${file}.key`, '-out', `${file}.crt`], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, etcd's server certificate for 127.0.0.1, and a client certificate (D-RE's names: ca.crt, client.crt, client.key). */
function makeCertificates(): void {
  mkdirSync(certs, { recursive: true, mode: 0o700 });
  selfSigned(certs, 'dre-test-etcd-ca', 'ca');
  for (const [who, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=dre-test-${who}`,
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
    );
    execFileSync('sh', ['-c', `printf '${ext}\n' > ${who}.ext`], { cwd: certs });
    ssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${who}.ext`,
      '-out',
      `${who}.crt`,
    );
  }
}

const client = () =>
  new Etcd3({
    hosts: `https://127.0.0.1:${port}`,
    credentials: {
      rootCertificate: readFileSync(join(certs, 'ca.crt')),
      certChain: readFileSync(join(certs, 'client.crt')),
      privateKey: readFileSync(join(certs, 'client.key')),
    },
  });

/** Processes whose environment names this run's DRE_RUNDIR and whose command is dred's watchdog. */
function watchdogs(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return (
          readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('watchdog.js') &&
          readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`DRE_RUNDIR=${process.env.DRE_RUNDIR}`)
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('dred --cluster etcds://: TLS to etcd with a client certificate', () => {
  before(async () => {
    makeCertificates();
    port = await freePort();
    const peer = await freePort();
    const s = (f: string) => join(certs, f);
    etcd = spawn(
      'etcd',
      [
        '--name=tls1',
        `--data-dir=${join(dir, 'data')}`,
        `--listen-client-urls=https://127.0.0.1:${port}`,
        `--advertise-client-urls=https://127.0.0.1:${port}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=tls1=http://127.0.0.1:${peer}`,
        `--initial-cluster-token=dre-tls-${process.pid}`,
        `--cert-file=${s('server.crt')}`,
        `--key-file=${s('server.key')}`,
        `--trusted-ca-file=${s('ca.crt')}`,
        '--client-cert-auth',
      ],
      { stdio: 'ignore' },
    );
    const c = client();
    try {
      assert.ok(
        await waitFor(
          () =>
            c.get('probe').then(
              () => true,
              () => undefined,
            ),
          15_000,
          200,
        ),
        'etcd did not answer over TLS',
      );
    } finally {
      c.close();
    }
  });

  after(async () => {
    etcd?.kill('SIGKILL');
    await sleep(100);
  });

  it('joins over TLS, announces the host under its lease, and leaves on SIGTERM: the member key, the cluster file and the watchdog go', async () => {
    const d = await Daemon.start(['--cluster', `etcds://127.0.0.1:${port}`, '--cluster-tls', certs, '--lease-ttl', '2']);
    const file = join(process.env.DRE_RUNDIR!, 'cluster.json');
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as { hostId: string; leaseId: string; endpoints: string[] };
    assert.deepEqual(cfg.endpoints, [`https://127.0.0.1:${port}`]);
    const c = client();
    try {
      const member = JSON.parse((await c.get(`dre/hosts/${cfg.hostId}`).string())!) as { leaseId: string };
      assert.equal(member.leaseId, cfg.leaseId);
      // Renewed: still there after twice the TTL.
      await sleep(4_000);
      assert.ok(await c.get(`dre/hosts/${cfg.hostId}`).string(), 'the member key expired although dred renews its lease');
      assert.equal(watchdogs().length, 1);
      await d.kill('SIGTERM');
      assert.equal(await c.get(`dre/hosts/${cfg.hostId}`).string(), null);
    } finally {
      c.close();
    }
    assert.ok(!existsSync(file));
    assert.ok(await waitFor(() => watchdogs().length === 0 || undefined, 5_000), 'the watchdog outlived the daemon that left');
  });

  it('refuses to start without the client certificate etcd wants, or with etcds:// and no --cluster-tls', async () => {
    await assert.rejects(Daemon.start(['--cluster', `etcds://127.0.0.1:${port}`]), /--cluster etcds:\/\/\.\.\. and --cluster-tls DIR go together/);
    const wrong = join(dir, 'wrong');
    mkdirSync(wrong, { recursive: true });
    // A client certificate of another CA: etcd refuses the handshake.
    execFileSync('sh', ['-c', `cp ${certs}/ca.crt ${wrong}/ca.crt`]);
    selfSigned(wrong, 'stranger', 'client');
    await assert.rejects(Daemon.start(['--cluster', `etcds://127.0.0.1:${port}`, '--cluster-tls', wrong]), /cannot join the cluster/);
    assert.ok(!existsSync(join(process.env.DRE_RUNDIR!, 'cluster.json')));
  });
});

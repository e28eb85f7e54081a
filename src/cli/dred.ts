#!/usr/bin/env node
/** `dred`: the D-RE daemon, one per DRE_ROOT, serving the idiomatic API as REST (src/daemon/). */
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DreError, isDreError } from '../core/errors.js';
import { holdForLife } from '../core/lock.js';
import { requireRoot } from '../core/privilege.js';
import { runRoot, stateRoot } from '../core/paths.js';
import { appDriver } from '../app/driver.js';
import { sysDriver } from '../sys/driver.js';
import { Api, OPENAPI_PATH } from '../daemon/api.js';
import { daemonSocketPath } from '../daemon/client.js';
import { EventHub } from '../daemon/events.js';
import { Operations } from '../daemon/operations.js';
import { DriverWorkers, offloadedSysDriver } from '../daemon/offload.js';
import { NotifyRelay } from '../daemon/notify.js';
import { Supervisor } from '../daemon/supervisor.js';
import { checkHandlers, unixServer } from '../daemon/server.js';
import { ensureServerCertificate, serverCertPath, tlsServer, trustDir } from '../daemon/tls.js';
import { ClusterMember } from '../daemon/cluster.js';
import { etcdTlsFiles, parseClusterUrl, removeClusterConfig } from '../cluster/config.js';

const HELP = `usage: dred [--listen ADDR:PORT --tls DIR] [--cluster URL [--cluster-tls DIR] [--lease-ttl SECONDS]] [--version]

The D-RE daemon: serves the D-RE API for both container kinds as REST over HTTP/1.1 on the unix
socket $DRE_RUNDIR/dred.sock (root only), described in ${OPENAPI_PATH}.
One daemon per DRE_ROOT; it keeps no state of its own, so the library and the CLIs work with or
without it, and a daemon killed at any moment picks up where things stand when started again.

Run it in the foreground:            dred
On a host, under systemd:            install dist/systemd/dred.service (or systemd/dred.service of the
                                     package) in /etc/systemd/system, then systemctl enable --now dred

  --listen ADDR:PORT   also serve HTTPS on ADDR:PORT, to clients whose certificate is trusted
  --tls DIR            the listener's TLS directory: server.crt/server.key (made when absent) and
                       trust/*.crt, the trusted client certificates (read at each connection)
  --cluster URL        join the cluster of D-RE hosts on etcd, etcd://HOST:PORT[,HOST:PORT...]
                       (etcds:// for TLS): membership, leases and the ownership of shared system
                       containers live there; shared containers with --failover in their policy
                       start on another host when theirs is lost
  --cluster-tls DIR    for etcds://: DIR/ca.crt, DIR/client.crt, DIR/client.key
  --lease-ttl SECONDS  this host's lease in the cluster (default 5): a lost host's containers are
                       taken over after it; the host kills its own shared guests before it expires
  --version            print the version

Environment: DRE_ROOT (default /var/lib/dre), DRE_RUNDIR (default /run/dre).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function listenAddress(text: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new DreError('DRE_ERR_INVALID_ARGUMENT', `--listen ${JSON.stringify(text)}: give ADDR:PORT, e.g. 127.0.0.1:8443`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port };
}

/** --cluster URL [--cluster-tls DIR] [--lease-ttl SECONDS], checked. */
function clusterOptions(url: string, tlsDir: string | undefined, ttl: string | undefined) {
  const { endpoints, secure } = parseClusterUrl(url);
  if (secure !== (tlsDir !== undefined)) throw new DreError('DRE_ERR_INVALID_ARGUMENT', '--cluster etcds://... and --cluster-tls DIR go together');
  const seconds = ttl === undefined ? 5 : Number(ttl);
  if (!Number.isInteger(seconds) || seconds < 2 || seconds > 600)
    throw new DreError('DRE_ERR_INVALID_ARGUMENT', `--lease-ttl ${ttl}: give whole seconds from 2 to 600`);
  return { endpoints, tls: tlsDir === undefined ? undefined : etcdTlsFiles(tlsDir), ttlMs: seconds * 1000 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      tls: { type: 'string' },
      cluster: { type: 'string' },
      'cluster-tls': { type: 'string' },
      'lease-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return void process.stdout.write(`${HELP}\n`);
  if (values.version) return void process.stdout.write(`${version()}\n`);
  if (values.listen && !values.tls)
    throw new DreError('DRE_ERR_INVALID_ARGUMENT', '--listen needs --tls DIR: the TCP listener serves only trusted client certificates');
  const cluster = values.cluster === undefined ? undefined : clusterOptions(values.cluster, values['cluster-tls'], values['lease-ttl']);
  requireRoot('dred');
  mkdirSync(runRoot(), { recursive: true, mode: 0o700 });
  if (!holdForLife(join(runRoot(), 'dred.lock')))
    throw new DreError('DRE_ERR_CONTAINER_BUSY', `another dred already serves ${stateRoot()} (lock ${join(runRoot(), 'dred.lock')})`);
  if (!cluster) removeClusterConfig(); // left by a killed daemon that was in a cluster: this one is not

  const api = new Api();
  checkHandlers(api);
  // The calls that may wait on an NFS server run in worker threads: the event loop keeps serving meanwhile.
  const workers = new DriverWorkers();
  const sys = offloadedSysDriver(workers);
  const events = new EventHub([appDriver, sysDriver]);
  const operations = new Operations((op) => events.publish({ time: op.updated_at, type: 'operation', operation: op }));
  const server = { api_version: '1.0', server: 'dred', version: version(), pid: process.pid, root: stateRoot(), rundir: runRoot() };
  const opts = { api, ctx: { operations, server, events, sys }, events };
  await events.start();
  const supervisor = new Supervisor([appDriver, sys], events);
  await supervisor.start();
  // Every application container's NOTIFY_SOCKET, through one relay process.
  const notify = new NotifyRelay((n, fields, pid) => supervisor.onNotify(n, fields, pid));
  notify.start();
  for (const n of await appDriver.list()) notify.watch(n);
  events.subscribe((e) => {
    if (e.type === 'operation' || e.kind !== 'app') return;
    if (e.type === 'destroyed' || e.type === 'renamed') notify.unwatch(e.name);
    if (e.type === 'renamed' && typeof e.to === 'string') notify.watch(e.to);
    else if (e.type === 'created' || e.type === 'started') notify.watch(e.name);
  });

  // The cluster and the TCP listener first: a client that finds the unix socket answering finds both up.
  let member: ClusterMember | undefined;
  const listen = values.listen ? listenAddress(values.listen) : undefined;
  if (values.tls) await ensureServerCertificate(values.tls);
  if (cluster) {
    const address = listen && listen.host !== '0.0.0.0' && listen.host !== '::' ? `${listen.host}:${listen.port}` : null;
    const cert = values.tls ? readFileSync(serverCertPath(values.tls), 'utf8') : null;
    member = new ClusterMember({ ...cluster, address, cert, tlsDir: values.tls ?? null }, sys);
    await member.join();
  }
  let tcp: ReturnType<typeof tlsServer> | undefined;
  if (listen && values.tls) {
    const { host, port } = listen;
    tcp = tlsServer(values.tls, opts, () => member?.trustedFingerprints() ?? new Set());
    await new Promise<void>((resolve, reject) => tcp!.once('error', reject).listen(port, host, () => resolve()));
    process.stderr.write(`dred: serving HTTPS on ${host}:${port} (certificate ${serverCertPath(values.tls)}, trusted clients in ${trustDir(values.tls)})\n`);
  }

  const sock = daemonSocketPath();
  rmSync(sock, { force: true }); // a socket left by a killed daemon (the lock says none serves it now)
  const unix = unixServer(opts);
  await new Promise<void>((resolve, reject) => unix.once('error', reject).listen(sock, () => resolve()));
  chmodSync(sock, 0o600);
  process.stderr.write(`dred: serving ${stateRoot()} on ${sock}\n`);

  const shutdown = async () => {
    await member?.leave();
    supervisor.stop();
    notify.stop();
    events.stop();
    workers.stop();
    unix.close();
    tcp?.close();
    rmSync(sock, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

main().catch((e) => {
  if (isDreError(e)) {
    process.stderr.write(`dred: ${e.toString()}\n`);
    process.exit(-e.code);
  }
  process.stderr.write(`dred: ${(e as Error)?.message ?? e}\n`);
  process.exit(1);
});

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
import { NotifyRelay } from '../daemon/notify.js';
import { Supervisor } from '../daemon/supervisor.js';
import { checkHandlers, unixServer } from '../daemon/server.js';
import { ensureServerCertificate, serverCertPath, tlsServer, trustDir } from '../daemon/tls.js';

const HELP = `usage: dred [--listen ADDR:PORT --tls DIR] [--version]

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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { listen: { type: 'string' }, tls: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
    strict: true,
  });
  if (values.help) return void process.stdout.write(`${HELP}\n`);
  if (values.version) return void process.stdout.write(`${version()}\n`);
  if (values.listen && !values.tls)
    throw new DreError('DRE_ERR_INVALID_ARGUMENT', '--listen needs --tls DIR: the TCP listener serves only trusted client certificates');
  requireRoot('dred');
  mkdirSync(runRoot(), { recursive: true, mode: 0o700 });
  if (!holdForLife(join(runRoot(), 'dred.lock')))
    throw new DreError('DRE_ERR_CONTAINER_BUSY', `another dred already serves ${stateRoot()} (lock ${join(runRoot(), 'dred.lock')})`);

  const api = new Api();
  checkHandlers(api);
  const events = new EventHub([appDriver, sysDriver]);
  const operations = new Operations((op) => events.publish({ time: op.updated_at, type: 'operation', operation: op }));
  const server = { api_version: '1.0', server: 'dred', version: version(), pid: process.pid, root: stateRoot(), rundir: runRoot() };
  const opts = { api, ctx: { operations, server, events }, events };
  await events.start();
  const supervisor = new Supervisor([appDriver, sysDriver], events);
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

  // The TCP listener first: a client that finds the unix socket answering finds every listener up.
  let tcp: ReturnType<typeof tlsServer> | undefined;
  if (values.listen && values.tls) {
    const { host, port } = listenAddress(values.listen);
    await ensureServerCertificate(values.tls);
    tcp = tlsServer(values.tls, opts);
    await new Promise<void>((resolve, reject) => tcp!.once('error', reject).listen(port, host, () => resolve()));
    process.stderr.write(`dred: serving HTTPS on ${host}:${port} (certificate ${serverCertPath(values.tls)}, trusted clients in ${trustDir(values.tls)})\n`);
  }

  const sock = daemonSocketPath();
  rmSync(sock, { force: true }); // a socket left by a killed daemon (the lock says none serves it now)
  const unix = unixServer(opts);
  await new Promise<void>((resolve, reject) => unix.once('error', reject).listen(sock, () => resolve()));
  chmodSync(sock, 0o600);
  process.stderr.write(`dred: serving ${stateRoot()} on ${sock}\n`);

  const shutdown = () => {
    supervisor.stop();
    notify.stop();
    events.stop();
    unix.close();
    tcp?.close();
    rmSync(sock, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((e) => {
  if (isDreError(e)) {
    process.stderr.write(`dred: ${e.toString()}\n`);
    process.exit(-e.code);
  }
  process.stderr.write(`dred: ${(e as Error)?.message ?? e}\n`);
  process.exit(1);
});

/** dre-sys subcommands for NFS sharing and live migration. */
import type { SysDriver } from '../sys/driver.js';
import type { MigrationProgress } from '../sys/migration.js';
import { dreError } from '../core/errors.js';
import { one, type Lazy } from './commands.js';
import { intArg, parse, printJson, type Command } from './common.js';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** One progress line on stderr, at most every 250 ms while the migration runs, and the final one. */
function progressPrinter(name: string): (p: MigrationProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.status === 'completed') {
      process.stderr.write(`migrate ${name}: completed in ${(p.elapsedMs / 1000).toFixed(2)} s, downtime ${p.downtimeMs ?? '?'} ms, ${mib(p.transferredBytes)} sent\n`);
    } else if (now - last >= 250) {
      last = now;
      process.stderr.write(`migrate ${name}: ${p.status}, ${mib(p.transferredBytes)} sent, ${mib(p.remainingBytes)} remaining of ${mib(p.totalBytes)} (${(p.elapsedMs / 1000).toFixed(1)} s)\n`);
    }
  };
}


/** The NFS and migration subcommands on the (lazily loaded) driver. */
export const migrationCommands = (sys: Lazy<SysDriver>): Command[] => [
  {
    name: 'nfs-config',
    usage: '[nfs://SERVER/EXPORT]',
    summary: 'set (after checking it mounts) or print the NFS server this host shares containers on; DRE_SYS_NFS overrides it',
    run: async (args) => {
      const { positionals } = parse(args, {}, 0);
      if (positionals[0] !== undefined) sys.setNfsConfig(positionals[0]);
      else process.stdout.write(`${sys.nfsConfig() ?? '(none)'}\n`);
    },
  },
  {
    name: 'nfs-server',
    usage: 'start DIR | stop',
    summary: "serve DIR over NFS from this host for sharing (kernel nfsd where present, else nfs-ganesha + rpcbind)",
    run: async (args) => {
      const { positionals } = parse(args, {}, 1);
      if (positionals[0] === 'start' && positionals[1]) process.stdout.write(`${await sys.startNfsServer(positionals[1])}\n`);
      else if (positionals[0] === 'stop') await sys.stopNfsServer();
      else throw dreError('DRE_ERR_INVALID_ARGUMENT', 'nfs-server: use "start DIR" or "stop"');
    },
  },
  one('NAME', "move a stopped container's disk and record to the NFS share, so other hosts can run it", 'share', sys.share),
  one('NAME', "bring a stopped shared container's disk back to this host and off the share", 'unshare', sys.unshare),
  {
    name: 'lease',
    usage: 'NAME [--break] [--json]',
    summary: "print which host runs a shared container; --break frees it from a host that died running it (only then: two hosts on one disk destroy it)",
    run: async (args) => {
      const { values, positionals } = parse(args, { break: { type: 'boolean' } }, 1);
      const holder = await (values.break ? sys.breakLease : sys.leaseHolder)(positionals[0]);
      if (values.json) printJson(holder ?? null);
      else if (values.break) process.stdout.write(holder ? `broke the lease of ${holder.host} (since ${holder.since ?? '?'})\n` : 'no lease to break\n');
      else process.stdout.write(holder ? `${holder.host} since ${holder.since ?? '?'}\n` : 'free\n');
    },
  },
  {
    name: 'immigrate',
    usage: 'NAME PORT [--tls DIR]',
    summary: 'start the container here waiting for its live migration on PORT (known here or on the share)',
    run: async (args) => {
      const { values, positionals } = parse(args, { tls: { type: 'string' } }, 2);
      await sys.immigrate(positionals[0], intArg(positionals[1], 'PORT')!, { tlsDir: values.tls ?? null });
    },
  },
  {
    name: 'migrate',
    usage: 'NAME TARGET PORT [--copy-disk] [--tls DIR] [--timeout SECONDS] [--bandwidth MIB_PER_S] [--json]',
    summary: 'live-migrate a running container to TARGET, printing progress (RAM sent, remaining, downtime)',
    run: async (args) => {
      const { values, positionals } = parse(
        args,
        { 'copy-disk': { type: 'boolean' }, tls: { type: 'string' }, timeout: { type: 'string' }, bandwidth: { type: 'string' } },
        3,
      );
      const [name, target, port] = positionals;
      const timeout = intArg(values.timeout, '--timeout');
      const bandwidth = intArg(values.bandwidth, '--bandwidth');
      const r = await sys.migrate(name, target, intArg(port, 'PORT')!, {
        copyDisk: values['copy-disk'] ?? false,
        tlsDir: values.tls ?? null,
        timeoutMs: timeout === undefined ? undefined : timeout * 1000,
        maxBandwidth: bandwidth === undefined ? undefined : bandwidth * 2 ** 20,
        onProgress: progressPrinter(name),
      });
      if (values.json) printJson(r);
    },
  },
];

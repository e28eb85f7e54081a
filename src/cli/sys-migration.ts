/** dre-sys subcommands for NFS sharing and live migration. */
import type { SysDriver } from '../sys/driver.js';
import type { MigrationProgress } from '../sys/migration.js';
import { dreError } from '../core/errors.js';
import { one, type Lazy } from './commands.js';
import { intArg } from './common.js';
import { oneOf, type CommandSpec } from './framework.js';
import { progress } from './output.js';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Migration progress: a bar of RAM sent on a terminal, a line at most every 250 ms when piped, and the final line. */
function progressPrinter(name: string): (p: MigrationProgress) => void {
  const bar = progress(`migrate ${name}`);
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.status === 'completed') {
      bar.done(`completed in ${(p.elapsedMs / 1000).toFixed(2)} s, downtime ${p.downtimeMs ?? '?'} ms, ${mib(p.transferredBytes)} sent`);
    } else if (now - last >= 250) {
      last = now;
      const fraction = p.totalBytes > 0 ? 1 - p.remainingBytes / p.totalBytes : undefined;
      bar.step(
        `${p.status}, ${mib(p.transferredBytes)} sent, ${mib(p.remainingBytes)} remaining of ${mib(p.totalBytes)} (${(p.elapsedMs / 1000).toFixed(1)} s)`,
        fraction,
      );
    }
  };
}

/** The NFS and migration subcommands on the (lazily loaded) driver. */
export const migrationCommands = (sys: Lazy<SysDriver>): CommandSpec[] => [
  {
    name: 'nfs-config',
    args: '[nfs://SERVER/EXPORT]',
    summary: 'set (after checking it mounts) or print the NFS server this host shares containers on; DRE_SYS_NFS overrides it',
    run: async (positionals) => {
      if (positionals[0] !== undefined) await sys.setNfsConfig(positionals[0]);
      else process.stdout.write(`${sys.nfsConfig() ?? '(none)'}\n`);
    },
  },
  {
    name: 'nfs-server',
    args: 'ACTION [DIR]',
    summary: 'nfs-server start DIR | nfs-server stop: serve DIR over NFS from this host for sharing (kernel nfsd where present, else nfs-ganesha + rpcbind)',
    run: async ([action, dir]) => {
      oneOf(action, ['start', 'stop'], 'nfs-server ACTION');
      if (action === 'start' && dir) process.stdout.write(`${await sys.startNfsServer(dir)}\n`);
      else if (action === 'stop' && !dir) await sys.stopNfsServer();
      else throw dreError('DRE_ERR_INVALID_ARGUMENT', 'nfs-server: use "start DIR" or "stop"');
    },
  },
  one('NAME', "move a stopped container's disk and record to the NFS share, so other hosts can run it", 'share', sys.share),
  one('NAME', "bring a stopped shared container's disk back to this host and off the share", 'unshare', sys.unshare),
  {
    name: 'lease',
    args: 'NAME',
    summary: 'print which host runs a shared container; --break frees it from a host that died running it (only then: two hosts on one disk destroy it)',
    options: { '--break': 'free the lease of a host that died running it' },
    output: true,
    run: async ([n], o, out) => {
      const holder = (await (o.break ? sys.breakLease : sys.leaseHolder)(n)) ?? null;
      const text = o.break
        ? holder
          ? `broke the lease of ${holder.host} (since ${holder.since ?? '?'})\n`
          : 'no lease to break\n'
        : holder
          ? `${holder.host} since ${holder.since ?? '?'}\n`
          : 'free\n';
      await out.print(holder, { key: (h) => h?.host, text: () => text });
    },
  },
  {
    name: 'immigrate',
    args: 'NAME PORT',
    summary: 'start the container here waiting for its live migration on PORT (known here or on the share)',
    options: {
      '--tls DIR': 'TLS directory (server.crt, server.key, trust/)',
      '--address ADDR': "a copied disk's migration: the address the guest has on its source host (dre-sys info there), taken over here",
      '--mac MAC': 'with --address: the MAC of its NIC there, taken over here',
    },
    run: async ([n, port], o) => {
      await sys.immigrate(n, intArg(port, 'PORT')!, {
        tlsDir: (o.tls as string | undefined) ?? null,
        address: (o.address as string | undefined) ?? null,
        mac: (o.mac as string | undefined) ?? null,
      });
    },
  },
  {
    name: 'migrate',
    args: 'NAME TARGET [PORT]',
    summary:
      'live-migrate a running container to TARGET, which waits for it on PORT (dre-sys immigrate), printing progress (RAM sent, remaining, downtime); in a cluster, without PORT: to the member TARGET (its name, id or address), whose daemon is asked to wait for it',
    options: {
      '--copy-disk': 'copy the disk too (not shared)',
      '--tls DIR': 'TLS directory (client.crt, client.key, trust/)',
      '--timeout SECONDS': 'give up after SECONDS',
      '--bandwidth MIB_PER_S': 'at most this many MiB/s',
    },
    output: true,
    run: async ([name, target, port], values, out) => {
      const timeout = intArg(values.timeout, '--timeout');
      const bandwidth = intArg(values.bandwidth, '--bandwidth');
      const common = {
        timeoutMs: timeout === undefined ? undefined : timeout * 1000,
        maxBandwidth: bandwidth === undefined ? undefined : bandwidth * 2 ** 20,
        onProgress: progressPrinter(name),
      };
      const r =
        port === undefined
          ? await sys.migrateTo(name, target, common)
          : await sys.migrate(name, target, intArg(port, 'PORT')!, {
              ...common,
              copyDisk: values['copy-disk'] === true,
              tlsDir: (values.tls as string | undefined) ?? null,
            });
      if (out.format !== 'table' || out.quiet) await out.print(r, { key: () => name });
    },
  },
];

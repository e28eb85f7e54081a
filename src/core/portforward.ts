/**
 * The host side of a container's SSH port (an application container's, a system container's), done by the kernel: one nftables table per D-RE root,
 * `inet dre_<root id>`, whose map `ssh` turns a connection to host port P (on any of the host's own
 * addresses, 127.0.0.1 included) into one to the container's address, port 22. No process per
 * container: a forward costs one map element. Two roots never touch each other's table; a port held
 * in any root's table, or by a program listening on the host, fails a start before anything runs.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dreError } from './errors.js';
import { withHostLock } from './lock.js';
import { leaseKey, leaseOwner, ownerLabel } from './names.js';
import { cgroupRoot, stateRoot, type Kind } from './paths.js';
import { NftError, nft, nftList } from './nftables.js';
import type { AsyncRevert } from './revert.js';

/** The port SSH listens on inside the container. */
export const SSH_PORT = 22;
/** Host-wide: the check that a port is free and the element that claims it are one step for every root. */
const PORTS_LOCK = '/run/lock/dre-ports.lock';
const NFT = '/usr/sbin/nft';
const TABLE_PREFIX = 'dre_';

/** This root's nftables table (family inet), named after the root id its cgroups use. */
export const portTable = (root = stateRoot()) => `${TABLE_PREFIX}${cgroupRoot(root).slice('dre/'.length)}`;

/**
 * The table: DNAT in prerouting (other hosts) and output (the host itself, loopback included) for
 * local destinations only; loopback sources are masqueraded to the gateway on the bridge, or the
 * container would answer 127.0.0.1 to itself. That needs `route_localnet` on the bridge, which also
 * lets packets for 127/8 in from the bridge: the guard drops those (kube-proxy's fix of CVE-2020-8558),
 * so a container can never reach a host service bound to loopback.
 */
function tableScript(table: string, bridge: string): string {
  const dnat = 'meta nfproto ipv4 meta l4proto tcp fib daddr type local dnat ip to tcp dport map @ssh';
  return `table inet ${table} {
  map ssh { type inet_service : ipv4_addr . inet_service; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; ${dnat}; }
  chain output { type nat hook output priority -100; policy accept; ${dnat}; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; oifname "${bridge}" ip saddr 127.0.0.0/8 masquerade; }
  chain guard { type filter hook prerouting priority -300; policy accept; iifname "${bridge}" ip daddr 127.0.0.0/8 drop; }
}`;
}

/** One port's forward as the kernel holds it. */
interface Forward {
  table: string;
  port: number;
  /** The container's lease key (names.ts leaseKey; the element's comment). */
  name: string;
}

/** The elements of a listed map, `[key or {elem: {val, comment}}, data]`, as forwards of `table`. */
function forwardsOf(table: string, objects: Record<string, unknown>[]): Forward[] {
  const out: Forward[] = [];
  for (const o of objects) {
    const elems = (o.map as { elem?: unknown[] } | undefined)?.elem ?? [];
    for (const e of elems) {
      const key = (e as unknown[])[0] as number | { elem: { val: number; comment?: string } };
      out.push(typeof key === 'number' ? { table, port: key, name: '' } : { table, port: key.elem.val, name: key.elem.comment ?? '' });
    }
  }
  return out;
}

/** Runs an nft command whose object may be missing; a missing one is `missing`. */
function unlessMissing<T>(fn: () => T, missing: T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NftError && e.enoent) return missing;
    throw e;
  }
}

/** The D-RE tables on the host (every root's). */
function dreTables(): string[] {
  return nftList('list tables')
    .map((o) => o.table as { family: string; name: string } | undefined)
    .filter((t) => t?.family === 'inet' && t.name.startsWith(TABLE_PREFIX))
    .map((t) => t!.name);
}

/** The forwards table `t` holds (`get element` would print text whatever the output flags: nft 1.0.6). */
const forwardsIn = (t: string): Forward[] => unlessMissing(() => forwardsOf(t, nftList(`list map inet ${t} ssh`)), []);

/** Whether table `t` has an element for `port`: a `get` (0.4 ms), where a listing of the map costs ≈ 2 ms with 100 forwards. */
const hasPort = (t: string, port: number): boolean => unlessMissing(() => (nft(`get element inet ${t} ssh { ${port} }`), true), false);

/** Who holds host port `port` in `tables`: a `get` in each, and a listing (for the holder's name) only of a table that has it. */
const holdersOf = (port: number, tables: string[]): Forward[] =>
  tables.filter((t) => hasPort(t, port)).flatMap((t) => forwardsIn(t).filter((f) => f.port === port));

/** The forwards this root's table holds. */
export const rootForwards = (): Forward[] => forwardsIn(portTable());

/**
 * Whether a program on the host listens on TCP `port` (any address): a bind of it on every address
 * fails then. (Reading /proc/net/tcp and tcp6 costs ≈ 5 ms each here: the kernel walks its whole table.)
 */
function hostListens(port: number): Promise<boolean> {
  const attempt = (host: string) =>
    new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = createServer();
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
      s.listen({ port, host, ipv6Only: false, exclusive: true }, () => s.close(() => resolve(undefined)));
    });
  return attempt('::').then(async (e) => {
    if (e?.code === 'EAFNOSUPPORT' || e?.code === 'EADDRNOTAVAIL') e = await attempt('0.0.0.0'); // no IPv6 on this host
    return e?.code === 'EADDRINUSE';
  });
}

/** The element of a forward, as nft's command language writes it (names are [A-Za-z0-9_.-]: no quoting needed inside "…"). */
const element = (name: string, address: string, port: number) => `{ ${port} comment "${name}" : ${address} . ${SSH_PORT} }`;

/**
 * LXC's post-stop hook for a container with a port: the monitor ends the forward when the container
 * stops on its own (a poweroff inside, its init killed), that is while the file `armed` exists. D-RE's
 * own stop removes that file before `lxc-stop` and ends the forward itself once LXC is done, so the
 * hook costs the shell's `test` (≈ 1 ms), not an `nft` run that the stop would wait for (≈ 8 ms with
 * a `get` that finds nothing; a delete makes nft wait, as it closes its netlink socket, for the kernel
 * to free the element after an RCU grace period). Hook version 1 runs the line with `sh -c exec`:
 * hence a shell of its own.
 */
export function portHookLines(address: string | null | undefined, port: number | null, armed: string): string[] {
  if (!address || port === null) return [];
  const unforward = `${NFT} delete element inet ${portTable()} ssh { ${port} } >/dev/null 2>&1`;
  return ['lxc.hook.version = 1', `lxc.hook.post-stop = /bin/sh -c 'test -e "${armed}" && ${unforward}; exit 0'`];
}

/** Creates this root's table unless `tables` (the host's D-RE tables, read under the ports lock) has it: one batch, so never half made. */
function ensureTable(bridge: string, tables: string[]): void {
  const t = portTable();
  if (!tables.includes(t)) nft(tableScript(t, bridge));
}

/** Removes this root's table (its last networked container is gone). */
export function removePortTable(): void {
  withHostLock(PORTS_LOCK, 'remove port forwards', () => unlessMissing(() => nft(`delete table inet ${portTable()}`), ''));
}

/** Ends the container's forward, if its root's table has one (also one left by a killed start or monitor). */
export function closePort(name: string): void {
  const t = portTable();
  const mine = rootForwards().filter((f) => f.name === name);
  if (mine.length > 0) unlessMissing(() => nft(mine.map((f) => `delete element inet ${t} ssh { ${f.port} }`).join(' ; ')), '');
}

/**
 * Ends the forward of host `port` in this root's table, if it has one, with no listing of the map
 * (≈ 2 ms with 100 forwards): a `get` (0.4 ms), then a delete only of what is there (one that finds
 * nothing waits ≈ 8 ms for the kernel to abort its batch). Only
 * for the container that holds the port's lease, as an element of that port is then its own, or one
 * a killed start or monitor left of it. Resolves to whether it removed one.
 */
export function closePortNumber(port: number): boolean {
  const t = portTable();
  return hasPort(t, port) && unlessMissing(() => (nft(`delete element inet ${t} ssh { ${port} }`), true), false);
}

/**
 * Forwards host `port` to the container at `address` before it starts (`name` is its lease key). The
 * port is taken if a program listens on it or a running container of any root holds it →
 * DRE_ERR_NO_SOCKET_AVAILABLE, and nothing changes. A forward of this root whose container does not
 * run (`runs` says, given its key: a killed start, monitor or QEMU) is removed.
 */
async function openPort(name: string, address: string, port: number, bridge: string, runs: (key: string) => boolean): Promise<void> {
  const what = `start ${name}: host port ${port} cannot be forwarded to SSH`;
  if (await hostListens(port)) throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what} (another program listens on it)`);
  withHostLock(PORTS_LOCK, `start ${name}`, () => {
    const tables = dreTables();
    for (const h of holdersOf(port, tables)) {
      if (h.table !== portTable()) {
        throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what} (${ownerLabel(h.name)} of another D-RE root holds it, nftables table inet ${h.table})`);
      }
      if (h.name !== name && runs(h.name)) {
        throw dreError('DRE_ERR_NO_SOCKET_AVAILABLE', `${what} (${ownerLabel(h.name)} holds it)`);
      }
      if (h.name !== name) nft(`delete element inet ${h.table} ssh { ${port} }`);
    }
    ensureTable(bridge, tables);
    // Loopback sources routed out of the bridge (to be masqueraded) would otherwise be martians.
    writeFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
    nft(`add element inet ${portTable()} ssh ${element(name, address, port)}`);
  });
}

/**
 * A starting container's SSH port forwarded (see openPort: a taken port fails the start here), with its
 * removal added to the start's undo. `running(name)` says whether a container of `kind` still runs; a
 * forward of the other kind counts as held (its own start and stop tend it, and its lease keeps the
 * port from being claimed by anyone else).
 */
export async function forwardPort(
  revert: AsyncRevert,
  kind: Kind,
  name: string,
  to: { address: string; port: number; bridge: string },
  running: (name: string) => boolean,
): Promise<void> {
  const key = leaseKey(kind, name);
  const held = (k: string) => {
    const o = leaseOwner(k);
    return o.kind !== kind || running(o.name);
  };
  await openPort(key, to.address, to.port, to.bridge, held);
  revert.add(() => closePort(key));
}

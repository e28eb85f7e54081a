/**
 * The network both kinds of container share: the bridge D-RE owns, static addresses handed out
 * without DHCP from one allocator (application containers on veth pairs, system containers on taps),
 * SSH ports claimed once per root. The wiring of each kind is its driver's (app/network.ts, sys/tap.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dreError, isDreError } from './errors.js';
import { ContainerLock, isLocked } from './lock.js';
import { cgroupRoot, containerDir, containersDir, stateRoot, type Kind } from './paths.js';
import { sleep } from './proc.js';
import { lastLines, run, engineCause } from './run.js';
import { appRecordCheck, DamagedRecord, leasesCheck, readRecordFile, readRecordOrSkip, sysRecordCheck, warnDamaged } from './records.js';
import { listEntries, readJson, writeJsonAtomic } from './store.js';
import { leaseKey, leaseOwner, ownerLabel } from './names.js';
import { closePort, removePortTable } from './portforward.js';

/** `$DRE_ROOT/app/network.json`: the bridge and subnet of this root's containers. */
export interface NetworkConfig {
  bridge: string;
  /** IPv4 CIDR; the first host address is the bridge's (the gateway), the rest go to containers. */
  subnet: string;
}

/**
 * Defaults away from LXC's lxcbr0 (10.0.3.0/24), Docker (172.17/16) and Podman (10.88/16); a /22 holds
 * 1021 containers (a root of 500 running ones fits twice). Roots made with the /24 of before keep their
 * addresses (10.47.0.x lies in it): their bridge is given the wider prefix at the next start.
 */
export const DEFAULT_NETWORK: NetworkConfig = { bridge: 'dre0', subnet: '10.47.0.0/22' };

/** What D-RE has handed out to one container. */
export interface Lease {
  /** e.g. "10.47.0.2"; null when the container has networking off. */
  address: string | null;
  port: number | null;
}

export const networkConfigPath = () => join(stateRoot(), 'app', 'network.json');
const leasesPath = () => join(stateRoot(), 'app', 'leases.json');
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The subnet as numbers: its first address (host bits cleared), prefix length and size; anything else → DRE_ERR_INVALID_ARGUMENT. */
export function parseSubnet(cidr: string): { base: number; prefix: number; size: number } {
  const [ip, len] = cidr.split('/');
  const start = ipToInt(ip ?? '');
  const prefix = Number(len);
  if (start === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 29) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `network: subnet ${JSON.stringify(cidr)} in ${networkConfigPath()} is not an IPv4 CIDR with a prefix of 8..29`);
  }
  const size = 2 ** (32 - prefix);
  return { base: start - (start % size), prefix, size };
}

/** This root's network, from network.json or the defaults; checked, so a bad file changes nothing. */
export function networkConfig(): NetworkConfig & { gateway: string; broadcast: string; prefix: number } {
  const cfg = { ...DEFAULT_NETWORK, ...(readJson<Partial<NetworkConfig>>(networkConfigPath()) ?? {}) };
  if (typeof cfg.bridge !== 'string' || !IFNAME_RE.test(cfg.bridge)) {
    throw dreError(
      'DRE_ERR_INVALID_ARGUMENT',
      `network: bridge ${JSON.stringify(cfg.bridge)} in ${networkConfigPath()} is not an interface name of 1-15 characters`,
    );
  }
  const { base, prefix, size } = parseSubnet(String(cfg.subnet));
  return { bridge: cfg.bridge, subnet: `${intToIp(base)}/${prefix}`, gateway: intToIp(base + 1), broadcast: intToIp(base + size - 1), prefix };
}

/** How long a create or destroy waits for the network lock: 50 parallel creates on 2 cores queue for seconds. */
const NETWORK_LOCK_WAIT_MS = 60_000;

/** This process's turn at the network lock: callers of one process queue here, so only one polls the flock. */
let inProcessTurn: Promise<unknown> = Promise.resolve();

/**
 * Runs `fn` holding this root's network lock (waits, bounded: allocations are short). Callers in this
 * process take turns first: 20 parallel starts in one process each polling the flock (whose probe
 * blocks the thread for a few ms) starved the event loop, and the holder's `ip` never got its answer.
 */
function withNetworkLock<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const turn = inProcessTurn.then(() => withFileLock(what, fn));
  inProcessTurn = turn.catch(() => {});
  return turn;
}

/** Runs `fn` holding the root's network lock file, waiting out other processes. */
async function withFileLock<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const end = Date.now() + NETWORK_LOCK_WAIT_MS;
  for (;;) {
    let lock: ContainerLock;
    try {
      lock = ContainerLock.acquire('app', '.network', what);
    } catch (e) {
      if (!isDreError(e) || e.errName !== 'DRE_ERR_CONTAINER_BUSY') throw e;
      if (Date.now() > end)
        throw dreError(
          'DRE_ERR_CONTAINER_BUSY',
          `${what} the network lock of this root was held by others for over ${NETWORK_LOCK_WAIT_MS / 1000} s; try again`,
        );
      // Jittered: waiters that woke together do not keep colliding.
      await sleep(5 + Math.random() * 20);
      continue;
    }
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }
}

/**
 * Whether a lease still counts: its container exists, or its create or destroy still runs (holds the
 * container's lock). Existence is asked again after the lock: a create renames its container into
 * place before it lets go of the lock, so one that finishes between the first two questions is seen
 * by the third (asked only before the lock, a create that finished in between lost its lease: two
 * containers got one address under load).
 * The lock is probed only for leases without a container, so finished containers are never probed.
 */
function leaseIsLive(key: string): boolean {
  const { kind, name } = leaseOwner(key);
  return existsSync(containerDir(kind, name)) || isLocked(kind, name) || existsSync(containerDir(kind, name));
}

/**
 * The leases on file, checked; a damaged leases.json is rebuilt from the containers' own records (a
 * create running at that moment has no record yet: its address may be handed out again, so the
 * rebuild is announced).
 */
function readLeases(): Record<string, Lease> {
  try {
    return readRecordFile<Record<string, Lease>>(leasesPath(), leasesCheck) ?? {};
  } catch (e) {
    if (!(e instanceof DamagedRecord)) throw e;
    warnDamaged(e, "rebuilt from the containers' records");
    const rebuilt: Record<string, Lease> = {};
    for (const kind of ['app', 'sys'] as const) {
      for (const name of listEntries(containersDir(kind))) {
        const path = join(containerDir(kind, name), 'dre.json');
        const rec = readRecordOrSkip<{ address?: string | null; port?: number | null }>(path, kind === 'app' ? appRecordCheck : sysRecordCheck, () => {});
        if (rec) rebuilt[leaseKey(kind, name)] = { address: rec.address ?? null, port: rec.port ?? null };
      }
    }
    return rebuilt;
  }
}

/** The leases that count: a lease whose container never came into being (a killed create) or is gone (a killed destroy) is dropped. */
function liveLeases(): Record<string, Lease> {
  return Object.fromEntries(Object.entries(readLeases()).filter(([name]) => leaseIsLive(name)));
}

/**
 * Claims an address (unless networking is off) and the SSH port for a container being created.
 * A port another container holds → DRE_ERR_INVALID_ARGUMENT naming it.
 */
export async function claimNetwork(kind: Kind, name: string, networked: boolean, port: number | null): Promise<Lease> {
  const key = leaseKey(kind, name);
  if (port !== null && !networked) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `create ${name}: port ${port} needs networking; it cannot be forwarded to a container with networking off`);
  }
  // No address and no port: nothing to hold, so no lease (every reader takes a missing lease for that).
  if (!networked) return { address: null, port: null };
  const net = networkConfig();
  return withNetworkLock(`create ${name}:`, () => {
    const leases = liveLeases();
    const holder = Object.entries(leases).find(([k, l]) => k !== key && port !== null && l.port === port);
    if (holder) throw dreError('DRE_ERR_INVALID_ARGUMENT', `create ${name}: port ${port} is taken by ${ownerLabel(holder[0])}`);
    let address: string | null = null;
    const { base, size } = parseSubnet(net.subnet);
    const taken = new Set(Object.values(leases).map((l) => l.address));
    for (let host = 2; host < size - 1 && address === null; host++) {
      if (!taken.has(intToIp(base + host))) address = intToIp(base + host);
    }
    if (address === null) throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `create ${name}: no address left in ${net.subnet} (${networkConfigPath()})`);
    const lease = { address, port };
    writeJsonAtomic(leasesPath(), { ...leases, [key]: lease });
    return lease;
  });
}

/**
 * Makes sure this root holds the lease a container's record names (a system container whose record
 * came from another host: an NFS share, a migration). Its address or port held by another container
 * here → DRE_ERR_NO_TAP_AVAILABLE, nothing changed.
 */
export async function holdLease(kind: Kind, name: string, lease: Lease, what: string): Promise<void> {
  const key = leaseKey(kind, name);
  await withNetworkLock(what, () => {
    const leases = liveLeases();
    const mine = leases[key];
    if (mine && mine.address === lease.address && mine.port === lease.port) return;
    const clash = Object.entries(leases).find(
      ([k, l]) => k !== key && ((lease.address && l.address === lease.address) || (lease.port !== null && l.port === lease.port)),
    );
    if (clash) {
      throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `${what} its address ${lease.address} or port ${lease.port} is held by ${ownerLabel(clash[0])} on this host`);
    }
    writeJsonAtomic(leasesPath(), { ...leases, [key]: lease });
  });
}

/** Gives back a container's address and port; removes the bridge when no container of this root has an address left. */
export async function releaseNetwork(kind: Kind, name: string): Promise<void> {
  await withNetworkLock(`release network of ${name}:`, async () => {
    const { [leaseKey(kind, name)]: gone, ...rest } = liveLeases();
    if (gone === undefined) return; // it held none (no network), or it is released already
    writeJsonAtomic(leasesPath(), rest);
    if (gone?.address && !Object.values(rest).some((l) => l.address)) await removeOwnBridge();
  });
}

/** Changes the SSH port a container's lease holds; refused when another container (of either kind) of this root has it. */
export async function setLeasePort(kind: Kind, name: string, port: number | null): Promise<void> {
  const key = leaseKey(kind, name);
  await withNetworkLock(`configure ${name}:`, () => {
    const leases = liveLeases();
    const holder = Object.entries(leases).find(([k, l]) => k !== key && port !== null && l.port === port);
    if (holder) throw dreError('DRE_ERR_INVALID_ARGUMENT', `configure ${name}: port ${port} is taken by ${ownerLabel(holder[0])}`);
    writeJsonAtomic(leasesPath(), { ...leases, [key]: { address: leases[key]?.address ?? null, port } });
  });
}

/** Moves a container's lease (address and port) to its new name. */
export async function renameLease(kind: Kind, name: string, to: string): Promise<void> {
  await withNetworkLock(`rename ${name}:`, () => {
    const { [leaseKey(kind, name)]: lease, ...rest } = liveLeases();
    if (lease) writeJsonAtomic(leasesPath(), { ...rest, [leaseKey(kind, to)]: lease });
  });
}

/** The alias D-RE puts on its bridge, so that it never takes over a bridge of another root or of the user. */
const bridgeAlias = () => `dre:${cgroupRoot()}`;

async function ip(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('ip', args, { timeoutMs: 10_000 });
}

/** An attribute of a host interface from sysfs (no process spawned), or undefined when there is no such interface. */
function readSys(iface: string, attribute: 'ifalias' | 'address'): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${iface}/${attribute}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The alias of a host interface (null: none), or undefined when there is no such interface. */
function bridgeAliasOf(bridge: string): string | null | undefined {
  const alias = readSys(bridge, 'ifalias');
  return alias === undefined ? undefined : alias || null;
}

/** The host interface that already routes `subnet` (another bridge, a LAN), from /proc/net/route. */
function interfaceRouting(subnet: string): string | undefined {
  const { base, size } = parseSubnet(subnet);
  const le = (n: number) => [0, 8, 16, 24].reduce((acc, s, i) => acc + (Math.floor(n / 2 ** (24 - s)) % 256) * 2 ** (8 * i), 0);
  for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (iface && parseInt(dest, 16) === le(base) && parseInt(mask, 16) === le(2 ** 32 - size)) return iface;
  }
  return undefined;
}

/** Creates this root's bridge with the gateway address, or checks the one that is there is ours. */
export async function ensureBridge(what: string): Promise<void> {
  const net = networkConfig();
  // Ours, and routing the subnet as configured (two file reads, no process).
  const ready = () => bridgeAliasOf(net.bridge) === bridgeAlias() && interfaceRouting(net.subnet) === net.bridge;
  if (ready()) return;
  await withNetworkLock(what, async () => {
    if (ready()) return;
    const alias = bridgeAliasOf(net.bridge);
    if (alias === bridgeAlias()) {
      // Ours with another prefix (made before the subnet was widened): the gateway gets the configured one.
      const steps = [
        ['addr', 'flush', 'dev', net.bridge],
        ['addr', 'replace', `${net.gateway}/${net.prefix}`, 'dev', net.bridge],
      ];
      for (const step of steps) {
        const r = await ip(step);
        if (r.code !== 0)
          throw dreError(
            'DRE_ERR_NO_TAP_AVAILABLE',
            `${what} could not readdress bridge ${net.bridge}: ip ${step.join(' ')}: ${lastLines(r.stderr)}`,
            engineCause('ip', r),
          );
      }
      return;
    }
    // No alias yet but our MAC: made by a create of ours that was killed half-way; finish it.
    const halfMade = alias === null && readSys(net.bridge, 'address') === macOf(net.gateway);
    if (alias !== undefined && !halfMade) {
      throw dreError(
        'DRE_ERR_NO_TAP_AVAILABLE',
        `${what} bridge ${net.bridge} exists and is not this D-RE root's; set another bridge in ${networkConfigPath()}`,
      );
    }
    const taken = interfaceRouting(net.subnet);
    if (taken && taken !== net.bridge) {
      throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `${what} subnet ${net.subnet} is already in use on ${taken}; set another subnet in ${networkConfigPath()}`);
    }
    const steps = [
      // The MAC is set at birth: it marks the bridge as ours until the alias is on, and the bridge's
      // own MAC would otherwise change as ports come and go.
      ...(halfMade ? [] : [['link', 'add', 'name', net.bridge, 'address', macOf(net.gateway), 'type', 'bridge']]),
      ['addr', 'replace', `${net.gateway}/${net.prefix}`, 'dev', net.bridge],
      ['link', 'set', 'dev', net.bridge, 'up'],
      ['link', 'set', 'dev', net.bridge, 'alias', bridgeAlias()],
    ];
    for (const [i, step] of steps.entries()) {
      const r = await ip(step);
      if (r.code !== 0) {
        if (halfMade || i > 0) await ip(['link', 'del', 'dev', net.bridge]);
        throw dreError(
          'DRE_ERR_NO_TAP_AVAILABLE',
          `${what} could not create bridge ${net.bridge}: ip ${step.join(' ')}: ${lastLines(r.stderr)}`,
          engineCause('ip', r),
        );
      }
    }
  });
}

async function removeOwnBridge(): Promise<void> {
  removePortTable();
  const { bridge } = networkConfig();
  if (bridgeAliasOf(bridge) === bridgeAlias()) await ip(['link', 'del', 'dev', bridge]);
}

/**
 * A fixed, locally administered MAC for an address: a restarted container keeps its MAC, so the
 * neighbours' ARP caches stay right (a new random MAC left the host sending to the old one for seconds).
 */
export function macOf(address: string): string {
  return ['02', 'de', ...address.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

/**
 * The host end of a container's link on the bridge, `<bridge>-<host number>` (a veth) or
 * `<bridge>-t<host number>` (a tap) within 15 characters; a bridge name too long for that is
 * replaced by a hash of it, so two bridges never share a prefix.
 */
export function hostLinkName(address: string, kind: 'veth' | 'tap'): string {
  const { bridge, subnet } = networkConfig();
  const prefix = bridge.length <= 9 ? bridge : `v${createHash('sha256').update(bridge).digest('hex').slice(0, 8)}`;
  return `${prefix}-${kind === 'tap' ? 't' : ''}${ipToInt(address)! - parseSubnet(subnet).base}`;
}

/**
 * Before a container with an address runs: its address lies in the configured subnet and the bridge
 * is up. Returns the network.
 */
export async function prepareAddress(name: string, address: string): Promise<ReturnType<typeof networkConfig>> {
  const net = networkConfig();
  const { base, size } = parseSubnet(net.subnet);
  const host = ipToInt(address)! - base;
  if (host <= 1 || host >= size - 1) {
    throw dreError(
      'DRE_ERR_NO_TAP_AVAILABLE',
      `start ${name}: its address ${address} is outside subnet ${net.subnet} of ${networkConfigPath()}; recreate it or restore the subnet`,
    );
  }
  await ensureBridge(`start ${name}:`);
  return net;
}

/** After the container is gone for good: its forward removed, its address and port free again. */
export async function forgetNetwork(kind: Kind, name: string): Promise<void> {
  closePort(leaseKey(kind, name));
  await releaseNetwork(kind, name);
}

/**
 * A system container's NIC on the host: a tap on the bridge application containers use, its address
 * from the same allocator (core/network.ts), its SSH port forwarded as theirs (core/portforward.ts).
 * D-RE (root) makes the tap by opening /dev/net/tun (root's only) and hands QEMU, which runs
 * unprivileged and sandboxed, the open fd. The tap is not persistent: the kernel removes it when the
 * last fd closes, so a QEMU that ends, however it ends, takes its tap with it.
 */
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dreError } from '../core/errors.js';
import { hostLibc } from '../core/libc.js';
import { leaseKey } from '../core/names.js';
import { holdLease, hostLinkName, prepareAddress } from '../core/network.js';
import { cgroupRoot } from '../core/paths.js';
import { closePort, forwardPort } from '../core/portforward.js';
import type { AsyncRevert } from '../core/revert.js';
import { engineCause, lastLines, run } from '../core/run.js';
import type { SysRecord } from './layout.js';
import { qemuPid } from './state.js';

// linux/if_tun.h
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
/** struct ifreq: a 16-byte name, then the flags (a short) in a 24-byte union. */
const IFREQ_SIZE = 40;

/**
 * The MAC of a system container's NIC: locally administered (0e:…), from a hash of its root and name,
 * chosen at create and kept in its record, so a restart, a checkpoint and a migration target use the
 * same one (application containers' 02:de:… MACs come from their address).
 */
export function sysMac(name: string): string {
  const h = createHash('sha256').update(`${cgroupRoot()}/${name}`).digest();
  return ['0e', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The host tap of a system container with `address`. */
export const tapName = (address: string) => hostLinkName(address, 'tap');

/** The NIC of one QEMU run: the tap's open fd for QEMU and what the guest is told. */
export interface Nic {
  fd: number;
  mac: string;
  tap: string;
  /** `dre.ip=ADDRESS/PREFIX dre.gw=GATEWAY`: read by the guest's init (the cloud kernel has no IP autoconfig). */
  cmdline: string;
  /** After QEMU has the fd (or failed): D-RE's copy closed. */
  closeFd(): void;
}

async function ip(args: string[]) {
  return run('ip', args, { timeoutMs: 10_000 });
}

/**
 * Creates the tap `name` (not persistent) on an fd of /dev/net/tun; a tap by that name left over is
 * removed first. Another kind of link by that name is not D-RE's: DRE_ERR_NO_TAP_AVAILABLE, untouched.
 */
async function openTap(name: string, what: string): Promise<number> {
  if (existsSync(`/sys/class/net/${name}`)) {
    if (!existsSync(`/sys/class/net/${name}/tun_flags`)) {
      throw dreError(
        'DRE_ERR_NO_TAP_AVAILABLE',
        `${what}: a link named ${name} exists and is not a tap; remove it or set another bridge in the network config`,
      );
    }
    await ip(['link', 'del', 'dev', name]);
  }
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', constants.O_RDWR);
  } catch (e) {
    throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `${what}: /dev/net/tun cannot be opened (${(e as NodeJS.ErrnoException).code}); load the tun module`, e);
  }
  const ifr = Buffer.alloc(IFREQ_SIZE);
  ifr.write(name, 0, 15, 'ascii');
  ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 16);
  const libc = hostLibc();
  if (libc.ioctl(fd, TUNSETIFF, ifr) !== 0) {
    const errno = libc.errno();
    closeSync(fd);
    throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `${what}: tap ${name} cannot be made (TUNSETIFF: errno ${errno})`);
  }
  return fd;
}

/**
 * Before QEMU runs: the container's lease held here (a record from another host brings its own), the
 * bridge up, the tap made and on the bridge, the SSH port forwarded; if the start fails, `revert` closes
 * the fd (the tap goes with it) and removes the forward. undefined: networking is off.
 */
export async function prepareNic(revert: AsyncRevert, n: string, rec: SysRecord, what: string): Promise<Nic | undefined> {
  if (!rec.address) return undefined;
  const address = rec.address;
  const port = rec.port ?? null;
  await holdLease('sys', n, { address, port }, `${what} ${n}:`);
  const net = await prepareAddress(n, address);
  const tap = tapName(address);
  const fd = await openTap(tap, `${what} ${n}`);
  let open = true;
  const closeFd = () => {
    if (open) closeSync(fd);
    open = false;
  };
  revert.add(closeFd);
  // Bridge and up in one ip process (one netlink request): each ip run costs ≈ 3 ms of a start here.
  const step = ['link', 'set', 'dev', tap, 'master', net.bridge, 'up'];
  const r = await ip(step);
  if (r.code !== 0) throw dreError('DRE_ERR_NO_TAP_AVAILABLE', `${what} ${n}: ip ${step.join(' ')}: ${lastLines(r.stderr)}`, engineCause('ip', r));
  if (port !== null) await forwardPort(revert, 'sys', n, { address, port, bridge: net.bridge }, (name) => qemuPid(name) !== undefined);
  const mac = rec.mac ?? sysMac(n);
  return { fd, mac, tap, cmdline: `dre.ip=${address}/${net.prefix} dre.gw=${net.gateway}`, closeFd };
}

/** After QEMU has ended: the port forward removed (the tap went with QEMU's fd). */
export function endNic(n: string): void {
  closePort(leaseKey('sys', n));
}

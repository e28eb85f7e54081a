/**
 * Networking of application containers: the LXC config lines that wire a container to the bridge and
 * address the shared allocator (core/network.ts) gave it, and its SSH port before it starts.
 */
import * as net from '../core/network.js';
import { hostLinkName, macOf, networkConfig, prepareAddress, type Lease } from '../core/network.js';
import { forwardPort } from '../core/portforward.js';
import type { AsyncRevert } from '../core/revert.js';
import { armPortHook, disarmPortHook } from './portforward.js';
import { runningInit } from './state.js';

export { DEFAULT_NETWORK, networkConfig, networkConfigPath, type Lease, type NetworkConfig } from '../core/network.js';

export const claimNetwork = (name: string, networked: boolean, port: number | null): Promise<Lease> => net.claimNetwork('app', name, networked, port);
export const releaseNetwork = (name: string): Promise<void> => net.releaseNetwork('app', name);
export const forgetNetwork = (name: string): Promise<void> => net.forgetNetwork('app', name);
export const setLeasePort = (name: string, port: number | null): Promise<void> => net.setLeasePort('app', name, port);
export const renameLease = (name: string, to: string): Promise<void> => net.renameLease('app', name, to);

/** The `lxc.net.*` lines of a container: a veth on the bridge with its static address, or loopback only. */
export function lxcNetLines(address: string | null | undefined): string[] {
  // empty + up: a network namespace of its own with loopback up and nothing else.
  if (!address) return ['lxc.net.0.type = empty', 'lxc.net.0.flags = up'];
  const net = networkConfig();
  return [
    'lxc.net.0.type = veth',
    `lxc.net.0.link = ${net.bridge}`,
    `lxc.net.0.veth.pair = ${hostLinkName(address, 'veth')}`,
    'lxc.net.0.name = eth0',
    'lxc.net.0.flags = up',
    `lxc.net.0.hwaddr = ${macOf(address)}`,
    // The broadcast given explicitly: LXC 5 otherwise sets 0.0.0.255.
    `lxc.net.0.ipv4.address = ${address}/${net.prefix} ${net.broadcast}`,
    `lxc.net.0.ipv4.gateway = ${net.gateway}`,
  ];
}

/** Before lxc-start: the bridge is up, the SSH port is forwarded and LXC's hook that ends the forward armed (a taken port stops the start here; `revert` undoes both). */
export async function prepareStart(revert: AsyncRevert, name: string, rec: { address?: string | null; port: number | null }): Promise<void> {
  if (!rec.address) return;
  const { bridge } = await prepareAddress(name, rec.address);
  if (rec.port === null) return;
  await forwardPort(revert, 'app', name, { address: rec.address, port: rec.port, bridge }, (n) => runningInit(n) !== undefined);
  armPortHook(name);
  revert.add(() => void disarmPortHook(name));
}

/**
 * Which init a container's root boots, and how LXC halts it. The busybox base runs busybox init (halted
 * by SIGUSR1); a Debian base (built, imported or committed from one) runs systemd, halted by
 * SIGRTMIN+3 as LXC's and Incus's templates do: systemd then runs its own shutdown (halt.target) and
 * exits. The init is read from the root itself (its /sbin/init), so commits and imports need no record.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';

export type InitSystem = 'systemd' | 'busybox';

/** Where Debian's systemd-sysv (merged /usr) and busybox put the init link, in the order init is looked up. */
const INIT_LINKS = ['usr/sbin/init', 'sbin/init'];

/**
 * The init of a root stacked from `layers` (topmost first, overlayfs order): the first layer that holds
 * an init link decides. systemd when that link leads to systemd, busybox init otherwise.
 */
export function initSystem(layers: string[]): InitSystem {
  for (const layer of layers) {
    for (const link of INIT_LINKS) {
      let target: string;
      try {
        target = readlinkSync(join(layer, link));
      } catch {
        continue; // absent in this layer, or not a link (a real init binary: not systemd's link)
      }
      return /(^|\/)systemd$/.test(target) ? 'systemd' : 'busybox';
    }
  }
  return 'busybox';
}

/** LXC's lines for the init: what it runs and the signal of a graceful halt. */
export function initLines(init: InitSystem): string[] {
  if (init === 'systemd') {
    return [
      'lxc.init.cmd = /sbin/init',
      // systemd halts on SIGRTMIN+3 (LXC's default SIGPWR only reaches sigpwr.target).
      'lxc.signal.halt = SIGRTMIN+3',
    ];
  }
  return [
    'lxc.init.cmd = /sbin/init',
    // busybox init halts on SIGUSR1 (it ignores SIGPWR, LXC's default).
    'lxc.signal.halt = SIGUSR1',
  ];
}

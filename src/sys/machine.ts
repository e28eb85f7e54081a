import type { Accel } from './accel.js';
import { AGENT_PORT_NAME } from './guest.js';

/**
 * QEMU's seccomp filter: no obsolete syscalls, no set*id/setgroups (elevateprivileges), no
 * fork/exec (spawn), no scheduler or priority changes (resourcecontrol). Forbidding fork is why
 * QEMU is not `-daemonize`d: D-RE starts it detached itself.
 */
export const SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

/** The unprivileged user a QEMU runs as (looked up by confine.ts). */
export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * The command that runs QEMU as the user: setpriv sets uid, gid and the user's groups (kvm for
 * /dev/kvm), empties the inheritable and bounding capability sets (the uid change clears the
 * permitted and effective ones; no ambient ones) and sets no_new_privs before exec.
 */
export function confinedCommand(user: QemuUser, qemuArgs: string[]): [string, string[]] {
  return [
    'setpriv',
    [
      '--reuid',
      user.name,
      '--regid',
      String(user.gid),
      '--init-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      'qemu-system-x86_64',
      ...qemuArgs,
    ],
  ];
}

/** Everything a QEMU command line for one container needs. */
export interface MachineSpec {
  name: string;
  accel: Accel;
  memoryMiB: number;
  /** Virtual CPUs; absent: 1. */
  cpus?: number;
  /** The guest grows its root file system to the disk at boot (a disk made larger than its base). */
  growRoot?: boolean;
  /** D-RE's kernel and initramfs, booted directly; absent: SeaBIOS boots the disk's own loader (no kernel command line, so no dre.ip=). */
  kernel?: string;
  initrd?: string;
  /** The disk's path or nfs:// URL; ignored when `diskFds` is set. */
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  /** The disk is a file D-RE opened (a --rootfs image): QEMU gets it as inherited fds 3 (read-write) and 4 (read-only). */
  diskFds?: boolean;
  qmpSocket: string;
  agentSocket: string;
  consoleSocket: string;
  consoleLog: string;
  pidFile: string;
  /** Start from this internal snapshot (a checkpoint) instead of booting. */
  loadvm?: string;
  /** Wait for an incoming migration (set up over QMP) instead of booting; the guest runs when it arrives. */
  incoming?: boolean;
  /** The NIC: a virtio-net on the tap QEMU inherits as fd `fd` (tap.ts), and the guest's address on the kernel command line; none: no NIC. */
  nic?: { fd: number; mac: string; cmdline: string };
}

/** The kernel command line: the console on the 8250 serial port; the initramfs mounts /dev/vda itself. */
export const KERNEL_CMDLINE = 'console=ttyS0 panic=-1 quiet loglevel=3';

/** The fd set QEMU opens `/dev/fdset/1` from: both access modes, since QEMU picks the fd whose mode matches each open. */
const DISK_FDSET = ['-add-fd', 'fd=3,set=1,opaque=rootfs-rw', '-add-fd', 'fd=4,set=1,opaque=rootfs-ro'];

/**
 * QEMU's arguments: q35 (the fastest PC machine to boot under TCG here; microvm needs a host-specific
 * tsc_early_khz), virtio-blk root disk (QEMU cannot checkpoint NVMe), serial console and guest agent on unix sockets, QMP on a socket,
 * started paused (-S) so D-RE can put the process into its cgroup before the guest runs; under the
 * seccomp sandbox, and not daemonized (the sandbox forbids fork: D-RE starts it detached).
 */
export function qemuArgs(m: MachineSpec): string[] {
  return [
    '-name',
    `dre-${m.name},process=dre-${m.name}`,
    '-machine',
    'q35',
    '-accel',
    m.accel,
    ...(m.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m',
    String(m.memoryMiB),
    '-smp',
    String(m.cpus ?? 1),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-sandbox',
    SANDBOX,
    ...(m.kernel === undefined
      ? [] // the firmware boots the disk's own loader
      : [
          '-kernel',
          m.kernel,
          ...(m.initrd === undefined ? [] : ['-initrd', m.initrd]),
          '-append',
          [KERNEL_CMDLINE, ...(m.nic ? [m.nic.cmdline] : []), ...(m.growRoot ? ['dre.growroot=1'] : [])].join(' '),
        ]),
    ...(m.diskFds ? DISK_FDSET : []),
    '-drive',
    `file=${m.diskFds ? '/dev/fdset/1' : m.disk},if=none,id=d0,format=${m.diskFormat},cache=writeback`,
    '-device',
    'virtio-blk-pci,drive=d0',
    '-chardev',
    `socket,id=con0,path=${m.consoleSocket},server=on,wait=off,logfile=${m.consoleLog}`,
    '-serial',
    'chardev:con0',
    '-device',
    'virtio-serial-pci,id=vser0',
    '-chardev',
    `socket,id=agent0,path=${m.agentSocket},server=on,wait=off`,
    '-device',
    `virtserialport,chardev=agent0,name=${AGENT_PORT_NAME}`,
    '-qmp',
    `unix:${m.qmpSocket},server=on,wait=off`,
    ...(m.nic ? ['-netdev', `tap,id=net0,fd=${m.nic.fd}`, '-device', `virtio-net-pci,netdev=net0,mac=${m.nic.mac}`] : ['-nic', 'none']),
    '-pidfile',
    m.pidFile,
    ...(m.incoming ? ['-incoming', 'defer'] : ['-S']),
    ...(m.loadvm ? ['-loadvm', m.loadvm] : []),
  ];
}

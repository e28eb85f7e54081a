/**
 * What D-RE adds to a Debian VM's root (sys/debian.ts lays it in before the disk is made): the same
 * guest agent and power-button reader as the busybox guest (guest.ts), run by systemd as services;
 * the NIC's address from the same `dre.ip=`/`dre.gw=` kernel parameters, handed to systemd-networkd;
 * the root file system grown to a larger disk (`dre.growroot=1`); a root shell on the serial console.
 */
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { enableUnit, installUnit, writeRootFile } from '../core/debian.js';
import { AGENT, powerButtonScript } from './guest.js';

/** Where the guest's D-RE programs live (the admin's /usr/local: no Debian package owns them). */
const BIN = '/usr/local/sbin';

/** The power button asks systemd for an orderly shutdown (services stopped, file systems unmounted, then ACPI poweroff). */
const POWERBUTTON = powerButtonScript('systemctl --no-block poweroff');

// Type=forking: the script returns once its reader holds the event device, so the agent, ordered
// after it, answers only when a stop's button press cannot be lost.
const POWERBUTTON_UNIT = `[Unit]
Description=D-RE: power off on the ACPI power button
DefaultDependencies=no

[Service]
Type=forking
ExecStart=${BIN}/dre-powerbutton
TimeoutStartSec=30

[Install]
WantedBy=sysinit.target
`;

// After multi-user.target: the agent answers, and so `start` returns, once the boot is over (SSH
// listening, the NIC configured). It restarts for good whatever ends it (no start limit).
const AGENT_UNIT = `[Unit]
Description=D-RE guest agent (virtio-serial port org.dre.agent)
Wants=dre-powerbutton.service
After=dre-powerbutton.service multi-user.target
StartLimitIntervalSec=0

[Service]
ExecStart=${BIN}/dre-agent
Environment=HOME=/root
WorkingDirectory=/root
Restart=always
RestartSec=200ms

[Install]
WantedBy=multi-user.target
`;

/** Reads dre.ip=ADDRESS/PREFIX and dre.gw=GATEWAY from the kernel command line into a systemd-networkd config for eth0 (under /run: each boot's own). */
const NETWORK = `#!/bin/sh
for a in $(cat /proc/cmdline); do
  case "$a" in dre.ip=*) ip=\${a#dre.ip=} ;; dre.gw=*) gw=\${a#dre.gw=} ;; esac
done
[ -n "$ip" ] || exit 0
mkdir -p /run/systemd/network
{
  printf '[Match]\\nName=eth0\\n\\n[Network]\\nAddress=%s\\nLinkLocalAddressing=no\\nIPv6AcceptRA=no\\n' "$ip"
  [ -n "$gw" ] && printf 'Gateway=%s\\n' "$gw"
} >/run/systemd/network/10-dre-eth0.network.tmp
mv /run/systemd/network/10-dre-eth0.network.tmp /run/systemd/network/10-dre-eth0.network
`;

const NETWORK_UNIT = `[Unit]
Description=D-RE: the NIC's address from dre.ip= on the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service network-pre.target
Wants=network-pre.target
ConditionKernelCommandLine=dre.ip

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${BIN}/dre-network

[Install]
WantedBy=sysinit.target
`;

// A disk made larger than its base (create --disk-size): the root ext4 grows to it, online.
const GROWROOT_UNIT = `[Unit]
Description=D-RE: grow the root file system to its disk
After=local-fs.target
ConditionKernelCommandLine=dre.growroot=1

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/resize2fs /dev/vda

[Install]
WantedBy=multi-user.target
`;

// The console is as the busybox guest's: root's shell, for `dre-sys console` (the console socket is root's only on the host).
const CONSOLE_AUTOLOGIN = `[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 - $TERM
`;

/**
 * Units of Debian's packages that a VM of a base does not need and that cost seconds of every boot
 * under software emulation: e2fsprogs' scrub of LVM snapshots (there is no LVM).
 */
const MASKED = ['e2scrub_reap.service', 'e2scrub_all.timer'];

/** Masks `unit` (as `systemctl mask`: a link to /dev/null) and takes out the links that enabled it. */
function maskUnit(rootfs: string, unit: string): void {
  const etc = join(rootfs, 'etc/systemd/system');
  for (const d of readdirSync(etc)) if (d.endsWith('.wants')) rmSync(join(etc, d, unit), { force: true });
  rmSync(join(etc, unit), { force: true });
  symlinkSync('/dev/null', join(etc, unit));
}

/** Lays D-RE's files into a Debian root made by mmdebstrap. */
export function layDebianGuest(rootfs: string): void {
  writeRootFile(rootfs, `${BIN.slice(1)}/dre-agent`, AGENT, 0o755);
  writeRootFile(rootfs, `${BIN.slice(1)}/dre-powerbutton`, POWERBUTTON, 0o755);
  writeRootFile(rootfs, `${BIN.slice(1)}/dre-network`, NETWORK, 0o755);
  installUnit(rootfs, 'dre-powerbutton.service', POWERBUTTON_UNIT, ['sysinit.target']);
  installUnit(rootfs, 'dre-agent.service', AGENT_UNIT, ['multi-user.target']);
  installUnit(rootfs, 'dre-network.service', NETWORK_UNIT, ['sysinit.target']);
  installUnit(rootfs, 'dre-growroot.service', GROWROOT_UNIT, ['multi-user.target']);
  enableUnit(rootfs, 'systemd-networkd.service', 'multi-user.target', '/lib/systemd/system/systemd-networkd.service');
  enableUnit(rootfs, 'systemd-networkd.socket', 'sockets.target', '/lib/systemd/system/systemd-networkd.socket');
  for (const unit of MASKED) maskUnit(rootfs, unit);
  writeRootFile(rootfs, 'etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf', CONSOLE_AUTOLOGIN);
  // The kernel's name eth0, as in the busybox guest (no predictable name from udev's default .link).
  mkdirSync(join(rootfs, 'etc/systemd/network'), { recursive: true, mode: 0o755 });
  rmSync(join(rootfs, 'etc/systemd/network/99-default.link'), { force: true });
  symlinkSync('/dev/null', join(rootfs, 'etc/systemd/network/99-default.link'));
  // D-RE's initramfs mounts /dev/vda read-write; the entry tells systemd what / is.
  writeRootFile(rootfs, 'etc/fstab', '# D-RE: the root disk, mounted by the initramfs\n/dev/vda / ext4 defaults,errors=remount-ro 0 1\n');
  writeRootFile(rootfs, 'etc/hostname', 'dre-guest\n');
}

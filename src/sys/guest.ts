/**
 * The files that make the default base's guest: a tiny initramfs that loads the modules the cloud
 * kernel does not build in and mounts the root disk, busybox init, a power-button reader, and the
 * D-RE guest agent.
 */

/**
 * Modules the initramfs loads, in dependency order: virtio-blk for the root disk (NVMe is built in but
 * QEMU cannot save the state of an NVMe device, so checkpoints need virtio), virtio-net for the NIC,
 * virtio-serial for the agent, and the ACPI power button.
 */
export const GUEST_MODULES = [
  'kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
  'kernel/drivers/virtio/virtio_pci.ko',
  'kernel/drivers/block/virtio_blk.ko',
  'kernel/net/core/failover.ko',
  'kernel/drivers/net/net_failover.ko',
  'kernel/drivers/net/virtio_net.ko',
  'kernel/drivers/char/virtio_console.ko',
  'kernel/drivers/input/evdev.ko',
  'kernel/drivers/acpi/button.ko',
];

/** The name of the agent's virtio-serial port (QEMU's virtserialport name=...). */
export const AGENT_PORT_NAME = 'org.dre.agent';

const moduleNames = GUEST_MODULES.map((m) => m.split('/').pop()!.replace(/\.ko$/, '')).join(' ');

/** The initramfs's /init: modules, then the root disk (/dev/vda, ext4) becomes / and its busybox init runs. */
export const INITRAMFS_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in ${moduleNames}; do insmod /modules/$m.ko || echo "dre initramfs: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "dre initramfs: cannot mount /dev/vda"; sleep 5; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`;

export const INITTAB = `::sysinit:/etc/init.d/rcS
::respawn:/sbin/dre-agent
ttyS0::respawn:-/bin/sh
::shutdown:/bin/umount -a -r
`;

export const RCS = `#!/bin/sh
# Boot: file systems, modules, the power-button reader; the agent starts after this (inittab).
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -o remount,rw /
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set lo up
# A disk made larger than its base (create --disk-size): the root ext4 grows to it, online.
grep -q dre.growroot=1 /proc/cmdline && { resize2fs /dev/vda >/dev/null 2>&1 || echo "dre: resize2fs /dev/vda failed" >/dev/console; }
# The NIC's address from D-RE's dre.ip= and dre.gw= (Debian's cloud kernel has no IP autoconfig for ip=).
for a in $(cat /proc/cmdline); do
  case "$a" in dre.ip=*) dre_ip=\${a#dre.ip=} ;; dre.gw=*) dre_gw=\${a#dre.gw=} ;; esac
done
if [ -n "$dre_ip" ]; then
  ip addr add "$dre_ip" dev eth0 && ip link set eth0 up || echo "dre: eth0 cannot be configured" >/dev/console
  [ -n "$dre_gw" ] && ip route add default via "$dre_gw"
fi
/sbin/dre-powerbutton
[ -x /etc/init.d/rc.local ] && /etc/init.d/rc.local
exit 0
`;

/**
 * Waits for the ACPI power button's event device, starts a reader that runs `shutdown` (a shell
 * command) on its first event, and returns only once the reader holds the device (an event sent
 * earlier would be lost). The busybox guest unmounts and powers off itself; a systemd guest asks
 * systemd (debianguest.ts).
 */
export const powerButtonScript = (shutdown: string) => `#!/bin/sh
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 100 ]; do
  for e in /sys/class/input/event*; do
    [ "$(cat $e/device/name 2>/dev/null)" = "Power Button" ] && dev=/dev/input/\${e##*/}
  done
  [ -z "$dev" ] && sleep 0.05
  i=$((i+1))
done
[ -n "$dev" ] || { echo "dre: no power button device" >&2; exit 1; }
# The reader opens the device as its stdin before it reads: events from then on wait for it.
( exec <"$dev"; dd of=/dev/null bs=24 count=1 2>/dev/null; echo "dre: power button: shutting down" >/dev/console; ${shutdown} ) </dev/null >/dev/null 2>&1 &
reader=$!
i=0
while [ $i -lt 500 ]; do
  [ "$(readlink /proc/$reader/fd/0 2>/dev/null)" = "$dev" ] && exit 0
  sleep 0.02
  i=$((i+1))
done
echo "dre: the power button reader did not start" >&2
exit 1
`;

/** The busybox guest's reader: everything unmounted or read-only, then a forced poweroff. */
export const POWERBUTTON = powerButtonScript('sync; umount -a -r 2>/dev/null; mount -o remount,ro / 2>/dev/null; poweroff -f');

/**
 * The guest agent: one request per line on its virtio-serial port, one answer per line.
 *   P ID           → P ID                           (ping: the guest is ready)
 *   X ID B64SCRIPT [N] → R ID STATUS .B64STDOUT .B64STDERR (run a sh script; "." keeps empty fields)
 * With N, the N bytes after the request line are the script's stdin (raw; read by dd, which never
 * reads past them: busybox head -c reads ahead), else its stdin is empty.
 * The port stays open for good: the guest driver discards data that reaches a closed port, and a
 * close racing with a new host connection would lose that request. While no host client is
 * connected a read returns end-of-file at once, so the agent polls (briefly after a request, then
 * every 0.2 s).
 */
export const AGENT = `#!/bin/sh
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name 2>/dev/null)" = "${AGENT_PORT_NAME}" ] && port=/dev/\${p##*/}
done
[ -n "$port" ] || { sleep 1; exit 1; }
w=/run/dre-agent
mkdir -p $w
idle=0
while :; do
  while read -r op id arg len; do
    idle=0
    case "$op" in
      P) echo "P $id" ;;
      X) echo "$arg" | base64 -d > $w/cmd
         if [ -n "$len" ]; then dd bs=65536 count="$len" iflag=fullblock,count_bytes of=$w/in 2>/dev/null; else : >$w/in; fi
         sh $w/cmd <$w/in >$w/out 2>$w/err 3>&-
         rc=$?
         rm -f $w/in
         # Streamed to the port, not through $(...), which holds the whole answer in the shell first.
         printf 'R %s %s .' "$id" "$rc"; base64 -w0 < $w/out; printf ' .'; base64 -w0 < $w/err; echo ;;
    esac
  done
  if [ $idle -lt 50 ]; then idle=$((idle+1)); sleep 0.02; else sleep 0.2; fi
done 3<>"$port" <&3 >&3
`;

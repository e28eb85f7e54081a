import { join } from 'node:path';
import { baseDir, containerDir, containerGroup, containerRecordPath, containerRunDir } from '../core/paths.js';
import { readRecordOr, sysRecordCheck } from '../core/records.js';

/** What D-RE keeps of a system container (dre.json beside its disk). */
export interface SysRecord {
  name: string;
  /** The Base Image its disk stands on, or null when `rootfs` is used instead. */
  base: string | null;
  /** A block device or image file used as the root disk instead of an overlay on a base. */
  rootfs: string | null;
  /** Guest RAM in MiB. */
  memoryMiB: number;
  /** Software emulation chosen at create time ('tcg'), or 'kvm' (the default). */
  accel: 'kvm' | 'tcg';
  /** Its address on the D-RE bridge (core/network.ts); null or absent (a record made before VMs had a NIC): no network. */
  address?: string | null;
  /** The host port forwarded to the guest's SSH port, or null. */
  port?: number | null;
  /** Its NIC's MAC (tap.ts sysMac), kept so that a restart or a migration target uses the same one. */
  mac?: string;
  /** Virtual CPUs (QEMU -smp); absent (records of before): 1. */
  cpus?: number;
  /** The virtual size of its disk in MiB when made larger than its base's (the guest grows its ext4 to it); absent: the base's. */
  diskMiB?: number;
  created: string;
}

/** What a Base Image holds: a kernel, its initramfs and a qcow2 root disk (ext4 on the whole disk). */
export const baseDiskPath = (base: string) => join(baseDir('sys', base), 'disk.qcow2');
export const baseKernelPath = (base: string) => join(baseDir('sys', base), 'vmlinuz');
export const baseInitrdPath = (base: string) => join(baseDir('sys', base), 'initrd.img');
export const baseInfoPath = (base: string) => join(baseDir('sys', base), 'base.json');

export const recordPath = (name: string) => containerRecordPath('sys', name);
/** The container's own disk: a qcow2 overlay on its base (holds its snapshots and checkpoints too). */
export const localDiskPath = (name: string) => join(containerDir('sys', name), 'disk.qcow2');

// Runtime files of the current run: root-only, gone after a reboot.
export const qmpSocketPath = (name: string) => join(containerRunDir('sys', name), 'qmp.sock');
export const agentSocketPath = (name: string) => join(containerRunDir('sys', name), 'agent.sock');
export const consoleSocketPath = (name: string) => join(containerRunDir('sys', name), 'console.sock');
export const consoleLogPath = (name: string) => join(containerRunDir('sys', name), 'console.log');
export const pidFilePath = (name: string) => join(containerRunDir('sys', name), 'qemu.pid');
/** QEMU's own stdout and stderr (made by root, written by QEMU through the inherited fd). */
export const qemuLogPath = (name: string) => join(containerRunDir('sys', name), 'qemu.log');
/** The TLS credentials staged for QEMU: beside the run dir, not in it (QEMU owns the run dir). */
export const tlsStagingDir = (runDir: string) => `${runDir}.tls`;

/** The container's record, checked (records.ts); a torn or hand-broken one → DRE_ERR_CONTAINER_UNKNOWN_STATUS naming the file. */
export function readRecord(name: string): SysRecord | undefined {
  const fix = `restore the file, or remove the container with dre-sys destroy ${name}`;
  return readRecordOr<SysRecord>(recordPath(name), sysRecordCheck, 'DRE_ERR_CONTAINER_UNKNOWN_STATUS', `system container ${name}`, fix);
}

/** The host cgroup around the container's QEMU process and all its threads. */
export function containerCgroup(name: string): string {
  return containerGroup('sys', name);
}

/** Internal snapshot names in the qcow2: one prefix per kind, so a checkpoint is never listed as a snapshot. */
export const SNAPSHOT_PREFIX = 'dre-snap-';
export const CHECKPOINT_PREFIX = 'dre-ckpt-';

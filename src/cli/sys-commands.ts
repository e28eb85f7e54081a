/** The commands of `dre-sys` (system containers), read by dre-sys.ts to run and by scripts/gen-docs to document. */
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import type { Accel } from '../sys/accel.js';
import {
  archiveCommands,
  cgroupCommands,
  configCommands,
  renameCommand,
  eventsCommands,
  execCommand,
  infoCommand,
  lazy,
  lifecycleCommands,
  logsCommand,
  one,
  policyCommand,
  snapshotCommands,
  topCommand,
} from './commands.js';
import { intArg, listRows } from './common.js';
import type { CliSpec, CommandSpec } from './framework.js';
import { progress } from './output.js';
import { migrationCommands } from './sys-migration.js';

const sys = lazy(() => import('../sys/driver.js').then((m) => m.sysDriver));
/** Read-only queries load only the state module. */
const state = lazy(() => import('../sys/state.js'));

/** A size as MiB: a number of MiB, or with a suffix M, G or T (e.g. 2G). */
function mibArg(value: string | boolean | undefined, flag: string): number | null {
  if (value === undefined) return null;
  const m = typeof value === 'string' ? /^(\d+)([MGT]?)(?:i?B)?$/i.exec(value) : null;
  if (!m) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)} is not a size such as 2048, 512M or 2G`);
  return Number(m[1]) * { '': 1, M: 1, G: 1024, T: 1024 * 1024 }[m[2].toUpperCase() as '' | 'M' | 'G' | 'T'];
}

const commands: CommandSpec[] = [
  {
    name: 'create',
    args: 'NAME',
    summary: 'create a system container (default base: Debian cloud kernel + busybox; 256 MiB)',
    options: {
      '--base BASE': 'the Base Image (default: the built-in one)',
      '--rootfs PATH': 'a disk image of your own instead of a base',
      '--memory MIB': 'memory in MiB (default 256)',
      '--accel ACCEL': 'kvm or tcg (default: DRE_SYS_ACCEL, else kvm)',
      '--port HOSTPORT': "forward this host port to the guest's SSH port (22)",
      '--no-network': 'no NIC (by default one on the D-RE bridge, its address from the same allocator as application containers)',
      '--cpus N': 'virtual CPUs (default 1)',
      '--disk-size SIZE': "the disk's size, larger than the base's (e.g. 2G; the guest grows its file system)",
    },
    run: async ([n], o) => {
      await sys.create(n, {
        base: (o.base as string | undefined) ?? null,
        rootfs: (o.rootfs as string | undefined) ?? null,
        memorySize: intArg(o.memory, '--memory') ?? null,
        accel: (o.accel as Accel | undefined) ?? null, // checked by create
        network: !o['no-network'],
        port: intArg(o.port, '--port') ?? null,
        cpus: intArg(o.cpus, '--cpus') ?? null,
        diskSize: mibArg(o['disk-size'], '--disk-size'),
      });
    },
  },
  ...lifecycleCommands(sys, state, 'sys', {
    start: 'start a container; returns once the guest is ready',
    stop: 'stop a container: ACPI power button first, QEMU ended after the timeout (default 10 s)',
    suspend: 'pause the virtual machine',
    resume: 'let a suspended virtual machine run again',
    pid: "print the host PID of the container's QEMU process",
  }),
  {
    name: 'list',
    summary:
      'list the containers of this D-RE root with their status, disk (base or rootfs) and memory; --all-hosts: the shared containers of the cluster and where each runs',
    options: { '--all-hosts': 'the shared containers of the whole cluster (dred --cluster), each with the host that runs it' },
    output: true,
    run: async (_, o, out) => {
      if (o['all-hosts']) {
        const { clusterContainers } = await import('../cluster/claims.js');
        const rows = await clusterContainers('list --all-hosts');
        return out.print(rows, {
          columns: [
            ['NAME', (r) => r.name],
            ['HOST', (r) => r.host ?? '-'],
            ['WANTED', (r) => r.wanted],
            ['FAILOVER', (r) => (r.failover ? 'yes' : 'no')],
          ],
        });
      }
      const rows = await listRows('dre-sys', await state.list(), async (name) => {
        const { status, base, rootfs, memoryMiB, address, port } = await state.summary(name);
        return { status: statusName(status), disk: base ?? rootfs, base, rootfs, memoryMiB, address, port };
      });
      await out.print(rows, {
        columns: [
          ['NAME', (r) => r.name],
          ['STATUS', (r) => r.status],
          ['DISK', (r) => ('disk' in r ? r.disk : null)],
          ['MEMORY', (r) => ('memoryMiB' in r ? `${r.memoryMiB}M` : null)],
          ['ADDRESS', (r) => ('address' in r ? r.address : null)],
          ['PORT', (r) => ('port' in r ? r.port : null)],
        ],
      });
    },
  },
  renameCommand(sys, 'rename a stopped container (its disk, snapshots and logs go with it; not while shared)'),
  ...configCommands(
    sys,
    'memory SIZE (guest RAM, e.g. 512M; stopped only), cpus N (virtual CPUs; stopped only), port PORT|none (stopped only), autostart true|false',
  ),
  infoCommand(sys, 'sys', (n) => state.info(n)),
  topCommand(sys),
  ...eventsCommands('sys'),
  execCommand(
    sys,
    'dre-sys',
    "run a command in the guest (through its agent); stdin (unless a terminal: give </dev/null for none), stdout, stderr and exit status pass through (D-RE's own failures: a 'dre-sys:' line on stderr; --dre-status tells them apart)",
    true,
  ),
  {
    name: 'push',
    args: 'NAME SRC DST',
    summary: 'copy host file SRC to DST in the running guest (through its agent), with its mode',
    run: async ([n, src, dst]) => sys.push(n, src, dst),
  },
  {
    name: 'pull',
    args: 'NAME SRC DST',
    summary: 'copy file SRC of the running guest to host path DST (through its agent), with its mode',
    run: async ([n, src, dst]) => sys.pull(n, src, dst),
  },
  ...archiveCommands(sys, 'its snapshots, its checkpoints and its Base Image'),
  one('NAME', "attach the terminal to the guest's serial console (Ctrl-] detaches)", 'console', sys.console),
  logsCommand(sys),
  {
    name: 'base build',
    args: '[FLAVOUR] [NAME]',
    summary:
      'build a Base Image, printing progress: FLAVOUR default (none given) builds the built-in one again (kernel package + busybox); debian a Debian VM base with mmdebstrap (NAME defaults to debian)',
    options: { '--release RELEASE': 'debian: the Debian release (default bookworm)', '--include PKGS': 'debian: more packages, comma-separated' },
    run: async ([flavour, name], o) => {
      if (flavour === 'debian') {
        const include = typeof o.include === 'string' ? o.include.split(',').filter(Boolean) : [];
        // mmdebstrap's own progress display on a terminal; its lines, prefixed, otherwise (logs, CI).
        const shown = process.stderr.isTTY ? ('inherit' as const) : (line: string) => void process.stderr.write(`dre-sys: ${line}\n`);
        await sys.buildDebianBase(name ?? 'debian', { release: o.release as string | undefined, include, progress: shown });
        return;
      }
      if ((flavour !== undefined && flavour !== 'default') || name !== undefined || o.release !== undefined || o.include !== undefined)
        throw dreError(
          'DRE_ERR_INVALID_ARGUMENT',
          `base build: FLAVOUR is default (the built-in base, no NAME or options) or debian, not ${JSON.stringify(flavour)}`,
        );
      const p = progress('base build');
      await sys.rebuildDefaultBase((step) => p.step(step));
      p.done('done');
    },
  },
  {
    name: 'base import',
    args: 'NAME DISK',
    summary:
      "make a Base Image of a qcow2 or raw disk (file or block device; copied, never changed): ext4 on the whole disk boots with D-RE's kernel, a partitioned disk through the firmware and its own boot loader",
    options: { '--boot HOW': 'kernel or firmware, when found out wrongly from the first sectors' },
    run: async ([name, disk], o) => {
      await sys.importBase(name, disk, { boot: o.boot as 'kernel' | 'firmware' | undefined });
    },
  },
  policyCommand(sys, 'none, restart, rollback:TAG, rollback:last-good, restart-from:CHECKPOINT'),
  ...snapshotCommands(sys, {
    snapshot: 'save a snapshot of the disk of a stopped container',
    load: 'restore the disk of a stopped container from a snapshot',
    commit: 'make a new, independent Base Image from a snapshot',
    checkpoint: 'save the running state of a container (memory and disk)',
    restart: 'bring a container back to a checkpoint (running or stopped)',
  }),
  ...cgroupCommands(sys, {
    create: "create a control group inside the container's group on the host",
    bind: 'move a host process (e.g. a QEMU thread) into a control group',
  }),
  ...migrationCommands(sys),
];

export const sysCli: CliSpec = { prog: 'dre-sys', about: 'system containers (QEMU) of the D-RE runtime', commands };

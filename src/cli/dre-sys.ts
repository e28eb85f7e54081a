#!/usr/bin/env node
/** `dre-sys`: system containers from the shell, a thin user of the QEMU driver. */
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import type { Accel } from '../sys/accel.js';
import { cgroupCommands, lazy, one, policyCommand, snapshotCommands, splitCommand, stateCommands, stopCommand } from './commands.js';
import { cliMain, intArg, listRows, parse, printJson, printTable, type Command } from './common.js';
import { migrationCommands } from './sys-migration.js';

const sys = lazy(() => import('../sys/driver.js').then((m) => m.sysDriver));
/** Read-only queries load only the state module. */
const state = lazy(() => import('../sys/state.js'));

/** `push` and `pull`: NAME SRC DST. */
function fileCommand(name: string, summary: string, copy: (n: string, src: string, dst: string) => Promise<void>): Command {
  return {
    name,
    usage: 'NAME SRC DST',
    summary,
    run: async (args) => {
      const { positionals } = parse(args, {}, 3);
      await copy(positionals[0], positionals[1], positionals[2]);
    },
  };
}

/** All of this process's stdin. */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A size as MiB: a number of MiB, or with a suffix M, G or T (e.g. 2G). */
function mibArg(value: string | undefined, flag: string): number | null {
  if (value === undefined) return null;
  const m = /^(\d+)([MGT]?)(?:i?B)?$/i.exec(value);
  if (!m) throw dreError('DRE_ERR_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)} is not a size such as 2048, 512M or 2G`);
  return Number(m[1]) * { '': 1, M: 1, G: 1024, T: 1024 * 1024 }[m[2].toUpperCase() as '' | 'M' | 'G' | 'T'];
}

const commands: Command[] = [
  {
    name: 'create',
    usage: 'NAME [--base BASE | --rootfs PATH] [--memory MIB] [--accel kvm|tcg] [--port HOSTPORT | --no-network] [--cpus N] [--disk-size SIZE]',
    summary: 'create a system container (default base: Debian cloud kernel + busybox; 256 MiB)',
    run: async (args) => {
      const { values, positionals } = parse(
        args,
        { base: { type: 'string' }, rootfs: { type: 'string' }, memory: { type: 'string' }, accel: { type: 'string' }, port: { type: 'string' }, 'no-network': { type: 'boolean' }, cpus: { type: 'string' }, 'disk-size': { type: 'string' } },
        1,
      );
      await sys.create(positionals[0], {
        base: values.base ?? null,
        rootfs: values.rootfs ?? null,
        memorySize: intArg(values.memory, '--memory') ?? null,
        accel: (values.accel ?? null) as Accel | null, // checked by create
        network: !values['no-network'],
        port: intArg(values.port, '--port') ?? null,
        cpus: intArg(values.cpus, '--cpus') ?? null,
        diskSize: mibArg(values['disk-size'], '--disk-size'),
      });
    },
  },
  one('NAME', 'destroy a stopped container and everything it holds', 'destroy', sys.destroy),
  one('NAME', 'start a container; returns once the guest is ready', 'start', sys.start),
  stopCommand(sys, 'stop a container: ACPI power button first, QEMU ended after the timeout (default 10 s)'),
  one('NAME', 'pause the virtual machine', 'suspend', sys.suspend),
  one('NAME', 'let a suspended virtual machine run again', 'resume', sys.resume),
  ...stateCommands(state, 'sys', "print the host PID of the container's QEMU process"),
  {
    name: 'list',
    usage: '[--json]',
    summary: 'list the containers of this D-RE root with their status, base and memory',
    run: async (args) => {
      const { values } = parse(args, {}, 0);
      const rows = await listRows('dre-sys', await state.list(), async (name) => ({ status: statusName(await state.status(name)), ...(await state.info(name)) }));
      if (values.json) printJson(rows);
      else {
        const cells = (r: (typeof rows)[number]) => ('memoryMiB' in r ? [r.name, r.status, r.base ?? r.rootfs ?? '-', `${r.memoryMiB}M`, r.address ?? '-', r.port === null ? '-' : String(r.port)] : [r.name, r.status, '-', '-', '-', '-']);
        printTable(['NAME', 'STATUS', 'DISK', 'MEMORY', 'ADDRESS', 'PORT'], rows.map(cells));
      }
    },
  },
  {
    name: 'exec',
    usage: 'NAME -- CMD [ARGS...]',
    summary: 'run a command in the guest (through its agent); stdin (unless a terminal: use </dev/null to give none), stdout, stderr and exit status pass through',
    run: async (args) => {
      const { before, argv } = splitCommand(args);
      const { positionals } = parse(before, {}, 1);
      return sys.exec(positionals[0], argv, process.stdin.isTTY ? undefined : await readStdin());
    },
  },
  fileCommand('push', 'copy host file SRC to DST in the running guest (through its agent), with its mode', (n, src, dst) => sys.push(n, src, dst)),
  fileCommand('pull', 'copy file SRC of the running guest to host path DST (through its agent), with its mode', (n, src, dst) => sys.pull(n, src, dst)),
  one('NAME', "attach the terminal to the guest's serial console (Ctrl-] detaches)", 'console', sys.console),
  {
    name: 'base',
    usage: 'build',
    summary: 'build the default Base Image again (kernel package + busybox), printing progress',
    run: async (args) => {
      const { positionals } = parse(args, {}, 1);
      if (positionals[0] !== 'build') throw dreError('DRE_ERR_INVALID_ARGUMENT', `base: unknown action ${JSON.stringify(positionals[0])}; the only one is "build"`);
      await sys.rebuildDefaultBase((step) => process.stderr.write(`base build: ${step}\n`));
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

await cliMain('dre-sys', 'system containers (QEMU) of the D-RE runtime', commands);

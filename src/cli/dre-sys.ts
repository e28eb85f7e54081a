#!/usr/bin/env node
/** `dre-sys`: system containers from the shell, a thin user of the QEMU driver. */
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import type { Accel } from '../sys/accel.js';
import { cgroupCommands, execCommand, lazy, one, policyCommand, snapshotCommands, stateCommands, stopCommand } from './commands.js';
import { cliMain, intArg, listRows, parse, printJson, printTable, type Command } from './common.js';
import { migrationCommands } from './sys-migration.js';

const sys = lazy(() => import('../sys/driver.js').then((m) => m.sysDriver));
/** Read-only queries load only the state module. */
const state = lazy(() => import('../sys/state.js'));

const commands: Command[] = [
  {
    name: 'create',
    usage: 'NAME [--base BASE | --rootfs PATH] [--memory MIB] [--accel kvm|tcg] [--port HOSTPORT | --no-network]',
    summary: 'create a system container (default base: Debian cloud kernel + busybox; 256 MiB)',
    run: async (args) => {
      const { values, positionals } = parse(
        args,
        { base: { type: 'string' }, rootfs: { type: 'string' }, memory: { type: 'string' }, accel: { type: 'string' }, port: { type: 'string' }, 'no-network': { type: 'boolean' } },
        1,
      );
      await sys.create(positionals[0], {
        base: values.base ?? null,
        rootfs: values.rootfs ?? null,
        memorySize: intArg(values.memory, '--memory') ?? null,
        accel: (values.accel ?? null) as Accel | null, // checked by create
        network: !values['no-network'],
        port: intArg(values.port, '--port') ?? null,
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
  execCommand(sys, 'run a command in the guest (through its agent); stdout, stderr and exit status pass through'),
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

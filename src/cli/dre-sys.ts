#!/usr/bin/env node
/** `dre-sys`: system containers from the shell, a thin user of the QEMU driver. */
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { checkAccel } from '../sys/accel.js';
import { sysDriver as sys } from '../sys/driver.js';
import { listing, one, pidOf, resource, resourceType, splitCommand, tagged } from './commands.js';
import { cliMain, intArg, parse, printJson, printTable, type Command } from './common.js';
import { migrationCommands } from './sys-migration.js';

const commands: Command[] = [
  {
    name: 'create',
    usage: 'NAME [--base BASE | --rootfs PATH] [--memory MIB] [--accel kvm|tcg]',
    summary: 'create a system container (default base: Debian cloud kernel + busybox; 256 MiB)',
    run: async (args) => {
      const { values, positionals } = parse(
        args,
        { base: { type: 'string' }, rootfs: { type: 'string' }, memory: { type: 'string' }, accel: { type: 'string' } },
        1,
      );
      await sys.create(positionals[0], {
        base: values.base ?? null,
        rootfs: values.rootfs ?? null,
        memorySize: intArg(values.memory, '--memory') ?? null,
        accel: values.accel === undefined ? null : checkAccel(values.accel, '--accel'),
      });
    },
  },
  one('NAME', 'destroy a stopped container and everything it holds', 'destroy', sys.destroy),
  one('NAME', 'start a container; returns once the guest is ready', 'start', sys.start),
  {
    name: 'stop',
    usage: 'NAME [--timeout SECONDS]',
    summary: 'stop a container: ACPI power button first, QEMU ended after the timeout (default 10 s)',
    run: async (args) => {
      const { values, positionals } = parse(args, { timeout: { type: 'string' } }, 1);
      const t = intArg(values.timeout, '--timeout');
      await sys.stop(positionals[0], t === undefined ? {} : { timeoutMs: t * 1000 });
    },
  },
  one('NAME', 'pause the virtual machine', 'suspend', sys.suspend),
  one('NAME', 'let a suspended virtual machine run again', 'resume', sys.resume),
  {
    name: 'status',
    usage: 'NAME [--json]',
    summary: 'print STOP, RUNNING, SUSPENDED or BUSY',
    run: async (args) => {
      const { values, positionals } = parse(args, {}, 1);
      const s = statusName(await sys.status(positionals[0]));
      if (values.json) printJson({ name: positionals[0], status: s });
      else process.stdout.write(`${s}\n`);
    },
  },
  {
    name: 'pid',
    usage: 'NAME',
    summary: "print the host PID of the container's QEMU process",
    run: async (args) => {
      const { positionals } = parse(args, {}, 1);
      process.stdout.write(`${await sys.pid(positionals[0])}\n`);
    },
  },
  {
    name: 'list',
    usage: '[--json]',
    summary: 'list the containers of this D-RE root with their status, base and memory',
    run: async (args) => {
      const { values } = parse(args, {}, 0);
      const rows = await Promise.all(sys.list().map(async (name) => ({ name, status: statusName(await sys.status(name)), ...sys.info(name) })));
      if (values.json) printJson(rows);
      else printTable(['NAME', 'STATUS', 'DISK', 'MEMORY'], rows.map((r) => [r.name, r.status, r.base ?? r.rootfs ?? '-', `${r.memoryMiB}M`]));
    },
  },
  {
    name: 'exec',
    usage: 'NAME -- CMD [ARGS...]',
    summary: 'run a command in the guest (through its agent); stdout, stderr and exit status pass through',
    run: async (args) => {
      const { before, argv } = splitCommand(args);
      const { positionals } = parse(before, {}, 1);
      return sys.exec(positionals[0], argv);
    },
  },
  one('NAME', "attach the terminal to the guest's serial console (Ctrl-] detaches)", 'console', sys.console),
  tagged('snapshot', 'save a snapshot of the disk of a stopped container', sys.saveSnapshot),
  tagged('load', 'restore the disk of a stopped container from a snapshot', sys.loadSnapshot),
  tagged('rm-snapshot', 'remove a snapshot', sys.removeSnapshot),
  listing('snapshots', 'NAME', 'list the snapshots of a container', ([n]) => sys.listSnapshots(n)),
  {
    name: 'commit',
    usage: 'NAME TAG BASE',
    summary: 'make a new, independent Base Image from a snapshot',
    run: async (args) => {
      const { positionals } = parse(args, {}, 3);
      await sys.commitSnapshot(positionals[0], positionals[1], positionals[2]);
    },
  },
  listing('bases', '', 'list the Base Images', () => sys.listBases()),
  one('BASE', 'remove a Base Image no container uses', 'rm-base', sys.removeBase),
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
  tagged('checkpoint', 'save the running state of a container (memory and disk)', sys.checkpoint),
  tagged('restart', 'bring a container back to a checkpoint (running or stopped)', sys.restart),
  tagged('rm-checkpoint', 'remove a checkpoint', sys.removeCheckpoint),
  listing('checkpoints', 'NAME', 'list the checkpoints of a container', ([n]) => sys.listCheckpoints(n)),
  {
    name: 'cgroup-create',
    usage: 'NAME CGROUP',
    summary: "create a control group inside the container's group on the host",
    run: async (args) => {
      const { positionals: [n, cg] } = parse(args, {}, 2);
      await sys.createCgroup(n, cg);
    },
  },
  {
    name: 'cgroup-destroy',
    usage: 'NAME CGROUP',
    summary: 'remove a control group (its processes go back to the container)',
    run: async (args) => {
      const { positionals: [n, cg] } = parse(args, {}, 2);
      await sys.destroyCgroup(n, cg);
    },
  },
  {
    name: 'bind',
    usage: 'NAME CGROUP PID',
    summary: 'move a host process (e.g. a QEMU thread) into a control group',
    run: async (args) => {
      const { positionals: [n, cg, p] } = parse(args, {}, 3);
      await sys.bindPid(n, cg, pidOf(p));
    },
  },
  {
    name: 'unbind',
    usage: 'NAME CGROUP PID',
    summary: "move a process back into the container's own group",
    run: async (args) => {
      const { positionals: [n, cg, p] } = parse(args, {}, 3);
      await sys.unbindPid(n, cg, pidOf(p));
    },
  },
  {
    name: 'limit',
    usage: 'NAME CGROUP cpu|cores|memory|memsw VALUE',
    summary: 'set a limit: cpu PERCENT, cores LIST (e.g. 0-1), memory BYTES, memsw BYTES',
    run: async (args) => {
      const { positionals: [n, cg, r, v] } = parse(args, {}, 4);
      await sys.setResource(n, cg, resource(r, v));
    },
  },
  {
    name: 'unlimit',
    usage: 'NAME CGROUP cpu|cores|memory|memsw',
    summary: 'lift a limit',
    run: async (args) => {
      const { positionals: [n, cg, r] } = parse(args, {}, 3);
      await sys.unsetResource(n, cg, { type: resourceType(r) });
    },
  },
  {
    name: 'usage',
    usage: 'NAME PID cpu|cores|memory|memsw [--json]',
    summary: 'print the usage of the group holding PID',
    run: async (args) => {
      const { values, positionals: [n, p, r] } = parse(args, {}, 3);
      const u = await sys.getResource(n, pidOf(p), resourceType(r));
      if (values.json) printJson(u);
      else process.stdout.write(`${u.percent ?? u.cores ?? u.bytes}\n`);
    },
  },
  ...migrationCommands,
];

await cliMain('dre-sys', 'system containers (QEMU) of the D-RE runtime', commands);

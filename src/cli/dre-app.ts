#!/usr/bin/env node
/** `dre-app`: application containers from the shell, a thin user of the LXC driver. */
import { readFileSync } from 'node:fs';
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { lazy, listing, one, pidOf, resource, resourceType, splitCommand, tagged } from './commands.js';
import { cliMain, intArg, parse, printJson, printTable, type Command } from './common.js';

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `--ssh-key: cannot read ${path}: ${(e as Error).message}`);
  }
}

const app = lazy(() => import('../app/driver.js').then((m) => m.appDriver));
/** Read-only queries load only the state module. */
const state = lazy(() => import('../app/state.js'));

const commands: Command[] = [
  {
    name: 'create',
    usage: 'NAME [--base BASE] [--port PORT] [--ssh-key PUBKEY_FILE] [--no-network]',
    summary: 'create an application container (default base: busybox); --port forwards host PORT to its SSH server',
    run: async (args) => {
      const opts = { base: { type: 'string' }, port: { type: 'string' }, 'ssh-key': { type: 'string' }, 'no-network': { type: 'boolean' } } as const;
      const { values, positionals } = parse(args, opts, 1);
      await app.create(positionals[0], {
        base: values.base ?? null,
        port: intArg(values.port, '--port') ?? null,
        network: !values['no-network'],
        sshKey: values['ssh-key'] === undefined ? undefined : readKeyFile(values['ssh-key']),
      });
    },
  },
  one('NAME', 'destroy a stopped container and everything it holds', 'destroy', app.destroy),
  one('NAME', 'start a container', 'start', app.start),
  {
    name: 'stop',
    usage: 'NAME [--timeout SECONDS]',
    summary: 'stop a container: graceful first, forced after the timeout (default 10 s)',
    run: async (args) => {
      const { values, positionals } = parse(args, { timeout: { type: 'string' } }, 1);
      const t = intArg(values.timeout, '--timeout');
      await app.stop(positionals[0], t === undefined ? {} : { timeoutMs: t * 1000 });
    },
  },
  one('NAME', 'freeze every process of a running container', 'suspend', app.suspend),
  one('NAME', 'thaw a suspended container', 'resume', app.resume),
  {
    name: 'status',
    usage: 'NAME [--json]',
    summary: 'print STOP, RUNNING, SUSPENDED or BUSY',
    run: async (args) => {
      const { values, positionals } = parse(args, {}, 1);
      const s = statusName(await state.status(positionals[0]));
      if (values.json) printJson({ name: positionals[0], status: s });
      else process.stdout.write(`${s}\n`);
    },
  },
  {
    name: 'pid',
    usage: 'NAME',
    summary: "print the host PID of the container's init",
    run: async (args) => {
      const { positionals } = parse(args, {}, 1);
      process.stdout.write(`${await state.pid(positionals[0])}\n`);
    },
  },
  {
    name: 'list',
    usage: '[--json]',
    summary: 'list the containers of this D-RE root with their status, base, address and SSH port',
    run: async (args) => {
      const { values } = parse(args, {}, 0);
      const rows = await Promise.all(
        (await state.list()).map(async (name) => ({ name, status: statusName(await state.status(name)), ...(await state.info(name)) })),
      );
      if (values.json) printJson(rows);
      else printTable(['NAME', 'STATUS', 'BASE', 'ADDRESS', 'PORT'], rows.map((r) => [r.name, r.status, r.base, r.address ?? '-', r.port ?? '-']));
    },
  },
  {
    name: 'exec',
    usage: 'NAME -- CMD [ARGS...]',
    summary: 'run a command in a running container; stdin, stdout, stderr and exit status pass through',
    run: async (args) => {
      const { before, argv } = splitCommand(args);
      const { positionals } = parse(before, {}, 1);
      return app.exec(positionals[0], argv);
    },
  },
  tagged('snapshot', 'save a snapshot of a stopped container', app.saveSnapshot),
  tagged('load', 'restore a stopped container from a snapshot', app.loadSnapshot),
  tagged('rm-snapshot', 'remove a snapshot', app.removeSnapshot),
  listing('snapshots', 'NAME', 'list the snapshots of a container', ([n]) => app.listSnapshots(n)),
  {
    name: 'commit',
    usage: 'NAME TAG BASE',
    summary: 'make a new Base Image from a snapshot',
    run: async (args) => {
      const { positionals } = parse(args, {}, 3);
      await app.commitSnapshot(positionals[0], positionals[1], positionals[2]);
    },
  },
  listing('bases', '', 'list the Base Images', () => app.listBases()),
  one('BASE', 'remove a Base Image no container uses', 'rm-base', app.removeBase),
  tagged('checkpoint', 'save the running state of a container (CRIU)', app.checkpoint),
  tagged('restart', 'restart a container from a checkpoint', app.restart),
  tagged('rm-checkpoint', 'remove a checkpoint', app.removeCheckpoint),
  listing('checkpoints', 'NAME', 'list the checkpoints of a container', ([n]) => app.listCheckpoints(n)),
  {
    name: 'cgroup-create',
    usage: 'NAME CGROUP',
    summary: "create a control group inside the container's group",
    run: async (args) => {
      const { positionals: [n, cg] } = parse(args, {}, 2);
      await app.createCgroup(n, cg);
    },
  },
  {
    name: 'cgroup-destroy',
    usage: 'NAME CGROUP',
    summary: 'remove a control group (its processes go back to the container)',
    run: async (args) => {
      const { positionals: [n, cg] } = parse(args, {}, 2);
      await app.destroyCgroup(n, cg);
    },
  },
  {
    name: 'bind',
    usage: 'NAME CGROUP PID [--vpid]',
    summary: 'move a process (host PID, or with --vpid a PID inside the container) into a control group',
    run: async (args) => {
      const { values, positionals: [n, cg, p] } = parse(args, { vpid: { type: 'boolean' } }, 3);
      await (values.vpid ? app.bindVpid(n, cg, pidOf(p, 'vpid')) : app.bindPid(n, cg, pidOf(p)));
    },
  },
  {
    name: 'unbind',
    usage: 'NAME CGROUP PID [--vpid]',
    summary: "move a process back into the container's own group",
    run: async (args) => {
      const { values, positionals: [n, cg, p] } = parse(args, { vpid: { type: 'boolean' } }, 3);
      await (values.vpid ? app.unbindVpid(n, cg, pidOf(p, 'vpid')) : app.unbindPid(n, cg, pidOf(p)));
    },
  },
  {
    name: 'limit',
    usage: 'NAME CGROUP cpu|cores|memory|memsw VALUE',
    summary: 'set a limit: cpu PERCENT, cores LIST (e.g. 0-1), memory BYTES, memsw BYTES',
    run: async (args) => {
      const { positionals: [n, cg, r, v] } = parse(args, {}, 4);
      await app.setResource(n, cg, resource(r, v));
    },
  },
  {
    name: 'unlimit',
    usage: 'NAME CGROUP cpu|cores|memory|memsw',
    summary: 'lift a limit',
    run: async (args) => {
      const { positionals: [n, cg, r] } = parse(args, {}, 3);
      await app.unsetResource(n, cg, { type: resourceType(r) });
    },
  },
  {
    name: 'usage',
    usage: 'NAME PID cpu|cores|memory|memsw [--json]',
    summary: 'print the usage of the group holding PID',
    run: async (args) => {
      const { values, positionals: [n, p, r] } = parse(args, {}, 3);
      const u = await app.getResource(n, pidOf(p), resourceType(r));
      if (values.json) printJson(u);
      else process.stdout.write(`${u.percent ?? u.cores ?? u.bytes}\n`);
    },
  },
  {
    name: 'register',
    usage: 'NAME PID [--vpid]',
    summary: 'put a process under D-Aware control',
    run: async (args) => {
      const { values, positionals: [n, p] } = parse(args, { vpid: { type: 'boolean' } }, 2);
      await (values.vpid ? app.registerVpid(n, pidOf(p, 'vpid')) : app.registerPid(n, pidOf(p)));
    },
  },
  {
    name: 'unregister',
    usage: 'NAME PID [--vpid]',
    summary: 'take a process out of D-Aware control',
    run: async (args) => {
      const { values, positionals: [n, p] } = parse(args, { vpid: { type: 'boolean' } }, 2);
      await (values.vpid ? app.unregisterVpid(n, pidOf(p, 'vpid')) : app.unregisterPid(n, pidOf(p)));
    },
  },
  {
    name: 'registered',
    usage: 'NAME [--json]',
    summary: 'list the processes under D-Aware control (PID and VPID)',
    run: async (args) => {
      const { values, positionals: [n] } = parse(args, {}, 1);
      const pids = await app.registeredPids(n);
      if (values.json) printJson(pids);
      else printTable(['PID', 'VPID'], pids.map((p) => [p.pid, p.vpid]));
    },
  },
];

await cliMain('dre-app', 'application containers (LXC) of the D-RE runtime', commands);

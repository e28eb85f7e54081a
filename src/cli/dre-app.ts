#!/usr/bin/env node
/** `dre-app`: application containers from the shell, a thin user of the LXC driver. */
import { readFileSync } from 'node:fs';
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { cgroupCommands, execCommand, lazy, one, policyCommand, pidOf, snapshotCommands, stateCommands, stopCommand } from './commands.js';
import { transferCommands } from './transfer.js';
import { cliMain, intArg, listRows, parse, printJson, printTable, type Command } from './common.js';

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
    usage: 'NAME [--base BASE] [--port PORT] [--ssh-key PUBKEY_FILE] [--no-network] [--privileged]',
    summary:
      'create an application container (default base: busybox); --port forwards host PORT to its SSH server; ' +
      "--privileged: no user namespace, the container's root is the host's root (unprivileged by default)",
    run: async (args) => {
      const opts = {
        base: { type: 'string' },
        port: { type: 'string' },
        'ssh-key': { type: 'string' },
        'no-network': { type: 'boolean' },
        privileged: { type: 'boolean' },
      } as const;
      const { values, positionals } = parse(args, opts, 1);
      await app.create(positionals[0], {
        base: values.base ?? null,
        port: intArg(values.port, '--port') ?? null,
        network: !values['no-network'],
        sshKey: values['ssh-key'] === undefined ? undefined : readKeyFile(values['ssh-key']),
        privileged: values.privileged === true,
      });
    },
  },
  one('NAME', 'destroy a stopped container and everything it holds', 'destroy', app.destroy),
  one('NAME', 'start a container', 'start', app.start),
  stopCommand(app, 'stop a container: graceful first, forced after the timeout (default 10 s)'),
  one('NAME', 'freeze every process of a running container', 'suspend', app.suspend),
  one('NAME', 'thaw a suspended container', 'resume', app.resume),
  ...stateCommands(state, 'app', "print the host PID of the container's init"),
  {
    name: 'list',
    usage: '[--json]',
    summary: 'list the containers of this D-RE root with their status, base, address and SSH port',
    run: async (args) => {
      const { values } = parse(args, {}, 0);
      const rows = await listRows('dre-app', await state.list(), async (name) => ({ status: statusName(await state.status(name)), ...(await state.info(name)) }));
      if (values.json) printJson(rows);
      else printTable(['NAME', 'STATUS', 'BASE', 'ADDRESS', 'PORT'], rows.map((r) => ('base' in r ? [r.name, r.status, r.base, r.address ?? '-', r.port ?? '-'] : [r.name, r.status, '-', '-', '-'])));
    },
  },
  execCommand(app, 'run a command in a running container; stdin, stdout, stderr and exit status pass through'),
  policyCommand(app, 'none, restart, rollback:TAG, rollback:last-good'),
  ...snapshotCommands(app, {
    snapshot: 'save a snapshot of a stopped container',
    load: 'restore a stopped container from a snapshot',
    commit: 'make a new Base Image from a snapshot',
    checkpoint: 'save the running state of a container (CRIU)',
    restart: 'restart a container from a checkpoint',
  }),
  ...cgroupCommands(
    app,
    { create: "create a control group inside the container's group", bind: 'move a process (host PID, or with --vpid a PID inside the container) into a control group' },
    app,
  ),
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
  {
    name: 'logs',
    usage: 'NAME',
    summary: "print a running container's system log (/var/log/messages, where the default base's syslogd writes DLOG_*)",
    run: async (args) => {
      const { positionals: [n] } = parse(args, {}, 1);
      // Read inside the container, through its own view: the file and every directory above it are the container's to make links of.
      return app.exec(n, ['cat', '/var/log/messages']);
    },
  },
  ...transferCommands,
];

await cliMain('dre-app', 'application containers (LXC) of the D-RE runtime', commands);

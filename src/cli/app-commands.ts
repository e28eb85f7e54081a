/** The commands of `dre-app` (application containers), read by dre-app.ts to run and by scripts/gen-docs to document. */
import { readFileSync } from 'node:fs';
import { statusName } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import {
  cgroupCommands,
  configCommands,
  renameCommand,
  eventsCommands,
  execCommand,
  infoCommand,
  lazy,
  lifecycleCommands,
  logsCommand,
  policyCommand,
  pidOf,
  snapshotCommands,
  topCommand,
} from './commands.js';
import { intArg, listRows } from './common.js';
import type { CliSpec, CommandSpec } from './framework.js';
import { transferCommands } from './transfer.js';

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw dreError('DRE_ERR_INVALID_ARGUMENT', `--ssh-key: cannot read ${path}: ${(e as Error).message}`, e);
  }
}

const app = lazy(() => import('../app/driver.js').then((m) => m.appDriver));
/** Read-only queries load only the state module. */
const state = lazy(() => import('../app/state.js'));

const commands: CommandSpec[] = [
  {
    name: 'create',
    args: 'NAME',
    summary:
      'create an application container (default base: busybox); --port forwards host PORT to its SSH server; ' +
      "--privileged: no user namespace, the container's root is the host's root (unprivileged by default)",
    options: {
      '--base BASE': 'the Base Image (default: the busybox one)',
      '--port PORT': "forward host PORT to the container's SSH server",
      '--ssh-key PUBKEY_FILE': 'authorize this public key for root (default: the host user’s)',
      '--no-network': 'no network at all',
      '--privileged': "no user namespace: the container's root is the host's root",
    },
    run: async ([n], o) => {
      await app.create(n, {
        base: (o.base as string | undefined) ?? null,
        port: intArg(o.port, '--port') ?? null,
        network: !o['no-network'],
        sshKey: o['ssh-key'] === undefined ? undefined : readKeyFile(o['ssh-key'] as string),
        privileged: o.privileged === true,
      });
    },
  },
  ...lifecycleCommands(app, state, 'app', {
    start: 'start a container',
    stop: 'stop a container: graceful first, forced after the timeout (default 10 s)',
    suspend: 'freeze every process of a running container',
    resume: 'thaw a suspended container',
    pid: "print the host PID of the container's init",
  }),
  {
    name: 'list',
    summary: 'list the containers of this D-RE root with their status, base, address and SSH port',
    output: true,
    run: async (_, __, out) => {
      const rows = await listRows('dre-app', await state.list(), async (name) => {
        const { status, ...info } = await state.summary(name);
        return { status: statusName(status), ...info };
      });
      await out.print(rows, {
        columns: [
          ['NAME', (r) => r.name],
          ['STATUS', (r) => r.status],
          ['BASE', (r) => ('base' in r ? r.base : null)],
          ['ADDRESS', (r) => ('address' in r ? r.address : null)],
          ['PORT', (r) => ('port' in r ? r.port : null)],
        ],
      });
    },
  },
  renameCommand(app, 'rename a stopped container (its files, snapshots, logs, address and port go with it)'),
  ...configCommands(
    app,
    'memory SIZE|none (the whole container, e.g. 512M), cpus N|none (CPU time of N CPUs), port PORT|none (stopped only), autostart true|false',
  ),
  infoCommand(app, 'app', (n) => state.info(n)),
  topCommand(app),
  ...eventsCommands('app'),
  execCommand(
    app,
    'dre-app',
    "run a command in a running container; stdin, stdout, stderr and exit status pass through (D-RE's own failures: a 'dre-app:' line on stderr; --dre-status tells them apart)",
  ),
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
    {
      create: "create a control group inside the container's group",
      bind: 'move a process (host PID, or with --vpid a PID inside the container) into a control group',
    },
    app,
  ),
  {
    name: 'register',
    args: 'NAME PID',
    summary: 'put a process under D-Aware control',
    options: { '--vpid': 'PID is as seen inside the container' },
    run: async ([n, p], o) => (o.vpid ? app.registerVpid(n, pidOf(p, 'vpid')) : app.registerPid(n, pidOf(p))),
  },
  {
    name: 'unregister',
    args: 'NAME PID',
    summary: 'take a process out of D-Aware control',
    options: { '--vpid': 'PID is as seen inside the container' },
    run: async ([n, p], o) => (o.vpid ? app.unregisterVpid(n, pidOf(p, 'vpid')) : app.unregisterPid(n, pidOf(p))),
  },
  {
    name: 'registered',
    args: 'NAME',
    summary: 'list the processes under D-Aware control (PID and VPID)',
    output: true,
    run: async ([n], _, out) => {
      const pids = await app.registeredPids(n);
      await out.print(pids, {
        key: (p) => p.pid,
        columns: [
          ['PID', (p) => p.pid],
          ['VPID', (p) => p.vpid],
        ],
      });
    },
  },
  // The syslog is read inside the container, through its own view: the file and every directory above it are the container's to make links of.
  logsCommand(app, { source: 'syslog', path: '/var/log/messages' }),
  ...transferCommands,
];

export const appCli: CliSpec = { prog: 'dre-app', about: 'application containers (LXC) of the D-RE runtime', commands };

/**
 * A D-RE cluster on one machine, for the tests of `dred --cluster` (issue 18): a switch namespace holding one bridge and,
 * each in its own namespace with one veth into that bridge, D-RE hosts h1, h2, h3 (10.252.0.1–.3), a three-member etcd
 * cluster (.21–.23) and D-RE's NFS server (.9). These addresses exist only inside the namespaces: the test process
 * reaches etcd through a child process in one of them. Each host has its own DRE_ROOT/DRE_RUNDIR and TLS directory.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAlive, waitFor } from '../../src/core/proc.js';
import { call, dredPath } from './dred.js';
import { distDir } from './env.js';
import { hostCli, type Host } from './twohosts.js';

export { hostCli, hostCliAsync } from './twohosts.js';

export interface ClusterHost {
  /** 'h1', 'h2', … */
  name: string;
  ns: string;
  /** Its address on the switch. */
  addr: string;
  root: string;
  run: string;
  env: NodeJS.ProcessEnv;
  /** For `dred --listen ADDR:8443 --tls DIR`. */
  tlsDir: string;
  /** dred's stdout and stderr (startDred appends to it). */
  log: string;
}

export interface Cluster {
  hosts: ClusterHost[];
  /** For `dred --cluster`: 'etcd://10.252.0.21:2379,10.252.0.22:2379,10.252.0.23:2379'. */
  etcdUrl: string;
  /** The same members as client URLs (http://…). */
  etcdEndpoints: string[];
  nfsUrl: string;
  /** The export's directory as the NFS server's file system holds it (an independent view of the share). */
  exportDir: string;
  tmp: string;
}

const SUBNET = '10.252.0';
const NFS_ADDR = `${SUBNET}.9`;
const ETCD_MEMBERS = ['e1', 'e2', 'e3'];
const etcdAddr = (i: number) => `${SUBNET}.${21 + i}`;
const tag = process.pid.toString(36);
/** Names carry the pid: what a killed run left never collides with the next run. */
const nsName = (part: string) => `dre-cl-${tag}-${part}`;
const SWITCH_NS = nsName('sw');
/** A member's veth: `dc<tag><part>` in its namespace, `dc<tag>s<part>` in the switch (≤ 15 characters). */
const switchPort = (part: string) => `dc${tag}s${part}`;
const etcd3Module = pathToFileURL(createRequire(import.meta.url).resolve('etcd3')).href;
const sweepScript = join(distDir, 'test', 'support', 'sweep.js');

/** The long-lived processes started here (etcd members, dreds): killed first by tearDownCluster. */
const daemons: number[] = [];
/** Namespaces made by this process, the switch last; and each D-RE host's directory with its namespace, for the sweep. */
let made: { namespaces: string[]; hostDirs: { ns: string; dir: string }[]; etcdNs: string } | undefined;

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr?.trim() || r.error?.message}`);
}

/** Makes namespace `part` with one veth into the switch's bridge, holding `addr`; returns the namespace. */
function attach(part: string, addr: string): string {
  const ns = nsName(part);
  ip('netns', 'add', ns);
  made!.namespaces.unshift(ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  const inside = `dc${tag}${part}`;
  ip('link', 'add', inside, 'netns', ns, 'type', 'veth', 'peer', 'name', switchPort(part), 'netns', SWITCH_NS);
  ip('-n', SWITCH_NS, 'link', 'set', switchPort(part), 'master', `dc${tag}br`, 'up');
  ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', inside);
  ip('-n', ns, 'link', 'set', inside, 'up');
  return ns;
}

/** Runs `node --input-type=module -e script` inside `ns`; resolves with its stdout, rejects with its last line of stderr. */
function nodeIn(ns: string, script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script],
      { env, encoding: 'utf8', timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const last = stderr.trim().split('\n').pop() || (err.killed ? `no answer in ${timeoutMs} ms` : err.message);
        reject(new Error(`node in ${ns}: ${last}`, { cause: { stderr, code: err.code, signal: err.signal } }));
      },
    );
  });
}

/** Polls `attempt` (it throws while not ready) every 200 ms for `timeoutMs`; throws with the last failure. */
async function until(what: string, timeoutMs: number, attempt: () => Promise<void>): Promise<void> {
  let last = '';
  const done = await waitFor(
    () =>
      attempt().then(
        () => true,
        (e: Error) => void (last = e.message),
      ),
    timeoutMs,
    200,
  );
  if (!done) throw new Error(`${what} in ${timeoutMs / 1000} s: ${last}`);
}

/** Starts `cmd args` inside `ns`, detached, output appended to `log`; `ip netns exec` execs it, so the pid is its own. */
function daemonIn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  daemons.push(child.pid!);
  return child;
}

/** Starts the etcd members, each in its own namespace, as one new static cluster. */
function startEtcd(tmp: string): string[] {
  const peers = ETCD_MEMBERS.map((m, i) => `${m}=http://${etcdAddr(i)}:2380`).join(',');
  // A token per run: a member never joins the raft of a cluster an earlier run left behind.
  const token = `dre-cl-${tag}-${randomUUID().slice(0, 8)}`;
  // Only the flags below configure etcd: ETCD_* variables of the caller's environment would too.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  return ETCD_MEMBERS.map((m, i) => {
    const ns = attach(m, etcdAddr(i));
    const dir = join(tmp, `etcd-${tag}`, m);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const [peer, client] = [`http://${etcdAddr(i)}:2380`, `http://${etcdAddr(i)}:2379`];
    daemonIn(
      ns,
      'etcd',
      [
        ...['--name', m, '--data-dir', join(dir, 'data'), '--logger', 'zap', '--log-outputs', 'stderr'],
        ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--listen-client-urls', client, '--advertise-client-urls', client],
        ...['--initial-cluster', peers, '--initial-cluster-state', 'new', '--initial-cluster-token', token],
        ...['--heartbeat-interval', '100', '--election-timeout', '1000'],
      ],
      env,
      join(tmp, `etcd-${tag}`, `${m}.log`),
    );
    return ns;
  });
}

/** Makes the switch, the hosts, the etcd cluster and the NFS server under `tmp`; waits until etcd and the export answer from h1. */
export async function setUpCluster(tmp: string, hostCount = 3): Promise<Cluster> {
  if (made) throw new Error('a cluster is set up already: tearDownCluster first');
  if (!(hostCount >= 1 && hostCount <= 8)) throw new Error(`${hostCount} hosts: give 1 to 8 (.9 is the NFS server's address)`);
  made = { namespaces: [SWITCH_NS], hostDirs: [], etcdNs: '' };
  ip('netns', 'add', SWITCH_NS);
  ip('-n', SWITCH_NS, 'link', 'add', `dc${tag}br`, 'type', 'bridge');
  ip('-n', SWITCH_NS, 'link', 'set', `dc${tag}br`, 'up');

  const etcdEndpoints = ETCD_MEMBERS.map((_, i) => `http://${etcdAddr(i)}:2379`);
  made.etcdNs = startEtcd(tmp)[0];

  const exportDir = join(tmp, `nfs-export-${tag}`);
  mkdirSync(exportDir, { recursive: true, mode: 0o700 });
  // The NFS server host runs D-RE's own nfs-server (ganesha + rpcbind where the kernel has no nfsd), as in twohosts.ts.
  const server: Host = {
    ns: attach('n', NFS_ADDR),
    addr: NFS_ADDR,
    root: join(tmp, `host-${tag}-nfs`, 'root'),
    run: join(tmp, `host-${tag}-nfs`, 'run'),
    env: {},
  };
  server.env = { ...process.env, DRE_ROOT: server.root, DRE_RUNDIR: server.run };
  made.hostDirs.push({ ns: server.ns, dir: join(tmp, `host-${tag}-nfs`) });
  const served = hostCli(server, ['nfs-server', 'start', exportDir], 60_000);
  if (served.code !== 0) throw new Error(`nfs-server start in ${server.ns}: ${served.stderr}`);
  const nfsUrl = `nfs://${NFS_ADDR}${exportDir}`;

  const hosts = Array.from({ length: hostCount }, (_, i): ClusterHost => {
    const name = `h${i + 1}`;
    const dir = join(tmp, `host-${tag}-${name}`);
    const [root, run] = [join(dir, 'root'), join(dir, 'run')];
    // A fresh root per host: another test's root in the same place would bring its network and containers.
    if (existsSync(root)) throw new Error(`${root} exists already: another test file made a root there`);
    mkdirSync(join(root, 'sys'), { recursive: true });
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir, { mode: 0o700 });
    const ns = attach(name, `${SUBNET}.${i + 1}`);
    made!.hostDirs.push({ ns, dir });
    const env = { ...process.env, DRE_ROOT: root, DRE_RUNDIR: run, DRE_SYS_ACCEL: 'tcg', DRE_SYS_NFS: nfsUrl };
    return { name, ns, addr: `${SUBNET}.${i + 1}`, root, run, env, tlsDir, log: join(dir, 'dred.log') };
  });
  // The other hosts read h1's Base Images (read-only files): one build of the default base serves them all.
  mkdirSync(join(hosts[0].root, 'sys', 'bases'), { recursive: true });
  for (const h of hosts.slice(1)) symlinkSync(join(hosts[0].root, 'sys', 'bases'), join(h.root, 'sys', 'bases'));

  const c: Cluster = { hosts, etcdUrl: `etcd://${etcdEndpoints.map((e) => e.slice('http://'.length)).join(',')}`, etcdEndpoints, nfsUrl, exportDir, tmp };
  const [h1] = hosts;
  // Ready when a write from h1 reaches the export over the switch, and etcd has a leader that commits h1's put.
  await until(`the NFS server in ${server.ns} took no writes`, 20_000, () => nfsWrite(c, h1, '.probe', 'x'));
  rmSync(join(exportDir, '.probe'));
  const ready = `/dre-test/ready/${randomUUID()}`;
  const key = JSON.stringify(ready);
  await until('etcd had no leader that committed a put', 20_000, async () => {
    await etcdEval(c, `await client.put(${key}).value('1'); await client.get(${key}).string(); await client.delete().key(${key});`, { from: h1 });
  });
  return c;
}

/** Where an etcd call runs (by default in an etcd member's namespace) and how long it may take. */
export interface EtcdCall {
  from?: ClusterHost;
  timeoutMs?: number;
}

/**
 * Evaluates `body` (the body of an async function: `client` is an Etcd3 on all members, `Etcd3` the class) in a child
 * process inside `from`'s namespace, by default an etcd member's; resolves with its JSON result. Fails after `timeoutMs`
 * (default 4 s): the client's own retries across members would take longer to give up on a partitioned host.
 */
export async function etcdEval<T>(c: Cluster, body: string, opts: EtcdCall = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 4000;
  const options = { hosts: c.etcdEndpoints, dialTimeout: 2000 };
  const script = [
    `const { Etcd3 } = await import('${etcd3Module}');`,
    `const client = new Etcd3(${JSON.stringify(options)});`,
    `setTimeout(() => { process.stderr.write('etcd: no answer in ${timeoutMs} ms\\n'); process.exit(3); }, ${timeoutMs}).unref();`,
    `try { const result = await (async () => { ${body} })(); process.stdout.write(JSON.stringify(result ?? null)); }`,
    `catch (e) { process.stderr.write('etcd: ' + e.message + '\\n'); process.exitCode = 1; }`,
    'finally { client.close(); }',
  ].join('\n');
  // The process's own limit is the timer above; this one only catches a child that hangs before it is set.
  return JSON.parse(await nodeIn(opts.from?.ns ?? made!.etcdNs, script, process.env, timeoutMs + 10_000)) as T;
}

/** The keys under `prefix` with their values and modification revisions, read from `from`'s namespace (by default an etcd member's). */
export function etcdGet(c: Cluster, prefix: string, opts: EtcdCall = {}): Promise<{ key: string; value: string; modRevision: number }[]> {
  return etcdEval(
    c,
    `const r = await client.getAll().prefix(${JSON.stringify(prefix)}).exec();
     return r.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) }));`,
    opts,
  );
}

/** Puts `key` = `value` from `from`'s namespace (by default an etcd member's). */
export async function etcdPut(c: Cluster, key: string, value: string, opts: EtcdCall = {}): Promise<void> {
  await etcdEval(c, `await client.put(${JSON.stringify(key)}).value(${JSON.stringify(value)});`, opts);
}

/** Writes `file` (a name in the export) over NFS from `h`'s namespace, as D-RE's own NFS client does. */
export async function nfsWrite(c: Cluster, h: ClusterHost, file: string, text: string): Promise<void> {
  const nfs = pathToFileURL(join(distDir, 'src', 'sys', 'nfs.js')).href;
  const args = JSON.stringify([file, text]);
  const script = `const { withNfs, parseNfsUrl } = await import('${nfs}'); withNfs(parseNfsUrl('${c.nfsUrl}', 'test'), 'test', (n) => n.writeText(...${args}));`;
  await nodeIn(h.ns, script, process.env, 15_000);
}

/** Partitions `h`: its port on the switch goes down, so it reaches nothing (not etcd, not NFS, not the other hosts). */
export function cut(_c: Cluster, h: ClusterHost): void {
  ip('-n', SWITCH_NS, 'link', 'set', switchPort(h.name), 'down');
}

/** Ends the partition of `h` (the bridge runs no STP: the port forwards at once). */
export function heal(_c: Cluster, h: ClusterHost): void {
  ip('-n', SWITCH_NS, 'link', 'set', switchPort(h.name), 'up');
}

/**
 * Starts `dred args` as host `h` (in its namespace, with its environment), detached, its output appended to `h.log`;
 * waits until GET /1.0 answers 200 on its socket and returns dred's own pid. Killed by tearDownCluster.
 */
export async function startDred(h: ClusterHost, args: string[]): Promise<number> {
  const child = daemonIn(h.ns, process.execPath, [dredPath, ...args], h.env, h.log);
  const pid = child.pid!;
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = `exited ${code ?? sig}`));
  const socket = join(h.run, 'dred.sock');
  const answered = await waitFor(async () => {
    if (exited) return false;
    if (!existsSync(socket)) return undefined;
    return (await call('GET', '/1.0', undefined, { socket, timeoutMs: 2000 }).catch(() => undefined))?.status === 200 || undefined;
  }, 20_000);
  const tail = () => readFileSync(h.log, 'utf8').trim().split('\n').slice(-20).join('\n');
  if (!answered) {
    signalDred(pid, 'SIGKILL');
    throw new Error(`dred in ${h.ns} ${exited ?? 'did not answer on its socket in 20 s'}:\n${tail()}`);
  }
  if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dredPath)) throw new Error(`pid ${pid} is not dred: ${tail()}`);
  return pid;
}

export function signalDred(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** The pids inside namespace `ns` (none once it is gone). */
function pidsIn(ns: string): number[] {
  const out = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  return out.split('\n').filter(Boolean).map(Number);
}

/**
 * Kills the dreds and etcd members, sweeps each D-RE host's directory inside its namespace (its QEMUs and containers, cgroups,
 * id reservation), kills whatever else is in a namespace and removes the namespaces; never throws.
 */
export function tearDownCluster(): void {
  const killed = [...daemons.splice(0)];
  for (const pid of killed) signalDred(pid, 'SIGKILL');
  // Inside the namespace: LXC's command sockets are abstract, so only there does lxc-stop reach a container's monitor.
  for (const { ns, dir } of made?.hostDirs ?? [])
    spawnSync('ip', ['netns', 'exec', ns, process.execPath, sweepScript, dir], { stdio: 'ignore', timeout: 60_000 });
  for (const ns of made?.namespaces ?? []) {
    for (const pid of pidsIn(ns)) {
      signalDred(pid, 'SIGKILL');
      killed.push(pid);
    }
  }
  // Bounded wait until each is gone or a zombie (this process reaps its children later): no etcd outlives the teardown.
  for (let i = 0; i < 300 && killed.some(isAlive); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  for (const ns of made?.namespaces ?? []) spawnSync('ip', ['netns', 'del', ns]);
  made = undefined;
}

process.on('exit', tearDownCluster);

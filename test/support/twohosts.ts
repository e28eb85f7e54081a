/**
 * Two D-RE hosts and an NFS server on one machine, for migration tests and benches: network
 * namespaces A and B joined by a veth pair (10.251.1.1 / .2), and an NFS server started by
 * `dre-sys nfs-server` (nfs-ganesha, VFS backend, with rpcbind) in a third namespace N at 10.251.9.1, reached from A and B over their own veth pairs.
 * These private addresses exist only inside the namespaces. Each host has its own DRE_ROOT/DRE_RUNDIR.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../src/core/proc.js';
import { cli, cliAsync, cliPath, type CliResult } from './env.js';

export interface Host {
  ns: string;
  /** Its address on the A–B link. */
  addr: string;
  root: string;
  run: string;
  env: NodeJS.ProcessEnv;
}

export interface TwoHosts {
  a: Host;
  b: Host;
  /** The NFS server host (D-RE's nfs-server runs there). */
  server: Host;
  nfsNs: string;
  /** The export's directory as the NFS server's file system holds it (an independent view of the share). */
  exportDir: string;
  nfsUrl: string;
}

const NFS_ADDR = '10.251.9.1';
const daemons: number[] = [];
let made: { namespaces: string[] } | undefined;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

/** Runs dre-sys as host `h` (inside its namespace, with its environment). */
export function hostCli(h: Host, args: string[], timeoutMs = 240_000): CliResult {
  return cli('dre-sys', args, { wrap: ['ip', 'netns', 'exec', h.ns], env: h.env, timeoutMs });
}

/** Starts dre-sys as host `h` without waiting (for kills half-way). */
export function hostCliAsync(h: Host, args: string[]): { pid: number; done: Promise<CliResult> } {
  const { child, done } = cliAsync('dre-sys', args, { wrap: ['ip', 'netns', 'exec', h.ns], env: h.env });
  return { pid: child.pid!, done };
}

/** Starts a long-lived process inside namespace `ns`; it is killed by tearDown. */
export function daemonIn(ns: string, cmd: string, args: string[]): number {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'ignore', detached: true });
  child.unref();
  daemons.push(child.pid!);
  return child.pid!;
}

/** Makes the three namespaces, the links and the NFS server, under `tmp`; waits until the export takes writes. */
export async function setUpTwoHosts(tmp: string): Promise<TwoHosts> {
  const tag = process.pid.toString(36);
  const nsA = `dre-mig-${tag}-a`;
  const nsB = `dre-mig-${tag}-b`;
  const nsN = `dre-mig-${tag}-n`;
  made = { namespaces: [nsA, nsB, nsN] };
  for (const ns of made.namespaces) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  const link = (ns1: string, if1: string, addr1: string, ns2: string, if2: string, addr2: string) => {
    ip('link', 'add', if1, 'netns', ns1, 'type', 'veth', 'peer', 'name', if2, 'netns', ns2);
    ip('-n', ns1, 'addr', 'add', addr1, 'dev', if1);
    ip('-n', ns2, 'addr', 'add', addr2, 'dev', if2);
    ip('-n', ns1, 'link', 'set', if1, 'up');
    ip('-n', ns2, 'link', 'set', if2, 'up');
  };
  link(nsA, `dm${tag}ab`, '10.251.1.1/24', nsB, `dm${tag}ba`, '10.251.1.2/24');
  link(nsA, `dm${tag}an`, '10.251.2.1/24', nsN, `dm${tag}na`, '10.251.2.2/24');
  link(nsB, `dm${tag}bn`, '10.251.3.1/24', nsN, `dm${tag}nb`, '10.251.3.2/24');
  ip('-n', nsN, 'addr', 'add', `${NFS_ADDR}/32`, 'dev', 'lo');
  ip('-n', nsA, 'route', 'add', `${NFS_ADDR}/32`, 'via', '10.251.2.2');
  ip('-n', nsB, 'route', 'add', `${NFS_ADDR}/32`, 'via', '10.251.3.2');

  const exportDir = join(tmp, 'nfs-export');
  mkdirSync(exportDir, { recursive: true, mode: 0o700 });
  // The NFS server host runs D-RE's own nfs-server (ganesha + rpcbind here, as this kernel has no nfsd).
  const server: Host = { ns: nsN, addr: NFS_ADDR, root: join(tmp, 'hostN', 'root'), run: join(tmp, 'hostN', 'run'), env: {} };
  server.env = { ...process.env, DRE_ROOT: server.root, DRE_RUNDIR: server.run };
  const served = hostCli(server, ['nfs-server', 'start', exportDir], 60_000);
  if (served.code !== 0) throw new Error(`nfs-server start in ${nsN}: ${served.stderr}`);
  const nfsUrl = `nfs://${NFS_ADDR}${exportDir}`;

  const host = (ns: string, name: string, addr: string): Host => {
    const root = join(tmp, name, 'root');
    const run = join(tmp, name, 'run');
    // A fresh root per host: another test's root in the same place would bring its network and containers.
    if (existsSync(root)) throw new Error(`${root} exists already: another test file made a root there`);
    mkdirSync(join(root, 'sys'), { recursive: true });
    return { ns, addr, root, run, env: { ...process.env, DRE_ROOT: root, DRE_RUNDIR: run, DRE_SYS_ACCEL: 'tcg', DRE_SYS_NFS: nfsUrl } };
  };
  const a = host(nsA, 'hostA', '10.251.1.1');
  const b = host(nsB, 'hostB', '10.251.1.2');
  // B reads A's Base Images (read-only files): one build of the default base serves both hosts.
  mkdirSync(join(a.root, 'sys', 'bases'), { recursive: true });
  symlinkSync(join(a.root, 'sys', 'bases'), join(b.root, 'sys', 'bases'));

  // Ready when a write from host A reaches the export over the veth pair.
  const probe = `import('${join(cliPath('dre-sys'), '..', '..', 'sys', 'nfs.js')}').then(({ withNfs, parseNfsUrl }) => withNfs(parseNfsUrl('${nfsUrl}', 'probe'), 'probe', (c) => { c.writeText('.probe', 'x'); c.remove('.probe'); }))`;
  let last = '';
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('ip', ['netns', 'exec', nsA, process.execPath, '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 15_000 });
    if (r.status === 0) return { a, b, server, nfsNs: nsN, exportDir, nfsUrl };
    last = r.stderr;
    await sleep(200);
  }
  throw new Error(`the NFS server in ${nsN} did not take writes: ${last}`);
}

/** Kills the daemons and QEMUs of both hosts and removes the namespaces; never throws. */
export function tearDownTwoHosts(): void {
  for (const pid of daemons.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of made?.namespaces ?? []) {
    // Anything still inside (a QEMU left by a failed test) dies with its namespace's last user.
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
  made = undefined;
}

process.on('exit', tearDownTwoHosts);

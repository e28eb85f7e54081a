/**
 * Removes whatever a test run left under its temporary root, even after failures: running LXC
 * containers, QEMU processes, their cgroups, mounts below the root (each container's D-Aware registry
 * tmpfs among them). Also a script: `node sweep.js TMPDIR`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts, removeGroupTree } from '../../src/core/cgroup.js';
import { mountTable } from '../../src/core/mounts.js';
import { cgroupRoot } from '../../src/core/paths.js';
import { isAlive } from '../../src/core/proc.js';
import { readJson, writeJsonAtomic } from '../../src/core/store.js';
import { releaseReservation } from '../../src/app/userns.js';
import { portTable } from '../../src/app/portforward.js';

/** Every bridge a test run makes starts with this, so the sweep never touches a user's bridge. */
export const TEST_BRIDGE_PREFIX = 'drt';

/**
 * Gives the run's root its own bridge and subnet (derived from the run's directory), so tests never
 * use the default bridge of a real D-RE root.
 */
export function useTestNetwork(tmp: string): void {
  const path = join(tmp, 'root', 'app', 'network.json');
  if (existsSync(path)) return;
  const h = createHash('sha256').update(tmp).digest();
  writeJsonAtomic(path, { bridge: `${TEST_BRIDGE_PREFIX}${h.toString('hex').slice(0, 6)}`, subnet: `10.${240 + (h[2] % 14)}.${h[3]}.0/24` });
}

/** Removes the run's port forwards (its nftables table), bridge and any veth or tap left on it. */
export function sweepNetwork(tmp: string): void {
  removeNetwork(join(tmp, 'root'));
}

/** Kills every dred of a root below `tmp` (one scan of /proc). */
function killRunProcesses(tmp: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const daemon =
        argv[1]?.endsWith('/dred.js') &&
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .some((v) => v.startsWith(`DRE_RUNDIR=${tmp}/`));
      if (daemon) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Removes D-RE root `root`'s nftables table, and its bridge with any veth (`<bridge>-N`) or VM tap
 * (`<bridge>-tN`: not persistent, so only one whose QEMU is still alive) when it is a test bridge.
 */
function removeNetwork(root: string): void {
  quiet('nft', ['delete', 'table', 'inet', portTable(root)]);
  const bridge = readJson<{ bridge?: string }>(join(root, 'app', 'network.json'))?.bridge;
  if (!bridge?.startsWith(TEST_BRIDGE_PREFIX)) return;
  for (const link of readdirSync('/sys/class/net')) {
    if (link === bridge || link.startsWith(`${bridge}-`)) quiet('ip', ['link', 'del', 'dev', link]);
  }
}

function quiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
  } catch {
    /* best effort */
  }
}

/** Kills every QEMU whose pid file lies under the run's run dir (verified by its command line). */
function killQemus(tmp: string): void {
  const sysRun = join(tmp, 'run', 'sys');
  if (!existsSync(sysRun)) return;
  for (const name of readdirSync(sysRun)) {
    const pidFile = join(sysRun, name, 'qemu.pid');
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`\0${pidFile}\0`)) continue;
      process.kill(pid, 'SIGKILL');
      // Wait (bounded) until it is gone or a zombie, so its cgroups can be removed below.
      for (let i = 0; i < 200 && isAlive(pid); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    } catch {
      /* no pid file, or the process is gone */
    }
  }
}

export function sweep(tmp: string): void {
  // Extra D-RE hosts of a test (migration: tmp/hostA, tmp/hostB, each with root/ and run/).
  const hosts = existsSync(tmp)
    ? readdirSync(tmp)
        .filter((d) => d.startsWith('host'))
        .map((d) => join(tmp, d))
    : [];
  const dirs = [...hosts, tmp];
  killRunProcesses(tmp); // daemons first: none may start anything while the engines are stopped
  for (const dir of dirs) stopEngines(dir);
  // Mounts of every host lie below tmp: one scan covers them all.
  unmountBelow(tmp);
  // Every root the run made (root/, and others such as other-root/ of a test): its network, cgroups and id reservation.
  for (const root of rootsBelow(dirs)) {
    removeNetwork(root);
    removeGroups(root);
    releaseReservation(root);
  }
}

/** The D-RE roots directly in `dirs`: directories holding an app/ or sys/ state tree. */
function rootsBelow(dirs: string[]): string[] {
  const roots = new Set(dirs.map((d) => join(d, 'root')));
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const e of readdirSync(d)) if (existsSync(join(d, e, 'app')) || existsSync(join(d, e, 'sys'))) roots.add(join(d, e));
  }
  return [...roots];
}

/** Kills the QEMUs and stops the LXC containers of the D-RE host whose root and run dirs are in `dir`. */
function stopEngines(dir: string): void {
  killQemus(dir);
  for (const root of rootsBelow([dir])) {
    const lxcpath = join(root, 'app', 'containers');
    if (existsSync(lxcpath)) {
      for (const name of readdirSync(lxcpath)) quiet('lxc-stop', ['-n', name, '-P', lxcpath, '-k']);
    }
  }
}

/** Unmounts every mount below `tmp`, deepest first. */
/** What a reboot does to a run dir: every mount below it gone, then its files (never rm -rf before unmounting). */
export function wipeRunDir(runDir: string): void {
  unmountBelow(runDir);
  rmSync(runDir, { recursive: true, force: true });
}

function unmountBelow(tmp: string): void {
  const mounts = mountTable()
    .map((m) => m.at)
    .filter((m) => m === tmp || m.startsWith(tmp + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) quiet('umount', ['-l', m]);
}

/** Removes the cgroups of D-RE root `root` in every hierarchy, and the shared top once no root uses it. */
function removeGroups(root: string): void {
  for (const mount of allHierarchyMounts()) {
    removeGroupTree(join(mount, cgroupRoot(root)));
    try {
      rmdirSync(join(mount, 'dre'));
    } catch {
      /* another root's groups are in it, or it is gone */
    }
  }
}

if (process.argv[1]?.endsWith('sweep.js') && process.argv[2]) sweep(process.argv[2]);

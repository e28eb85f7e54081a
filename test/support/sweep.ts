/**
 * Removes whatever a test run left under its temporary root, even after failures: running LXC
 * containers, their cgroups, mounts below the root. Also a script: `node sweep.js TMPDIR`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { allHierarchyMounts } from '../../src/core/cgroup.js';
import { cgroupRoot } from '../../src/core/paths.js';

function quiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
  } catch {
    /* best effort */
  }
}

function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    /* busy */
  }
}

export function sweep(tmp: string): void {
  const root = join(tmp, 'root');
  const lxcpath = join(root, 'app', 'containers');
  if (existsSync(lxcpath)) {
    for (const name of readdirSync(lxcpath)) quiet('lxc-stop', ['-n', name, '-P', lxcpath, '-k']);
  }
  // Mounts below the temporary directory, deepest first.
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m && (m === tmp || m.startsWith(tmp + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) quiet('umount', ['-l', m]);
  process.env.DRE_ROOT = root;
  for (const mount of allHierarchyMounts()) removeTree(join(mount, cgroupRoot()));
}

if (process.argv[1]?.endsWith('sweep.js') && process.argv[2]) sweep(process.argv[2]);

/** Shared by the sys tests: software emulation on, a shell command in a guest, and clean-up of guests. */
import '../support/env.js';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { STATUS } from '../../src/core/driver.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { qemuPid } from '../../src/sys/state.js';

// These hosts have no usable KVM (see ENGINE-FACTS.md): every sys test runs under TCG unless it says otherwise.
process.env.DRE_SYS_ACCEL = 'tcg';
// QEMU runs as dre-qemu, which must pass this run's private directory (mkdtemp makes it 0700) to reach DRE_ROOT and DRE_RUNDIR.
if (process.env.DRE_TEST_TMP) chmodSync(process.env.DRE_TEST_TMP, 0o711);

/** Fails (never skips) when QEMU is missing: the sys tests need the real engine. */
export function requireQemu(): void {
  for (const tool of ['qemu-system-x86_64', 'qemu-img', 'mkfs.ext4']) execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
}

let ids: { uid: number; gid: number } | undefined;

/** The dre-qemu user's uid and gid, from `id` (not from D-RE's own lookup), asked once per test process. */
export function qemuIds(): { uid: number; gid: number } {
  ids ??= {
    uid: Number(execFileSync('id', ['-u', 'dre-qemu'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'dre-qemu'], { encoding: 'utf8' }).trim()),
  };
  return ids;
}

/** Runs a shell command in the guest; resolves to its trimmed stdout (throws on a non-zero status). */
export async function sh(name: string, command: string): Promise<string> {
  const r = await sys.execCapture(name, ['sh', '-c', command], 60_000);
  if (r.status !== 0) throw new Error(`guest ${name}: ${command}: exit ${r.status}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

/** Ends a guest whatever its state and removes it; never throws (for `after`). */
export async function removeGuest(name: string): Promise<void> {
  const pid = qemuPid(name);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 200 && qemuPid(name) !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
  try {
    if (sys.exists(name) && (await sys.status(name)) === STATUS.STOP) await sys.destroy(name);
  } catch {
    /* the sweep at exit removes what is left */
  }
}

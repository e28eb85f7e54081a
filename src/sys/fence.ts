/**
 * Self-fencing of a host in a cluster: before its etcd lease can lapse (and another host take its
 * shared containers over), a host that cannot renew it kills its own guests of shared containers.
 * Run by the daemon (src/daemon/cluster.ts) and by its watchdog process, the last resort when the
 * daemon itself is stopped or killed (src/daemon/watchdog.ts).
 */
import { record } from '../core/journal.js';
import { containersDir } from '../core/paths.js';
import { listEntries } from '../core/store.js';
import { isShared } from './lease.js';
import { qemuPid } from './state.js';

/** SIGKILLs the QEMU of every shared container running here; returns their names. */
export function killSharedGuests(reason: string): string[] {
  const killed: string[] = [];
  for (const n of listEntries(containersDir('sys'))) {
    if (!isShared(n)) continue;
    const pid = qemuPid(n);
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      continue; // gone meanwhile
    }
    killed.push(n);
    record('sys', n, 'fenced', { reason, qemuPid: pid });
  }
  return killed;
}

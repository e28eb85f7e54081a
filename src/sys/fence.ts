/**
 * What a host in a cluster does to its own guests of shared containers. Self-fencing: before its etcd
 * lease can lapse (and another host take them over), a host that cannot renew it kills them; run by
 * the daemon's lease keeper (src/daemon/lease-keeper.ts) and by its watchdog process, the last resort
 * when the daemon itself is stopped or killed (src/daemon/watchdog.ts). And a guest that ended by
 * itself gives its ownership up, so that the container is not held by a host that runs nothing.
 */
import { withLock } from '../core/lock.js';
import { readJournal, record, type EventType } from '../core/journal.js';
import { containersDir } from '../core/paths.js';
import { listEntries } from '../core/store.js';
import { isShared, releaseLease } from './lease.js';
import { launching, qemuPid } from './state.js';

/** SIGKILLs the QEMU of every shared container running here; returns their names. */
export function killSharedGuests(reason: string): string[] {
  const killed: string[] = [];
  for (const n of listEntries(containersDir('sys'))) {
    if (!isShared(n)) continue;
    const pid = qemuPid(n);
    if (pid === undefined) continue;
    // Recorded first: the supervisor reads it before it sees the death, and does not recover from it here.
    record('sys', n, 'fenced', { reason, qemuPid: pid });
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      continue; // gone meanwhile
    }
    killed.push(n);
  }
  return killed;
}

/**
 * A shared container this host owns whose QEMU ended without a stop (crashed, killed by hand): its
 * ownership is given up as a stop's would be (its own policy restarts it here if it says so; a host
 * loss is another matter, and fails over). Skipped while any operation holds the container.
 */
export async function releaseIfEnded(n: string): Promise<boolean> {
  if (qemuPid(n) !== undefined || launching.has(n)) return false;
  try {
    return await withLock('sys', n, 'release the ownership of', async () => {
      if (qemuPid(n) !== undefined || launching.has(n)) return false;
      // A guest this host's fencing killed did not end by itself: it should still run (elsewhere).
      await releaseLease(n, { stopped: !killedByFencing(n) });
      return true;
    });
  } catch {
    return false; // an operation holds it (a start in progress): looked at again next round
  }
}

/** Whether the last thing that happened to `n`'s guest here was this host's fencing. */
function killedByFencing(n: string): boolean {
  const life = readJournal().filter((e) => e.kind === 'sys' && e.name === n && LIFE.has(e.type));
  return life.at(-1)?.type === 'fenced';
}

/** The events that begin or end a guest's life ('died' follows a fencing, and says nothing of why). */
const LIFE = new Set<EventType>(['started', 'restarted', 'immigrating', 'appeared', 'stopped', 'migrated', 'fenced']);

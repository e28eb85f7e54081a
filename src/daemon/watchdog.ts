/**
 * dred's watchdog in a cluster, a process of its own (src/daemon/cluster.ts starts it): when the
 * deadline the daemon writes at each renewal of its lease passes (the daemon was stopped, killed or
 * hung), it kills the host's shared guests before etcd can give them to another host. One per root;
 * it ends when the daemon left the cluster, or when the daemon is gone and its guests were fenced.
 */
import { join } from 'node:path';
import { holdForLife } from '../core/lock.js';
import { runRoot } from '../core/paths.js';
import { isAlive, sleep } from '../core/proc.js';
import { clusterConfig, monotonicMs, readDeadline } from '../cluster/config.js';
import { killSharedGuests } from '../sys/fence.js';

const POLL_MS = 100;

async function main(): Promise<void> {
  if (!holdForLife(join(runRoot(), 'cluster', 'watchdog.lock'))) return; // another watchdog serves this root (a restarted daemon's)
  for (;;) {
    const cfg = clusterConfig();
    if (!cfg) return; // the daemon left the cluster
    const deadline = readDeadline();
    if (deadline !== undefined && monotonicMs() > deadline) {
      const killed = killSharedGuests('this host lost the cluster: the daemon did not renew its lease in time (stopped, killed, hung or cut off)');
      if (killed.length) process.stderr.write(`dred watchdog: fenced ${killed.join(', ')}\n`);
      if (!isAlive(cfg.daemonPid)) return;
    }
    await sleep(POLL_MS);
  }
}

main().catch((e) => {
  process.stderr.write(`dred watchdog: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});

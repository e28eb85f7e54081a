/**
 * Control Groups of system containers: the core's operations (cgroupops.ts) on the host group around
 * the container's QEMU process and its threads (QEMU lives in the group itself, not in a leaf).
 */
import { STATUS } from '../core/driver.js';
import { ControlGroups } from '../core/controlgroups.js';
import { cgroupOperations } from '../core/cgroupops.js';
import { containerCgroup } from './layout.js';
import { changing } from './lifecycle.js';
import { refuseUnless, requireContainer } from './state.js';

export const { createCgroup, destroyCgroup, bindPid, unbindPid, setResource, unsetResource, setLimit, unsetLimit, getResource, limits, usage } =
  cgroupOperations({
    groups: (n) => new ControlGroups({ owner: `system container ${n}`, group: containerCgroup(n), procsLeaf: containerCgroup(n) }),
    changing: (what, name, fn) => changing(what, name, (n) => fn(n)),
    requireContainer,
    // A suspended VM's QEMU still exists: its groups and limits may change.
    requireLive: (n, what) => refuseUnless(n, what, [STATUS.RUNNING, STATUS.SUSPENDED]),
  });

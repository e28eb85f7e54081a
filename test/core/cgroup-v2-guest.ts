/**
 * Runs inside a throw-away VM whose only cgroup tree is v2 with cpu, cpuset and memory on it (see
 * cgroup-v2.test.ts): drives the v2 limit paths of ControlGroups for real and prints what the
 * kernel's own files and /proc say, as one JSON line for the host to check.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hierarchies, placeProcess } from '../../src/core/cgroup.js';
import { ControlGroups } from '../../src/core/controlgroups.js';
import { RESOURCE } from '../../src/core/driver.js';

const MiB = 1024 * 1024;
const out: Record<string, unknown> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

async function main(): Promise<void> {
  const v2 = hierarchies().find((h) => h.version === 2)!;
  const file = (rel: string, f: string) => readFileSync(join(v2.mount, rel, f), 'utf8').trim();
  out.hierarchies = hierarchies().map((h) => `${h.version}:${h.mount}:${h.controllers.join(',')}`);
  const group = 'dre/guest/sys/vm';
  const leaf = `${group}/ns`;
  const g = `${group}/g`;
  const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  try {
    placeProcess(leaf, busy.pid!);
    const cgs = new ControlGroups({ owner: 'guest vm', group, procsLeaf: leaf });
    cgs.create('g');
    out.subtreeControl = file(group, 'cgroup.subtree_control');

    cgs.set('g', { type: RESOURCE.CPU, percent: 20 });
    out.cpuMax = file(g, 'cpu.max');
    cgs.bind('g', busy.pid!);
    out.busyGroup = readFileSync(`/proc/${busy.pid}/cgroup`, 'utf8').trim();
    await sleep(300);
    const seen: number[] = [];
    // The VM's vCPUs share a busy host: a starved window measures low, never high; up to five windows.
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const c0 = cpuNs(busy.pid!);
      await sleep(2000);
      seen.push(((cpuNs(busy.pid!) - c0) / Number(process.hrtime.bigint() - t0)) * 100);
      if (seen[i] >= 15 && seen[i] <= 25) break;
    }
    out.cpuPercent = seen;
    out.getCpu = (await cgs.get(busy.pid!, RESOURCE.CPU)).percent;
    cgs.unset('g', { type: RESOURCE.CPU });
    out.cpuMaxUnset = file(g, 'cpu.max');

    cgs.set('g', { type: RESOURCE.CPU_CORE, cores: '0' });
    out.cpusetCpus = file(g, 'cpuset.cpus');
    await sleep(100);
    out.cpusAllowed = /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync(`/proc/${busy.pid}/status`, 'utf8'))?.[1];
    out.getCores = (await cgs.get(busy.pid!, RESOURCE.CPU_CORE)).cores;
    cgs.unset('g', { type: RESOURCE.CPU_CORE });
    out.cpusetUnset = [file(g, 'cpuset.cpus'), file(g, 'cpuset.cpus.effective')];

    cgs.set('g', { type: RESOURCE.MEMORY, bytes: 24 * MiB });
    out.memoryMax = file(g, 'memory.max');
    cgs.set('g', { type: RESOURCE.MEMSW, bytes: 48 * MiB });
    out.swapMax = file(g, 'memory.swap.max');
    try {
      cgs.set('g', { type: RESOURCE.MEMORY, bytes: 64 * MiB });
    } catch (e) {
      out.memoryAboveMemsw = (e as { errName?: string }).errName;
    }
    out.getMemory = [(await cgs.get(busy.pid!, RESOURCE.MEMORY)).bytes, Number(file(g, 'memory.current'))];
    out.getMemsw = [(await cgs.get(busy.pid!, RESOURCE.MEMSW)).bytes, Number(file(g, 'memory.current')) + Number(file(g, 'memory.swap.current'))];

    // A process that touches 96 MiB in the 24 MiB group (no swap in this VM): the kernel kills it.
    const hog = spawn('sh', ['-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; head -c 100663296 /dev/zero | tail > /dev/null; echo $? > /tmp/oom'], {
      stdio: 'ignore',
    });
    placeProcess(leaf, hog.pid!);
    cgs.bind('g', hog.pid!);
    spawn('touch', ['/tmp/go']);
    for (let i = 0; i < 600 && !existsSync('/tmp/oom'); i++) await sleep(100);
    await sleep(100);
    out.oomStatus = existsSync('/tmp/oom') ? readFileSync('/tmp/oom', 'utf8').trim() : 'no result';
    out.memoryEvents = file(g, 'memory.events');
    hog.kill('SIGKILL');

    cgs.unset('g', { type: RESOURCE.MEMORY });
    out.memoryUnset = [file(g, 'memory.max'), file(g, 'memory.swap.max')];
    cgs.destroy('g');
    out.destroyed = !existsSync(join(v2.mount, g));
    out.busyBack = readFileSync(`/proc/${busy.pid}/cgroup`, 'utf8').trim();
  } finally {
    busy.kill('SIGKILL');
  }
}

// `node --test dist/test/` loads every file under test/: on the host this file must do nothing.
if (process.env.DRE_V2_GUEST === '1') {
  try {
    await main();
  } catch (e) {
    out.error = (e as Error).stack ?? String(e);
  }
  console.log(`DRE-V2-RESULT ${JSON.stringify(out)}`);
}

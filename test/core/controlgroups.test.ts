import '../support/env.js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { controllers, hierarchies, placeProcess, removeGroupTree } from '../../src/core/cgroup.js';
import { ControlGroups } from '../../src/core/controlgroups.js';
import { RESOURCE } from '../../src/core/driver.js';
import { containerGroup } from '../../src/core/paths.js';
import { uniqueName } from '../support/env.js';

const MiB = 1024 * 1024;
const file = (controller: string, rel: string, f: string) => readFileSync(join(controllers().get(controller)!.mount, rel, f), 'utf8').trim();
const groupsOf = (pid: number) =>
  new Set(
    readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(':')[2]),
  );

describe('control groups around a process no container engine placed (as a system container’s QEMU)', () => {
  const group = containerGroup('sys', uniqueName('vm'));
  const leaf = `${group}/ns`;
  let child: ChildProcess;
  let cgs: ControlGroups;

  before(() => {
    child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    placeProcess(leaf, child.pid!);
    cgs = new ControlGroups({ owner: 'system container vm', group, procsLeaf: leaf });
  });
  after(() => {
    child.kill('SIGKILL');
    for (const h of hierarchies()) removeGroupTree(join(h.mount, group));
  });

  it('places the process in its own group in every hierarchy', () => {
    assert.deepEqual(groupsOf(child.pid!), new Set([`/${leaf}`]));
    assert.ok(cgs.holds(child.pid!));
    assert.ok(!cgs.holds(process.pid));
    assert.deepEqual(cgs.processes(), [child.pid]);
  });

  it('binds it to a limited group and back, with the same calls as an application container', async () => {
    cgs.create('limited');
    cgs.set('limited', { type: RESOURCE.MEMORY, bytes: 64 * MiB });
    cgs.set('limited', { type: RESOURCE.CPU, percent: 50 });
    cgs.set('limited', { type: RESOURCE.CPU_CORE, cores: '0' });
    cgs.bind('limited', child.pid!);
    assert.deepEqual(groupsOf(child.pid!), new Set([`/${group}/limited`]));
    assert.match(readFileSync(`/proc/${child.pid}/status`, 'utf8'), /^Cpus_allowed_list:\s*0$/m);
    if (controllers().get('memory')?.version === 1) assert.equal(file('memory', `${group}/limited`, 'memory.limit_in_bytes'), `${64 * MiB}`);
    if (controllers().get('cpu')?.version === 1) assert.equal(file('cpu', `${group}/limited`, 'cpu.cfs_quota_us'), '50000');
    assert.deepEqual(await cgs.get(child.pid!, RESOURCE.CPU_CORE), { type: RESOURCE.CPU_CORE, cores: '0' });
    assert.deepEqual(cgs.list(), ['limited']);
    cgs.unbind('limited', child.pid!);
    assert.deepEqual(groupsOf(child.pid!), new Set([`/${leaf}`]));
    cgs.destroy('limited');
    assert.deepEqual(cgs.list(), []);
  });

  it('sees a create killed half-way as no group, and finishes a destroy killed half-way', () => {
    const hs = hierarchies().filter((h) => readdirSync(join(h.mount, group)).length > 0);
    const [marker, other] = [hs[0], hs[hs.length - 1]];
    // Killed create: made in a hierarchy other than the marker's, which comes last.
    mkdirSync(join(other.mount, group, 'half'));
    assert.deepEqual(cgs.list(), []);
    assert.throws(() => cgs.destroy('half'), { errName: 'DRE_ERR_CGROUP_NONEXISTENCE' });
    cgs.create('half');
    // Killed destroy: removed everywhere but the marker's hierarchy, which goes last.
    rmdirSync(join(other.mount, group, 'half'));
    assert.deepEqual(cgs.list(), ['half']);
    cgs.destroy('half');
    for (const h of [marker, other]) assert.ok(!readdirSync(join(h.mount, group)).includes('half'));
  });
});

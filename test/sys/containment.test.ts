import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../src/core/proc.js';
import { STATUS } from '../../src/core/driver.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { localDiskPath, qmpSocketPath, recordPath } from '../../src/sys/layout.js';
import { humanMonitor } from '../../src/sys/qmp/commands.js';
import { withQmp, type Qmp } from '../../src/sys/qmp/monitor.js';
import { threadsGone } from '../../src/sys/qemu.js';
import { qemuPid } from '../../src/sys/state.js';
import { cli, uniqueName } from '../support/env.js';
import { qemuIds, removeGuest, requireQemu, sh } from './helpers.js';

// What a hostile guest that took over its QEMU would hold: checked through the kernel's own view
// (/proc/PID/status) and by making QEMU itself try to open host files over QMP.

/** The status lines of a task as the kernel reports them: `Uid` → ['995', '995', '995', '995'] etc. */
function procStatus(path: string): Map<string, string[]> {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  return new Map(
    lines.map((l) => [
      l.slice(0, l.indexOf(':')),
      l
        .slice(l.indexOf(':') + 1)
        .trim()
        .split(/\s+/),
    ]),
  );
}

/** QMP's error text for opening `path` read-only as a block node (undefined when QEMU opened it). */
async function openThroughQemu(q: Qmp, path: string, node: string): Promise<string | undefined> {
  try {
    await q.execute('blockdev-add', { driver: 'file', 'node-name': node, filename: path, 'read-only': true });
  } catch (e) {
    return (e as Error).message;
  }
  await q.execute('blockdev-del', { 'node-name': node });
  return undefined;
}

describe('QEMU is confined: an unprivileged user, no capabilities, a seccomp sandbox, only its own files', () => {
  const name = uniqueName('sys-confine');
  const idle = uniqueName('sys-confine-idle');
  const secret = join(process.env.DRE_TEST_TMP!, 'root-only.txt');
  const open = join(process.env.DRE_TEST_TMP!, 'world-readable.txt');
  let pid = 0;

  before(async () => {
    requireQemu();
    writeFileSync(secret, 'host secret\n', { mode: 0o600 });
    chmodSync(secret, 0o600);
    writeFileSync(open, 'anyone may read this\n', { mode: 0o644 });
    chmodSync(open, 0o644);
    await sys.create(name, { memorySize: 128 });
    await sys.create(idle, { memorySize: 128 });
    await sys.start(name);
    pid = await sys.pid(name);
  });
  after(async () => {
    await removeGuest(name);
    await removeGuest(idle);
  });

  it('runs QEMU, every thread of it, as dre-qemu (real, effective, saved and fs ids), never uid 0', () => {
    const { uid, gid } = qemuIds();
    assert.notEqual(uid, 0);
    const tasks = readdirSync(`/proc/${pid}/task`);
    assert.ok(tasks.length > 1, 'QEMU has several threads');
    for (const t of tasks) {
      const st = procStatus(`/proc/${pid}/task/${t}/status`);
      assert.deepEqual(st.get('Uid'), [uid, uid, uid, uid].map(String), `thread ${t}`);
      assert.deepEqual(st.get('Gid'), [gid, gid, gid, gid].map(String), `thread ${t}`);
      assert.ok(!(st.get('Groups') ?? []).includes('0'), `thread ${t} is in group 0: ${st.get('Groups')}`);
    }
  });

  it('gives QEMU no capability at all (effective, permitted, inheritable, ambient, bounding), no_new_privs and a seccomp filter', () => {
    const st = procStatus(`/proc/${pid}/status`);
    for (const set of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb', 'CapBnd']) assert.equal(BigInt(`0x${st.get(set)![0]}`), 0n, `${set} ${st.get(set)}`);
    assert.deepEqual(st.get('NoNewPrivs'), ['1']);
    assert.deepEqual(st.get('Seccomp'), ['2'], 'seccomp in filter mode');
    for (const t of readdirSync(`/proc/${pid}/task`)) assert.deepEqual(procStatus(`/proc/${pid}/task/${t}/status`).get('Seccomp'), ['2'], `thread ${t}`);
    assert.match(
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '),
      /-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny/,
    );
  });

  it('the guest runs normally meanwhile: its agent answers exec and it writes its disk, which only dre-qemu may open', async () => {
    assert.equal(await sh(name, 'echo ok > /root/w; sync; cat /root/w'), 'ok');
    const disk = statSync(localDiskPath(name));
    assert.deepEqual([disk.uid, disk.mode & 0o777], [qemuIds().uid, 0o600]);
  });

  it('QEMU cannot open a root-only host file (blockdev-add and HMP drive_add get EACCES), while it can open a world-readable one', async () => {
    assert.equal((statSync(secret).mode & 0o777).toString(8), '600');
    await withQmp(qmpSocketPath(name), async (q) => {
      assert.equal(await openThroughQemu(q, open, 'control'), undefined, 'the same path with a readable mode opens: the refusal below is about permission');
      assert.match((await openThroughQemu(q, secret, 'steal')) ?? 'opened!', /Permission denied/);
      const hmp = await humanMonitor(q, `drive_add 0 if=none,id=steal2,file=${secret},format=raw,readonly=on`);
      assert.match(hmp, /Permission denied/);
    });
  });

  it("QEMU cannot read D-RE's own state: its container's record, or another container's disk it has not been given", async () => {
    await withQmp(qmpSocketPath(name), async (q) => {
      assert.match((await openThroughQemu(q, recordPath(name), 'rec')) ?? 'opened!', /Permission denied/);
      // The idle container never ran: its disk is still root's (it is given to dre-qemu when that container starts).
      assert.match((await openThroughQemu(q, localDiskPath(idle), 'other')) ?? 'opened!', /Permission denied/);
      assert.match((await openThroughQemu(q, '/etc/shadow', 'shadow')) ?? 'opened!', /Permission denied/);
    });
  });

  it('refuses to start a container when the dre-qemu user is missing: DRE_ERR_PERMISSION_DENIED naming the set-up, no QEMU as root', () => {
    // The user database without dre-qemu, in a private mount namespace of this one CLI run.
    const passwd = join(process.env.DRE_TEST_TMP!, 'passwd-without-dre-qemu');
    writeFileSync(
      passwd,
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('dre-qemu:'))
        .join('\n'),
    );
    const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/passwd && exec "$@"', passwd];
    const r = cli('dre-sys', ['start', idle], { wrap });
    assert.equal(r.code, 102, r.stderr);
    assert.match(r.stderr, /DRE_ERR_PERMISSION_DENIED.*dre-qemu does not exist.*scripts\/setup\.sh/);
    assert.equal(qemuPid(idle), undefined);
    assert.equal(cli('dre-sys', ['status', idle]).stdout.trim(), 'STOP');
  });

  it("refuses to commit a disk whose header a QEMU pointed at a host file: root's qemu-img never reads it into a base", async () => {
    await sys.saveSnapshot(idle, 's1');
    // What a QEMU taken over by its guest could write into its own disk's header.
    execFileSync('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', 'raw', '-b', secret, localDiskPath(idle)]);
    const base = uniqueName('stolen');
    await assert.rejects(sys.commitSnapshot(idle, 's1', base), (e: Error & { code?: number }) => {
      assert.equal(e.code, -136);
      assert.match(e.message, new RegExp(`backing file ${secret}`));
      return true;
    });
    assert.ok(!(await sys.listBases()).includes(base));
  });

  it('QEMU cannot spawn a process: a migration to `exec:` makes it fork, and the sandbox kills it', async () => {
    assert.equal(await sys.status(name), STATUS.RUNNING);
    await withQmp(qmpSocketPath(name), (q) => q.execute('migrate', { uri: 'exec:cat > /dev/null' }).catch(() => undefined)).catch(() => undefined);
    const gone = await waitFor(() => (threadsGone(pid) ? true : undefined), 10_000);
    assert.equal(gone, true, 'QEMU still runs after trying to fork');
  });
});

import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chownSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { app } from '../../src/index.js';
import { upperDir } from '../../src/app/layout.js';
import { rootIdRange } from '../../src/app/userns.js';
import { STATUS } from '../../src/core/driver.js';
import { baseDir, basesDir, containersDir } from '../../src/core/paths.js';
import { cli, uniqueName } from '../support/env.js';
import { assertDamagedRefused } from '../support/archives.js';
import { removeMade } from '../support/made.js';
import { useTestNetwork } from '../support/sweep.js';

const tmp = process.env.DRE_TEST_TMP!;
const work = join(tmp, 'transfer');
const made: string[] = [];
const bases: string[] = [];

function sh(name: string, script: string, env?: NodeJS.ProcessEnv): string {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script], { env });
  assert.equal(r.code, 0, `exec in ${name} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const ok = (args: string[], env?: NodeJS.ProcessEnv) => {
  const r = cli('dre-app', args, { env });
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A file of `mib` MiB of varied bytes (every byte value, no run a pipe could compress away). */
function bigFile(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) {
    for (let j = 0; j < chunk.length; j += 32) createHash('sha256').update(`${i}:${j}`).digest().copy(chunk, j);
    writeSync(fd, chunk);
  }
  closeSync(fd);
}

before(() => {
  mkdirSync(work, { recursive: true });
});

after(() => removeMade(made, bases));

describe('push and pull', () => {
  let name: string;
  before(async () => {
    name = uniqueName('files');
    await app.create(name);
    made.push(name);
  });

  it('move a 100 MiB file in and out of a running container intact, with its mode and owner as ids inside', async () => {
    const src = join(work, 'big.bin');
    bigFile(src, 100);
    chownSync(src, 1234, 2345);
    chmodSync(src, 0o640);
    await app.start(name);
    try {
      ok(['push', name, src, '/root/big.bin']);
      // Seen inside: the owner numbers and mode of the host file, the same bytes.
      assert.equal(sh(name, 'stat -c "%u:%g %a %s" /root/big.bin; sha256sum < /root/big.bin').trim(), `1234:2345 640 ${100 << 20}\n${sha256(src)}  -`);
      // On the host the container's ids are its range's.
      const st = statSync(join(upperDir(name), 'root/big.bin'));
      assert.deepEqual([st.uid, st.gid], [rootIdRange().uid + 1234, rootIdRange().gid + 2345]);
      const back = join(work, 'big.back');
      ok(['pull', name, '/root/big.bin', back]);
      assert.equal(sha256(back), sha256(src));
      const b = statSync(back);
      assert.deepEqual([b.uid, b.gid, b.mode & 0o7777, b.size], [1234, 2345, 0o640, 100 << 20]);
    } finally {
      await app.stop(name, { timeoutMs: 0 });
    }
  });

  it('work on a stopped container too, and take --uid/--gid/--mode', async () => {
    const src = join(work, 'small.bin');
    writeFileSync(src, Buffer.from([0, 1, 2, 255, 10, 13, 0]));
    ok(['push', name, src, '/etc/', '--uid', '7', '--gid', '8', '--mode', '4711']);
    assert.equal(await app.status(name), STATUS.STOP);
    const st = statSync(join(upperDir(name), 'etc/small.bin'));
    assert.deepEqual([st.uid - rootIdRange().uid, st.gid - rootIdRange().gid, st.mode & 0o7777], [7, 8, 0o4711]);
    const back = join(work, 'small.back');
    ok(['pull', name, '/etc/small.bin', back]);
    assert.deepEqual(readFileSync(back), readFileSync(src));
    assert.equal(statSync(back).mode & 0o7777, 0o4711);
  });

  it("resolve the container's planted links inside the container: the host file they name is neither read nor written", async () => {
    const canary = join(work, 'canary');
    writeFileSync(canary, 'host secret\n');
    chmodSync(canary, 0o644);
    await app.start(name);
    try {
      // The container's root plants links to the host path and to the host's /.
      sh(name, `ln -s ${canary} /root/evil; ln -s / /root/hostroot; echo inside > /root/mine`);
      const src = join(work, 'payload');
      writeFileSync(src, 'overwritten\n');
      ok(['push', name, src, '/root/evil']);
      // Through the link to /, the host's directory is looked for in the container's own /: not there.
      assert.equal(cli('dre-app', ['push', name, src, `/root/hostroot${canary}`]).code, 101);
      assert.equal(sh(name, 'cat /root/evil'), 'overwritten\n', 'the link itself was replaced inside');
      assert.equal(readFileSync(canary, 'utf8'), 'host secret\n');
      const pulled = join(work, 'pulled');
      const r = cli('dre-app', ['pull', name, `/root/hostroot${work}/canary`, pulled]);
      // Inside the container that path leads to the container's own / : no such file there.
      assert.equal(r.code, 101, r.stderr);
      assert.equal(existsSync(pulled), false);
    } finally {
      await app.stop(name, { timeoutMs: 0 });
    }
  });

  it('refuse bad input with DRE_ERR_INVALID_ARGUMENT and a missing container with DRE_ERR_CONTAINER_NONEXISTENCE', () => {
    assert.equal(cli('dre-app', ['push', name, join(work, 'nosuch'), '/root/x']).code, 101);
    assert.equal(cli('dre-app', ['push', name, join(work, 'payload'), 'relative/path']).code, 101);
    assert.equal(cli('dre-app', ['pull', name, '/no/such/file', join(work, 'x')]).code, 101);
    assert.equal(existsSync(join(work, 'x')), false);
    assert.equal(cli('dre-app', ['push', 'nosuch-container', join(work, 'payload'), '/root/x']).code, 111);
  });
});

describe('base import', () => {
  // A small root of its own: busybox with an init and a marker file.
  const tree = join(work, 'tree');
  before(() => {
    for (const d of ['bin', 'sbin', 'etc', 'root', 'proc', 'sys', 'dev', 'tmp', 'run']) mkdirSync(join(tree, d), { recursive: true });
    copyFileSync('/bin/busybox', join(tree, 'bin/busybox'));
    chmodSync(join(tree, 'bin/busybox'), 0o755);
    for (const l of ['sh', 'cat', 'id', 'stat', 'mv', 'chown', 'chmod', 'rm', 'head', 'sha256sum', 'ls']) symlinkSync('busybox', join(tree, 'bin', l));
    symlinkSync('/bin/busybox', join(tree, 'sbin/init'));
    writeFileSync(join(tree, 'etc/inittab'), '::sysinit:/bin/true\n');
    writeFileSync(join(tree, 'etc/marker'), 'imported\n');
    chownSync(join(tree, 'etc/marker'), 33, 44);
  });

  async function bootsFrom(base: string): Promise<void> {
    bases.push(base);
    const n = uniqueName('imp');
    await app.create(n, { base });
    made.push(n);
    await app.start(n);
    try {
      assert.equal(sh(n, 'cat /etc/marker; stat -c %u:%g /etc/marker'), 'imported\n33:44\n');
    } finally {
      await app.stop(n, { timeoutMs: 0 });
    }
  }

  it('makes a base of a directory and of a tarball, owned by the root id range, that containers boot from', async () => {
    const dirBase = uniqueName('dirbase');
    ok(['base', 'import', dirBase, tree]);
    assert.equal(statSync(join(baseDir('app', dirBase), 'rootfs/etc/marker')).uid, rootIdRange().uid + 33);
    await bootsFrom(dirBase);
    const tarball = join(work, 'tree.tar.gz');
    assert.equal(spawnSync('tar', ['-czf', tarball, '--numeric-owner', '-C', tree, '.']).status, 0);
    const tarBase = uniqueName('tarbase');
    ok(['base', 'import', tarBase, tarball]);
    await bootsFrom(tarBase);
  });

  it('makes a base of an OCI image, as a layout directory and as an oci-archive (umoci, skopeo)', async () => {
    const layout = join(work, 'oci');
    const bundle = join(work, 'bundle');
    const must = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    };
    must('umoci', ['init', '--layout', layout]);
    must('umoci', ['new', '--image', `${layout}:v1`]);
    must('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    must('cp', ['-a', `${tree}/.`, join(bundle, 'rootfs')]);
    must('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
    const ociDir = uniqueName('ocidir');
    ok(['base', 'import', ociDir, layout]);
    await bootsFrom(ociDir);
    const archive = join(work, 'image.tar');
    must('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `oci-archive:${archive}:v1`]);
    const ociArchive = uniqueName('ociarch');
    ok(['base', 'import', ociArchive, archive, '--tag', 'v1']);
    await bootsFrom(ociArchive);
  });

  it('refuses a file that is not a root or an image, and a taken name, leaving no base behind', () => {
    const junk = join(work, 'junk');
    writeFileSync(junk, 'not a tarball');
    assert.equal(cli('dre-app', ['base', 'import', 'junkbase', junk]).code, 121);
    assert.equal(cli('dre-app', ['base', 'import', 'junkbase', join(work, 'nosuch')]).code, 101);
    assert.equal(existsSync(baseDir('app', 'junkbase')), false);
    assert.deepEqual(
      readdirSync(basesDir('app')).filter((e) => e.startsWith('.')),
      [],
    );
    assert.equal(cli('dre-app', ['base', 'import', bases[0], tree]).code, 122);
  });
});

describe('export and import', () => {
  // A second D-RE host's root and run dir (swept as every tmp/host* is), with a test bridge of its own.
  const hostB = join(tmp, 'host-import'); // host*: the sweep releases the roots of every host* directory of the run
  const other = { DRE_ROOT: join(hostB, 'root'), DRE_RUNDIR: join(hostB, 'run') };
  useTestNetwork(hostB);
  chmodSync(hostB, 0o711); // passable for the mapped root, as the run's own tmp is
  const imported: string[] = [];
  let name: string;
  const file = join(work, 'export.tar.zst');

  // What the container shows of its whole root: every path, its type, mode, owner and content (logs aside).
  const TREE = `find / -xdev -path /var/log -prune -o -print | sort | while read f; do
    stat -c '%n %F %a %u:%g' "$f"; if [ -f "$f" ] && [ ! -L "$f" ]; then sha256sum < "$f"; fi; done | sha256sum`;

  function treeOf(n: string, tag: string, env?: NodeJS.ProcessEnv): string {
    ok(['load', n, tag], env);
    ok(['start', n], env);
    try {
      return sh(n, TREE, env);
    } finally {
      ok(['stop', n, '--timeout', '0'], env);
    }
  }

  before(async () => {
    name = uniqueName('exp');
    await app.create(name);
    made.push(name);
    await app.start(name);
    sh(name, 'mkdir -p /data && echo one > /data/a && mknod /data/fifo p && ln -s a /data/link && chown 5:6 /data/a && chmod 604 /data/a');
    await app.stop(name, { timeoutMs: 0 });
    await app.saveSnapshot(name, 's1');
    await app.start(name);
    sh(name, 'echo two > /data/b && rm /data/a && rm -r /etc/init.d && dd if=/dev/urandom of=/data/rand bs=1k count=300 2>/dev/null');
    await app.stop(name, { timeoutMs: 0 });
    await app.saveSnapshot(name, 's2');
  });

  after(() => {
    for (const n of imported) {
      cli('dre-app', ['stop', n, '--timeout', '0'], { env: other });
      cli('dre-app', ['destroy', n], { env: other });
    }
  });

  it('moves a container with two snapshots to another root, where every snapshot loads bit-identical', () => {
    ok(['export', name, file]);
    assert.equal(readFileSync(file).subarray(0, 4).toString('hex'), '28b52ffd', 'a .zst name gives a zstd file');
    const got = ok(['import', file], other).trim();
    assert.equal(got, name);
    imported.push(name);
    assert.deepEqual(JSON.parse(ok(['snapshots', name, '--json'], other)), ['s1', 's2']);
    const t1 = treeOf(name, 's1');
    const t2 = treeOf(name, 's2');
    assert.notEqual(t1, t2);
    assert.equal(treeOf(name, 's1', other), t1);
    assert.equal(treeOf(name, 's2', other), t2);
    // Owned there by the other root's ids (its own range), not this one's.
    const otherRange = JSON.parse(readFileSync(join(other.DRE_ROOT, 'app/idmap.json'), 'utf8')).uid;
    assert.notEqual(otherRange, rootIdRange().uid);
    assert.equal(statSync(join(other.DRE_ROOT, 'app/containers', name, 'upper')).uid, otherRange);
  });

  it('imports under a new name, and carries a committed base, found identical on a second import', async () => {
    const committed = uniqueName('expbase');
    await app.commitSnapshot(name, 's1', committed);
    bases.push(committed);
    const child = uniqueName('expchild');
    await app.create(child, { base: committed });
    made.push(child);
    const f = join(work, 'child.tar');
    ok(['export', child, f]);
    ok(['import', f, 'copy1'], other);
    imported.push('copy1');
    ok(['import', f, 'copy2'], other);
    imported.push('copy2');
    assert.ok(JSON.parse(ok(['bases', '--json'], other)).includes(committed));
    ok(['start', 'copy2'], other);
    try {
      assert.equal(sh('copy2', 'cat /data/a', other), 'one\n');
    } finally {
      ok(['stop', 'copy2', '--timeout', '0'], other);
    }
  });

  it('refuses a corrupt or truncated file with DRE_ERR_INVALID_ARGUMENT and leaves nothing behind', () => {
    const plain = join(work, 'plain.tar');
    ok(['export', name, plain]);
    const before = readdirSync(join(other.DRE_ROOT, 'app/containers'));
    assertDamagedRefused('dre-app', plain, work, other);
    assert.deepEqual(readdirSync(join(other.DRE_ROOT, 'app/containers')), before);
    assert.equal(JSON.parse(readFileSync(join(other.DRE_ROOT, 'app/leases.json'), 'utf8')).broken, undefined);
    assert.equal(cli('dre-app', ['import', plain], { env: other }).code, 112, 'its own name is taken there');
    assert.equal(cli('dre-app', ['export', name, join(work, 'nope', 'x.tar')]).code, 101);
    assert.equal(existsSync(join(work, 'nope')), false);
    assert.deepEqual(
      readdirSync(containersDir('app')).filter((e) => e.startsWith('.')),
      [],
    );
  });
});

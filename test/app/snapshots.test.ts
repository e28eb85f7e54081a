import '../support/env.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appDriver as app } from '../../src/app/driver.js';
import { layersDir, upperDir } from '../../src/app/layout.js';
import { isDreError } from '../../src/core/errors.js';
import { baseDir, basesDir } from '../../src/core/paths.js';
import { cli, uniqueName } from '../support/env.js';
import {
  dre_app_commit_snapshot,
  dre_app_get_base_list,
  dre_app_get_snapshot_list,
  dre_app_open,
  dre_app_save_snapshot,
  DRE_ERR_CONTAINER_RUNNING,
  DRE_ERR_SNAPSHOT_EXISTENCE,
} from '../../src/spec/app.js';

const made: string[] = [];
const bases: string[] = [];

async function container(prefix: string, base: string | null = null, privileged = false): Promise<string> {
  const n = uniqueName(prefix);
  await app.create(n, { base, privileged });
  made.push(n);
  return n;
}

/** Runs a shell script inside the running container; fails the test on a non-zero exit. */
function sh(name: string, script: string): string {
  const r = cli('dre-app', ['exec', name, '--', 'sh', '-c', script]);
  assert.equal(r.code, 0, `exec in ${name} failed: ${r.stderr}`);
  return r.stdout;
}

const ok = (args: string[]) => {
  const r = cli('dre-app', args);
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const fails = (args: string[], code: number, env?: NodeJS.ProcessEnv) => {
  const r = cli('dre-app', args, { env });
  assert.equal(r.code, code, `dre-app ${args.join(' ')} exit ${r.code}, want ${code}: ${r.stderr}`);
  return r.stderr;
};
const list = (args: string[]): string[] => JSON.parse(ok([...args, '--json'])) as string[];

/** Everything the guest shows of /data and a few base files: type, mode, owner, device numbers, link target, content. */
const MANIFEST = `cd /data && find . /etc/hosts /bin/vi | sort | while read f; do
  stat -c '%n %F %a %u:%g %t:%T' "$f"
  if [ -L "$f" ]; then readlink "$f"; elif [ -f "$f" ]; then md5sum < "$f"; fi
done`;

async function run(name: string, fn: () => unknown): Promise<void> {
  await app.start(name);
  try {
    await fn();
  } finally {
    await app.stop(name, { timeoutMs: 0 });
  }
}

before(() => {
  assert.equal(process.getuid?.(), 0, 'these tests drive LXC and need root');
});

after(async () => {
  for (const n of made.reverse()) {
    try {
      if ((await app.status(n)) !== 11) await app.stop(n, { timeoutMs: 0 });
      await app.destroy(n);
    } catch {
      /* already gone */
    }
  }
  for (const b of bases.reverse()) await app.removeBase(b).catch(() => {});
});

describe('application container snapshots', () => {
  // Device nodes only where the container may make them: an unprivileged root cannot mknod.
  for (const privileged of [false, true]) {
    it(`restore changed, added and deleted files, modes, owners, symlinks${privileged ? ', device nodes (privileged)' : ' (unprivileged)'} exactly`, async () => {
      const c = await container('snap', null, privileged);
      const mknod = (path: string, minor: number) => (privileged ? `&& mknod ${path} c 1 ${minor}` : '');
      let first = '';
      await run(c, () => {
        sh(
          c,
          `mkdir -p /data/dir/sub && echo keep > /data/keep && echo v1 > /data/change && echo gone > /data/gone
          echo deep > /data/dir/sub/f && ln -s keep /data/link && chmod 640 /data/change && chown 1000:100 /data/keep
          mkfifo /data/fifo ${mknod('/data/null', 3)}`,
        );
        first = sh(c, MANIFEST);
      });
      if (privileged) assert.match(first, /null character special file 644 0:0 1:3/);
      assert.match(first, /keep regular file 644 1000:100/);
      ok(['snapshot', c, 'first']);

      let second = '';
      await run(c, () => {
        assert.equal(sh(c, MANIFEST), first, 'a save changes nothing the guest sees');
        sh(
          c,
          `echo v2 > /data/change && chmod 600 /data/change && chown 7:7 /data/change && rm /data/gone && rm -rf /data/dir
          echo new > /data/new && ln -sf change /data/link ${mknod('/data/zero', 5)} && echo edited >> /etc/hosts && rm /bin/vi
          mkdir /data/dir && echo other > /data/dir/x`,
        );
        second = sh(c, MANIFEST);
      });
      assert.notEqual(second, first);
      ok(['snapshot', c, 'second']);
      await run(c, () => sh(c, 'echo unsaved > /data/unsaved && rm /data/keep'));

      ok(['load', c, 'first']);
      await run(c, () => assert.equal(sh(c, MANIFEST), first));
      ok(['load', c, 'second']);
      await run(c, () => assert.equal(sh(c, MANIFEST), second));
      assert.deepEqual(list(['snapshots', c]), ['first', 'second']);

      ok(['rm-snapshot', c, 'second']);
      assert.deepEqual(list(['snapshots', c]), ['first']);
      await run(c, () => assert.equal(sh(c, MANIFEST), second, 'removing a snapshot leaves the current file system alone'));
      ok(['load', c, 'first']);
      await run(c, () => assert.equal(sh(c, MANIFEST), first));
    });
  }

  it('saves and loads through the spec layer with its return codes', async () => {
    const c = await container('spec');
    const h = await dre_app_open(c);
    assert.ok(h);
    assert.equal(await dre_app_save_snapshot(h, 'one'), 0);
    assert.equal(await dre_app_save_snapshot(h, 'one'), DRE_ERR_SNAPSHOT_EXISTENCE);
    const snaps: { value?: string[] } = {};
    assert.equal(await dre_app_get_snapshot_list(h, snaps), 0);
    assert.deepEqual(snaps.value, ['one']);
    await app.start(c);
    try {
      assert.equal(await dre_app_commit_snapshot(h, 'one', 'never'), DRE_ERR_CONTAINER_RUNNING);
    } finally {
      await app.stop(c, { timeoutMs: 0 });
    }
    const all: { value?: string[] } = {};
    assert.equal(await dre_app_get_base_list(all), 0);
    assert.ok(!all.value!.includes('never'));
  });

  it('commits a Base Image that siblings share without seeing each other, and that outlives its container and snapshot', async () => {
    const src = await container('src');
    await run(src, () => sh(src, 'mkdir -p /data && echo from-base > /data/shared && chmod 751 /data/shared'));
    ok(['snapshot', src, 'golden']);
    const base = uniqueName('base');
    ok(['commit', src, 'golden', base]);
    bases.push(base);
    assert.ok(list(['bases']).includes(base));

    ok(['rm-snapshot', src, 'golden']);
    await app.destroy(src);
    const sibs = [uniqueName('sib'), uniqueName('sib')];
    for (const s of sibs) {
      ok(['create', s, '--base', base]);
      made.push(s);
    }
    for (const s of sibs) await app.start(s);
    try {
      for (const s of sibs) assert.equal(sh(s, 'stat -c %a /data/shared; cat /data/shared'), '751\nfrom-base\n');
      sh(sibs[0], 'echo mine > /data/own && echo changed > /data/shared');
      assert.equal(sh(sibs[1], 'ls /data; cat /data/shared'), 'shared\nfrom-base\n');
      assert.equal(readFileSync(join(baseDir('app', base), 'rootfs', 'data', 'shared'), 'utf8'), 'from-base\n');
      assert.ok(!existsSync(join(baseDir('app', base), 'rootfs', 'data', 'own')));
    } finally {
      for (const s of sibs) await app.stop(s, { timeoutMs: 0 });
    }

    ok(['snapshot', sibs[0], 'derived']);
    const derived = uniqueName('derived');
    ok(['commit', sibs[0], 'derived', derived]);
    bases.push(derived);
    const stderr = fails(['rm-base', base], 123);
    for (const user of [...sibs, derived]) assert.ok(stderr.includes(user), `${stderr} names ${user}`);
    assert.ok(list(['bases']).includes(base), 'a refused removal keeps the base');

    const child = await container('child', derived);
    await run(child, () => assert.equal(sh(child, 'cat /data/own /data/shared'), 'mine\nchanged\n'));
    ok(['rm-snapshot', sibs[0], 'derived']);
    await app.destroy(child);
    ok(['rm-base', derived]);
    for (const s of sibs) await app.destroy(s);
    ok(['rm-base', base]);
    assert.ok(!list(['bases']).includes(base));
  });

  it('refuses every precondition with its own code and changes nothing', async () => {
    const c = await container('pre');
    ok(['snapshot', c, 'have']);
    const before = list(['snapshots', c]);
    fails(['snapshot', c, 'have'], 132);
    fails(['load', c, 'missing'], 131);
    fails(['rm-snapshot', c, 'missing'], 131);
    fails(['commit', c, 'missing', 'nb'], 131);
    fails(['commit', c, 'have', 'default'], 122);
    fails(['snapshot', c, '../evil'], 101);
    fails(['snapshot', c, '.hidden'], 101);
    fails(['snapshot', c, 'x'.repeat(65)], 202);
    fails(['commit', c, 'have', 'bad/base'], 101);
    fails(['snapshot', 'no-such-container', 'x'], 111);
    fails(['snapshots', 'no-such-container'], 111);
    fails(['rm-base', 'no-such-base'], 121);
    fails(['create', uniqueName('nb'), '--base', 'no-such-base'], 121);
    await app.start(c);
    try {
      for (const args of [
        ['snapshot', c, 'new'],
        ['load', c, 'have'],
        ['rm-snapshot', c, 'have'],
        ['commit', c, 'have', 'nb'],
      ])
        fails(args, 113);
      await app.suspend(c);
      for (const args of [
        ['snapshot', c, 'new'],
        ['load', c, 'have'],
        ['rm-snapshot', c, 'have'],
        ['commit', c, 'have', 'nb'],
      ])
        fails(args, 115);
      await app.resume(c);
    } finally {
      await app.stop(c, { timeoutMs: 0 });
    }
    assert.deepEqual(list(['snapshots', c]), before);
    assert.ok(!list(['bases']).includes('nb'));
  });

  it('leaves no snapshot and the same files after a SIGKILL at any step of save, and save works again', async () => {
    const c = await container('killsave');
    await run(c, () => sh(c, 'mkdir -p /data && echo before > /data/f && rm /bin/vi'));
    ok(['snapshot', c, 'base-state']);
    let want = '';
    await run(c, () => {
      sh(c, 'echo after > /data/f && echo more > /data/g');
      want = sh(c, MANIFEST);
    });
    for (const step of ['save:layer-made', 'save:recorded', 'save:swapped']) {
      const r = cli('dre-app', ['snapshot', c, 'killed'], { env: { DRE_TEST_KILL_AT: step } });
      assert.equal(r.code, -1, `killed at ${step}`);
      assert.deepEqual(list(['snapshots', c]), ['base-state'], `after a kill at ${step}`);
      await run(c, () => assert.equal(sh(c, MANIFEST), want, `the guest sees the same files after a kill at ${step}`));
    }
    ok(['snapshot', c, 'killed']);
    ok(['rm-snapshot', c, 'killed']);
    ok(['load', c, 'base-state']);
    await run(c, () => assert.equal(sh(c, 'cat /data/f; ls /data'), 'before\nf\n'));
    const r = cli('dre-app', ['load', c, 'base-state'], { env: { DRE_TEST_KILL_AT: 'load:discarded' } });
    assert.equal(r.code, -1);
    assert.ok(
      readdirSync(layersDir(c)).some((e) => e.startsWith('.discard-')),
      'the killed load left the upper it set aside',
    );
    ok(['load', c, 'base-state']);
    // The next load removed the killed one's, and its own before the CLI exited (it removes it off the lock's path).
    assert.deepEqual(
      readdirSync(layersDir(c)).filter((e) => e.startsWith('.discard-')),
      [],
    );
    await run(c, () => assert.equal(sh(c, 'cat /data/f'), 'before\n'));
  });

  it('leaves no Base Image after a SIGKILL in the middle of commit, and commit and removal work afterwards', async () => {
    const c = await container('killcommit');
    await run(c, () => sh(c, 'mkdir -p /data && echo one > /data/one'));
    ok(['snapshot', c, 's1']);
    await run(c, () => sh(c, 'echo two > /data/two'));
    ok(['snapshot', c, 's2']);
    const base = uniqueName('kb');
    for (const step of ['commit:copied', 'commit:recorded']) {
      const r = cli('dre-app', ['commit', c, 's2', base], { env: { DRE_TEST_KILL_AT: step } });
      assert.equal(r.code, -1, `killed at ${step}`);
      assert.ok(!list(['bases']).includes(base), `no base listed after a kill at ${step}`);
      assert.ok(!existsSync(baseDir('app', base)));
      fails(['rm-base', base], 121);
      fails(['create', uniqueName('kc'), '--base', base], 121);
    }
    assert.ok(
      readdirSync(basesDir('app')).some((e) => e.startsWith('.staging-')),
      'the killed commit left only a hidden staging entry',
    );
    ok(['commit', c, 's2', base]);
    bases.push(base);
    assert.ok(!readdirSync(basesDir('app')).some((e) => e.startsWith(`.staging-${base}`)), 'the next commit cleaned the staging entry');
    const d = await container('kd', base);
    await run(d, () => assert.equal(sh(d, 'cat /data/one /data/two'), 'one\ntwo\n'));
    await app.destroy(d);
    ok(['rm-base', base]);
  });
});

describe('the layer stack limit', () => {
  it('refuses a save whose stack would not mount, and the deepest stack it allowed still starts', async () => {
    const c = await container('deep');
    let saves = 0;
    for (;;) {
      // Writing the upper layer from the host: only the number of layers matters here.
      writeFileSync(join(upperDir(c), `f${saves}`), `${saves}\n`);
      try {
        await app.saveSnapshot(c, `s${saves}`);
      } catch (e) {
        assert.ok(isDreError(e) && e.errName === 'DRE_ERR_SAVE_SNAPSHOT_FAILED', String(e));
        assert.match(e.message, /mount options|layers exceed/);
        break;
      }
      saves++;
      assert.ok(saves < 600, 'the stack must hit a limit');
    }
    assert.ok(saves > 10, `only ${saves} saves fit`);
    assert.equal((await app.listSnapshots(c)).length, saves);
    await run(c, () => assert.equal(sh(c, `cat /f0 /f${saves}`), `0\n${saves}\n`));
  });
});

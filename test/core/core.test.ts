import '../support/env.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DRE_ERR, DreError, errName } from '../../src/core/errors.js';
import { ContainerLock, isLocked, lockPath } from '../../src/core/lock.js';
import { checkInt, checkName } from '../../src/core/names.js';
import { cgroupRoot } from '../../src/core/paths.js';
import { resolve } from 'node:path';
import { isAlive, sleep, waitFor } from '../../src/core/proc.js';
import { engineCause, run, RunError } from '../../src/core/run.js';
import { mkdirRefusal } from '../../src/core/controlgroups.js';
import { withRevert, withRevertAsync } from '../../src/core/revert.js';
import { readSmallFile } from '../../src/core/smallfile.js';
import { uniqueName } from '../support/env.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as DreError).errName;
  }
  return 'ok';
};

describe('the error table', () => {
  it('has every dre_err_t of spec 1.1.2.1 with its value', () => {
    const spec: Record<string, number> = {
      INVALID_ARGUMENT: -101,
      PERMISSION_DENIED: -102,
      DAWARE_MOD_NONEXISTENCE: -103,
      NO_VT: -104,
      CONTAINER_NONEXISTENCE: -111,
      CONTAINER_EXISTENCE: -112,
      CONTAINER_RUNNING: -113,
      CONTAINER_STOPPED: -114,
      CONTAINER_SUSPENDED: -115,
      CONTAINER_BUSY: -116,
      CONTAINER_UNKNOWN_STATUS: -117,
      BASE_NONEXISTENCE: -121,
      BASE_EXISTENCE: -122,
      REMOVE_BASE_FAILED: -123,
      SNAPSHOT_NONEXISTENCE: -131,
      SNAPSHOT_EXISTENCE: -132,
      SAVE_SNAPSHOT_FAILED: -133,
      LOAD_SNAPSHOT_FAILED: -134,
      REMOVE_SNAPSHOT_FAILED: -135,
      COMMIT_SNAPSHOT_FAILED: -136,
      CGROUP_NONEXISTENCE: -141,
      CGROUP_EXISTENCE: -142,
      PID_NONEXISTENCE: -143,
      SET_LIMIT_FAILED: -144,
      UNSET_LIMIT_FAILED: -145,
      DESTROY_CGROUP_FAILED: -146,
      DEVICE_BUSY: -151,
      NO_TAP_AVAILABLE: -152,
      NO_SOCKET_AVAILABLE: -153,
      NFS_MOUNT_FAILED: -154,
      BIND_FAILED: -155,
      INVALID_HOSTNAME: -156,
      NULL_POINTER: -201,
      REQUEST_TOO_LONG: -202,
    };
    assert.deepEqual(Object.fromEntries(Object.entries(DRE_ERR).map(([k, v]) => [k.replace(/^DRE_ERR_/, ''), v])), spec);
    assert.equal(errName(-112), 'DRE_ERR_CONTAINER_EXISTENCE');
  });

  it('gives a DreError its code, spec name and a one-line form', () => {
    const e = new DreError('DRE_ERR_CONTAINER_BUSY', 'start web: busy');
    assert.equal(e.code, -116);
    assert.equal(String(e), 'DRE_ERR_CONTAINER_BUSY: start web: busy');
  });
});

describe('name validation', () => {
  it('accepts names of letters, digits, _ . - up to 64 characters', () => {
    for (const ok of ['a', 'web-1', 'A_b.c', '0', 'x'.repeat(64)]) assert.equal(checkName(ok, 'name'), ok);
  });

  it('refuses each malformed name with its precise code', () => {
    const cases: [unknown, string][] = [
      [null, 'DRE_ERR_NULL_POINTER'],
      [undefined, 'DRE_ERR_NULL_POINTER'],
      ['', 'DRE_ERR_INVALID_ARGUMENT'],
      ['..', 'DRE_ERR_INVALID_ARGUMENT'],
      ['.hidden', 'DRE_ERR_INVALID_ARGUMENT'],
      ['-x', 'DRE_ERR_INVALID_ARGUMENT'],
      ['a/b', 'DRE_ERR_INVALID_ARGUMENT'],
      ['../x', 'DRE_ERR_INVALID_ARGUMENT'],
      ['a\0b', 'DRE_ERR_INVALID_ARGUMENT'],
      ['a b', 'DRE_ERR_INVALID_ARGUMENT'],
      ['café', 'DRE_ERR_INVALID_ARGUMENT'],
      [42, 'DRE_ERR_INVALID_ARGUMENT'],
      ['x'.repeat(65), 'DRE_ERR_REQUEST_TOO_LONG'],
    ];
    for (const [value, code] of cases)
      assert.equal(
        codeOf(() => checkName(value, 'name')),
        code,
        JSON.stringify(value),
      );
  });

  it('checks integers against their range', () => {
    assert.equal(checkInt(22, 'port', 1, 65535), 22);
    assert.equal(
      codeOf(() => checkInt(0, 'port', 1, 65535)),
      'DRE_ERR_INVALID_ARGUMENT',
    );
    assert.equal(
      codeOf(() => checkInt(1.5, 'port', 1, 65535)),
      'DRE_ERR_INVALID_ARGUMENT',
    );
    assert.equal(
      codeOf(() => checkInt(null, 'port', 1, 65535)),
      'DRE_ERR_NULL_POINTER',
    );
  });
});

describe('the cgroup of a root', () => {
  it("is named by the SHA-256 of the root's path, as node:crypto makes it (running containers keep their groups across versions)", () => {
    for (const root of ['/var/lib/dre', '/tmp/dre-x/a root with ü', 'relative/root']) {
      assert.equal(cgroupRoot(root), `dre/${createHash('sha256').update(resolve(root)).digest('hex').slice(0, 10)}`);
    }
  });
});

describe('the reader of small files (core/smallfile.ts)', () => {
  it('reads what readFileSync reads: /proc files, a file larger than its buffer, UTF-8; ENOENT as readFileSync throws it', () => {
    const dir = mkdtempSync('/tmp/dre-smallfile-');
    try {
      const big = `${'ü'.repeat(40_000)}end`;
      writeFileSync(`${dir}/big`, big);
      assert.equal(readSmallFile(`${dir}/big`), big);
      assert.equal(readSmallFile(`${dir}/big`).length, big.length, 'a second read through the grown buffer');
      writeFileSync(`${dir}/empty`, '');
      assert.equal(readSmallFile(`${dir}/empty`), '');
      assert.equal(readSmallFile('/proc/self/cmdline'), readFileSync('/proc/self/cmdline', 'utf8'));
      assert.equal(readSmallFile('/proc/self/stat').split(' ')[0], String(process.pid));
      assert.throws(() => readSmallFile(`${dir}/none`), { code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the container lock', () => {
  it('turns a second holder into DRE_ERR_CONTAINER_BUSY and shows in /proc/locks', () => {
    const name = uniqueName('lock');
    const a = ContainerLock.acquire('app', name, 'start');
    try {
      assert.equal(isLocked('app', name), true);
      assert.equal(
        codeOf(() => ContainerLock.acquire('app', name, 'stop')),
        'DRE_ERR_CONTAINER_BUSY',
      );
    } finally {
      a.release();
    }
    assert.equal(isLocked('app', name), false);
    ContainerLock.acquire('app', name, 'start').release();
  });

  it('is released by the kernel when its holder is killed', async () => {
    const name = uniqueName('lock');
    const lockModule = new URL('../../src/core/lock.js', import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(lockModule)}); m.ContainerLock.acquire('app', ${JSON.stringify(name)}, 'hold'); console.log('held'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
    );
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    assert.equal(isLocked('app', name), true);
    assert.equal(
      codeOf(() => ContainerLock.acquire('app', name, 'start')),
      'DRE_ERR_CONTAINER_BUSY',
    );
    // The BUSY message names the operation that holds the lock and its process.
    assert.throws(() => ContainerLock.acquire('app', name, 'start'), new RegExp(`in progress: hold \\(pid ${child.pid}, for \\d+ s\\)`));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    await sleep(10);
    assert.equal(isLocked('app', name), false);
    ContainerLock.acquire('app', name, 'start').release();
  });

  it('is told without flock in a process that never loaded it (a CLI status), from the holder the file names', async () => {
    const name = uniqueName('lock');
    const lockModule = JSON.stringify(new URL('../../src/core/lock.js', import.meta.url).href);
    // The probe imports only lock.js and never locks, so flock (koffi) stays unloaded in it.
    const probe = async (): Promise<boolean> => {
      const r = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `const m = await import(${lockModule}); console.log(m.isLocked('app', ${JSON.stringify(name)}));`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as boolean;
    };
    assert.equal(await probe(), false, 'no lock file');
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${lockModule}); const l = m.ContainerLock.acquire('app', ${JSON.stringify(name)}, 'hold'); console.log('held');` +
          ` process.stdin.once('data', () => { l.release(); console.log('released'); }); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'], env: process.env },
    );
    const line = () => new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    try {
      await line();
      assert.equal(await probe(), true, 'held by a live process');
      child.stdin!.write('r');
      await line();
      assert.equal(readFileSync(lockPath('app', name), 'utf8'), '', 'a release empties the file');
      assert.equal(await probe(), false, 'released by a holder that lives on');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
    }
    assert.equal(await probe(), false, 'holder gone');
    // A holder record it cannot use (no descriptor: an older D-RE) is answered from /proc/locks.
    const a = ContainerLock.acquire('app', name, 'start');
    try {
      writeFileSync(lockPath('app', name), JSON.stringify({ op: 'start', pid: process.pid, since: Date.now() }));
      assert.equal(await probe(), true, 'an old-format holder, through /proc/locks');
    } finally {
      a.release();
    }
    assert.equal(await probe(), false, 'then released');

    // A holder killed while a child it gave the descriptor (as lxc-start gets it) runs: still locked.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { spawn } = await import('node:child_process'); const m = await import(${lockModule}); const l = m.ContainerLock.acquire('app', ${JSON.stringify(name)}, 'start');` +
          ` const c = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', l.fd], detached: true }); console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
    );
    const heir = Number(await new Promise<string>((resolve) => holder.stdout!.once('data', (b: Buffer) => resolve(b.toString()))));
    try {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
      assert.equal(await probe(), true, 'held by the child of a killed holder');
    } finally {
      process.kill(heir, 'SIGKILL');
    }
    await waitFor(() => (isAlive(heir) ? undefined : true), 5_000);
    assert.equal(await probe(), false, 'the child gone too');
  });

  it('lets a new holder in once the holder removed its file (destroy)', () => {
    const name = uniqueName('lock');
    const a = ContainerLock.acquire('app', name, 'destroy');
    a.removeFile();
    assert.equal(existsSync(lockPath('app', name)), false);
    const b = ContainerLock.acquire('app', name, 'create');
    try {
      assert.ok(readFileSync('/proc/locks', 'utf8').includes('FLOCK'));
      assert.equal(isLocked('app', name), true);
    } finally {
      a.release();
      b.release();
    }
  });
});

describe('the engine-tool runner', () => {
  it("returns a non-zero exit as data, which engineCause keeps whole as a DreError's cause", async () => {
    const r = await run('sh', ['-c', 'echo half >&2; echo done >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.deepEqual(engineCause('sh', r, 'the log'), { tool: 'sh', code: 3, signal: null, stdout: '', stderr: 'half\ndone\n', log: 'the log' });
  });

  it('tells a command that ran over its time (timedOut, with its output so far) from one that could not start (cause)', async () => {
    const late = await run('sh', ['-c', 'echo started; exec sleep 5'], { timeoutMs: 100 }).catch((e: unknown) => e);
    assert.ok(late instanceof RunError && late.timedOut);
    assert.equal(late.result?.stdout, 'started\n');
    assert.equal(late.result?.signal, 'SIGKILL');
    const missing = await run('/nonexistent/tool', []).catch((e: unknown) => e);
    assert.ok(missing instanceof RunError && !missing.timedOut);
    assert.equal((missing.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });
});

describe('a kernel refusing to make a control group', () => {
  it('is named for why, never as a group that does not exist', () => {
    const err = (code: string) => Object.assign(new Error(`${code}: refused, mkdir '/sys/fs/cgroup/x'`), { code });
    assert.equal(mkdirRefusal(err('EACCES')), 'DRE_ERR_PERMISSION_DENIED');
    assert.equal(mkdirRefusal(err('EPERM')), 'DRE_ERR_PERMISSION_DENIED');
    assert.equal(mkdirRefusal(err('ENAMETOOLONG')), 'DRE_ERR_REQUEST_TOO_LONG');
    assert.equal(mkdirRefusal(err('ENOSPC')), 'DRE_ERR_DEVICE_BUSY');
    assert.equal(mkdirRefusal(err('EAGAIN')), 'DRE_ERR_DEVICE_BUSY');
  });
});

describe('the undo idiom (core/revert.ts)', () => {
  it("undoes the steps of failed work last first, passes over an undo that fails, and throws the work's own error", async () => {
    const log: string[] = [];
    const work = new Error('the work failed');
    assert.throws(
      () =>
        withRevert((r) => {
          r.add(() => log.push('undo 1'));
          r.add(() => {
            throw new Error('undo 2 failed too');
          });
          r.add(() => log.push('undo 3'));
          throw work;
        }),
      (e) => e === work,
    );
    assert.deepEqual(log, ['undo 3', 'undo 1']);
    await assert.rejects(
      withRevertAsync(async (r) => {
        r.add(() => log.push('async undo'));
        await sleep(1);
        throw work;
      }),
      (e) => e === work,
    );
    assert.deepEqual(log.at(-1), 'async undo');
  });

  it('undoes nothing when the work succeeds', async () => {
    const log: string[] = [];
    assert.equal(
      withRevert((r) => (r.add(() => log.push('undo')), 42)),
      42,
    );
    assert.equal(await withRevertAsync(async (r) => (r.add(() => log.push('undo')), 'ok')), 'ok');
    assert.deepEqual(log, []);
  });
});

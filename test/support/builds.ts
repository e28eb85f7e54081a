/** What both kinds' Debian base tests check of a build killed half-way and of one that fails. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { baseDir, basesDir, type Kind } from '../../src/core/paths.js';
import { sleep, waitFor } from '../../src/core/proc.js';
import { cli, cliAsync } from './env.js';

/** Whether any process's command line names `path`. */
function processNames(path: string): boolean {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .some((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path);
      } catch {
        return false;
      }
    });
}

/**
 * `dre-KIND base build debian NAME` SIGKILLed once mmdebstrap is at work leaves no process, mount or
 * base; the next build of NAME (one of a release that does not exist) clears the dead build's
 * staging directory and, failing, leaves none of its own.
 */
export async function killedAndFailedBuildsLeaveNothing(kind: Kind, name: string): Promise<void> {
  const tool = `dre-${kind}` as const;
  const { child, done } = cliAsync(tool, ['base', 'build', 'debian', name]);
  const staging = await waitFor(() => readdirSync(basesDir(kind)).find((e) => e.startsWith(`.staging-${name}-`)), 60_000, 20);
  assert.ok(staging, 'the build started');
  await sleep(1500);
  child.kill('SIGKILL');
  await done;
  assert.equal(await waitFor(() => (processNames(staging) ? undefined : true), 10_000, 50), true, 'mmdebstrap and its children died with the build');
  assert.equal(readFileSync('/proc/mounts', 'utf8').includes(staging), false, 'no mount of the build is in the host view');
  assert.equal(existsSync(baseDir(kind, name)), false);
  const bad = cli(tool, ['base', 'build', 'debian', '--release', 'no-such-release', name]);
  assert.equal(bad.code, 121, bad.stderr);
  assert.match(bad.stderr, /mmdebstrap failed/);
  assert.deepEqual(
    readdirSync(basesDir(kind)).filter((e) => e.startsWith('.')),
    [],
  );
  assert.equal(existsSync(baseDir(kind, name)), false);
}

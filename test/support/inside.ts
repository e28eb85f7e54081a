/** Helpers of the D-Aware tests: dre-app calls that must succeed, and shell scripts run inside a container. */
import assert from 'node:assert/strict';
import { cli } from './env.js';

export const app = (...args: string[]) => cli('dre-app', args);

/** Runs `dre-app ARGS`, asserting success; its stdout. */
export const ok = (...args: string[]) => {
  const r = app(...args);
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** Runs `script` with sh inside the container (stdin: `input`). */
export const inside = (name: string, script: string, input?: string) => cli('dre-app', ['exec', name, '--', 'sh', '-c', script], { input });
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The contents of `path` inside the container once it is there and not empty (up to 10 s). */
export async function readInside(name: string, path: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const r = inside(name, `cat ${path} 2>/dev/null`);
    if (r.code === 0 && r.stdout.trim()) return r.stdout;
    await sleep(100);
  }
  throw new Error(`${path} never appeared in ${name}`);
}

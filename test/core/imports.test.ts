/**
 * The shape of the code, checked without root or engines: no import circle anywhere in src, and no
 * import running upward between the layers (core under the drivers, the drivers under the daemon,
 * the facades and the CLIs; daware apart from the host side).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Module (path under src, without .ts) → the modules it imports statically (`import()` at run time is not an edge). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)\.js';/gms)].map((m) => relative(src, resolve(dirname(file), m[1])));
    g.set(relative(src, file).replace(/\.ts$/, ''), targets);
  }
  return g;
}

test('src has no import circle', () => {
  const g = graph();
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (m: string, path: string[]) => {
    if (state.get(m) === 'done') return;
    if (state.get(m) === 'open') {
      circles.push([...path.slice(path.indexOf(m)), m].join(' → '));
      return;
    }
    state.set(m, 'open');
    for (const t of g.get(m) ?? []) visit(t, [...path, m]);
    state.set(m, 'done');
  };
  for (const m of g.keys()) visit(m, []);
  assert.deepEqual(circles, []);
});

/** What each top-level directory may import besides itself. */
const ALLOWED: Record<string, string[]> = {
  core: [],
  daware: [],
  app: ['core'],
  // etcd, for a host in a cluster: below the QEMU driver, which claims shared containers there.
  cluster: ['core'],
  sys: ['core', 'cluster'],
  spec: ['core', 'app', 'sys'],
  daemon: ['core', 'app', 'sys', 'cluster'],
  cli: ['core', 'app', 'sys', 'daemon', 'cluster'],
  '.': ['core', 'app', 'sys', 'spec', 'daware'],
};

test('no import runs upward between the layers', () => {
  const upward: string[] = [];
  for (const [m, targets] of graph()) {
    const layer = m.includes('/') ? m.split('/')[0] : '.';
    for (const t of targets) {
      const to = t.includes('/') ? t.split('/')[0] : '.';
      if (to !== layer && !(ALLOWED[layer] ?? []).includes(to)) upward.push(`${m} → ${t}`);
    }
  }
  assert.deepEqual(upward, []);
});

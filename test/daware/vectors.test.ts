import { distDir } from '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sprintf } from '../../src/daware/printf.js';
import { compileStatic } from '../support/clib.js';

interface Vector {
  fmt: string;
  args: { type: string; value: string | null }[];
  expected: string;
}
const VECTORS: Vector[] = JSON.parse(readFileSync(join(distDir, '..', 'test', 'daware', 'vectors.json'), 'utf8')).vectors;

/** A vector's argument as JavaScript passes it to sprintf. */
function jsValue({ type, value }: Vector['args'][number]): unknown {
  if (value === null || type === 'str') return value;
  if (type === 'double') return Number(value);
  return type === 'uint64_t' || !Number.isSafeInteger(Number(value)) ? BigInt(value) : Number(value);
}

/** A vector's argument as a C expression of its type. */
function cValue({ type, value }: Vector['args'][number]): string {
  if (type === 'str') return value === null ? '(const char *)0' : JSON.stringify(value);
  if (type === 'double')
    return ({ Infinity: 'INFINITY', '-Infinity': '-INFINITY', NaN: 'NAN', '-0': '-0.0' } as Record<string, string>)[value!] ?? `(double)${value}`;
  if (type === 'uint64_t') return `(void *)${value}UL`;
  if (type === 'unsigned int') return `(unsigned int)${value}U`;
  if (type === 'unsigned long') return `${value}UL`;
  return type === 'long' ? `(long)${value}L` : `(int)${value}`;
}

/** One C program printing daware_format's result for every vector, hex-encoded, one per line. */
function cProgram(): string {
  const calls = VECTORS.map(
    (v) => `  n = daware_format(buf, sizeof buf, ${JSON.stringify(v.fmt)}${v.args.map((a) => `, ${cValue(a)}`).join('')});\n  hex(buf, n);`,
  );
  return `#include <math.h>
#include <stdio.h>
#include <string.h>
#include "daware.h"
static void hex(const char *s, int n) { for (int i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]); printf("\\n"); }
int main(void) {
  char buf[4096];
  int n;
${calls.join('\n')}
  /* A short buffer: cut and terminated, the whole length returned (vsnprintf's contract). */
  char small[5];
  n = daware_format(small, sizeof small, "%s-%d", "abcdef", 42);
  printf("%d %s\\n", n, small);
  n = daware_format(NULL, 0, "%d", 12345);
  printf("%d\\n", n);
  n = daware_format(buf, sizeof buf, NULL);
  printf("%d [%s]\\n", n, buf);
  return 0;
}
`;
}

const PYTHON = `import json, sys
sys.path.insert(0, sys.argv[1])
import daware
for v in json.load(open(sys.argv[2]))['vectors']:
    args = [None if a['value'] is None else a['value'] if a['type'] == 'str' else float(a['value']) if a['type'] == 'double' else int(a['value']) for a in v['args']]
    print(daware.sprintf(v['fmt'], *args).encode('latin-1').hex())
`;

describe('the printf vectors shared by the Node, C and Python libraries', () => {
  let dir: string;
  before(() => (dir = mkdtempSync('/tmp/dre-daware-vectors-')));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has vectors for every conversion, and for the ones it refuses to run (%n, %m, positional)', () => {
    assert.ok(VECTORS.length >= 20);
    for (const c of 'diouxXcsfFeEgGp%')
      assert.ok(
        VECTORS.some((v) => v.fmt.includes(c)),
        c,
      );
    assert.ok(VECTORS.some((v) => v.fmt.includes('%n') && v.expected.includes('%n')));
  });

  for (const v of VECTORS) {
    it(`Node formats ${JSON.stringify(v.fmt)} as the vector says`, () => {
      assert.equal(sprintf(v.fmt, ...v.args.map(jsValue)), v.expected);
    });
  }

  it("libdaware (daware_format) produces exactly the same text for every vector, and keeps vsnprintf's contract", () => {
    const src = join(dir, 'vectors.c');
    writeFileSync(src, cProgram());
    // -Wno-format: the vectors pass %n, %y and surplus arguments on purpose.
    compileStatic(src, join(dir, 'vectors'), ['-Wno-format', '-Wno-format-extra-args', '-lm']);
    const lines = execFileSync(join(dir, 'vectors'), { encoding: 'utf8' }).trimEnd().split('\n');
    const got = lines.slice(0, VECTORS.length).map((h) => Buffer.from(h, 'hex').toString('latin1'));
    assert.deepEqual(
      got,
      VECTORS.map((v) => v.expected),
    );
    assert.deepEqual(lines.slice(VECTORS.length), ['9 abcd', '5', '0 []']);
  });

  it('the Python module produces exactly the same text for every vector', () => {
    writeFileSync(join(dir, 'vectors.py'), PYTHON);
    const out = execFileSync('python3', [join(dir, 'vectors.py'), join(distDir, '..', 'python'), join(distDir, '..', 'test', 'daware', 'vectors.json')], {
      encoding: 'utf8',
    });
    assert.deepEqual(
      out
        .trimEnd()
        .split('\n')
        .map((h) => Buffer.from(h, 'hex').toString('latin1')),
      VECTORS.map((v) => v.expected),
    );
  });
});

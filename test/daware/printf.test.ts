import '../support/env.js';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { sprintf } from '../../src/daware/printf.js';

// Each case: a format and its arguments with their C types, formatted by libc's snprintf and by ours.
type Arg = ['int' | 'long' | 'unsigned int' | 'unsigned long' | 'double' | 'str' | 'uint64_t' | 'char', number | bigint | string | null];
const CASES: [string, ...Arg[]][] = [
  ['plain text, no conversions'],
  ['%d|%i|%5d|%-5d|%05d|%+d|% d', ['int', 42], ['int', -42], ['int', 42], ['int', 42], ['int', -42], ['int', 42], ['int', 42]],
  ['%.3d|%.0d|%5.0d|%-+8.4d|%08.3d', ['int', 7], ['int', 0], ['int', 0], ['int', 7], ['int', -7]],
  [
    '%u|%u|%lu|%x|%X|%#x|%#X|%#o|%o|%#o',
    ['unsigned int', 3000000000],
    ['int', -1],
    ['long', -1],
    ['int', 255],
    ['int', 255],
    ['int', 255],
    ['int', 255],
    ['int', 8],
    ['int', 8],
    ['int', 0],
  ],
  [
    '%hhd|%hd|%hhu|%hu|%lld|%ld|%jd|%zu',
    ['int', 300],
    ['int', 70000],
    ['int', -1],
    ['int', -1],
    ['long', -9007199254740991],
    ['long', 1234567890123],
    ['long', -5],
    ['unsigned long', 17],
  ],
  ['%#10x|%-#10o|%010x|%#010x|%.5x|%#.5x', ['int', 3054], ['int', 64], ['int', 3054], ['int', 3054], ['int', 171], ['int', 171]],
  ['%*d|%-*d|%*d|%.*d|%.*f', ['int', 6], ['int', 1], ['int', 6], ['int', 2], ['int', -6], ['int', 3], ['int', 4], ['int', 5], ['int', 2], ['double', 3.14159]],
  ['%c%c%c|%3c|%-3c|', ['int', 65], ['int', 98], ['int', 33], ['int', 120], ['int', 121]],
  ['%s|%10s|%-10s|%.2s|%10.3s|%-10.1s|', ['str', 'hello'], ['str', 'hi'], ['str', 'left'], ['str', 'truncate'], ['str', 'abcdef'], ['str', 'xyz']],
  ['%s|%.3s|%10s|', ['str', null], ['str', null], ['str', null]],
  [
    '%f|%.2f|%10.3f|%-10.1f|%010.2f|%+f|% f|%.0f|%#.0f',
    ['double', 3.14159],
    ['double', 2.675],
    ['double', -1.5],
    ['double', 9.96],
    ['double', -3.5],
    ['double', 1],
    ['double', 1],
    ['double', 2.5],
    ['double', 2.5],
  ],
  [
    '%.0f|%.0f|%.0f|%.1f|%.1f|%.2f|%.3f',
    ['double', 0.5],
    ['double', 1.5],
    ['double', 3.5],
    ['double', 0.25],
    ['double', 0.35],
    ['double', 1.005],
    ['double', 1.0005],
  ],
  ['%f|%f|%.20f|%.30f|%f', ['double', 1e21], ['double', 1.7976931348623157e308], ['double', 0.1], ['double', 1e-20], ['double', -0]],
  [
    '%e|%.2e|%E|%12.4e|%-12.1e|%+.0e|%#.0e|%e',
    ['double', 12345.678],
    ['double', 0.000123456],
    ['double', -1e100],
    ['double', 9.99995],
    ['double', 5e-324],
    ['double', 15],
    ['double', 25],
    ['double', 0],
  ],
  [
    '%g|%g|%g|%g|%g|%g|%G|%g',
    ['double', 100000],
    ['double', 1000000],
    ['double', 0.0001],
    ['double', 0.00001],
    ['double', 123.456],
    ['double', 1e-10],
    ['double', 1e-10],
    ['double', 0],
  ],
  [
    '%.0g|%.1g|%.2g|%.10g|%#g|%#.3g|%10.3g|%-10.2g|%010g',
    ['double', 123],
    ['double', 0.15],
    ['double', 99.5],
    ['double', 1 / 3],
    ['double', 1],
    ['double', 1],
    ['double', 3.14159],
    ['double', 2.5],
    ['double', -1.5],
  ],
  [
    '%f|%F|%e|%E|%g|%G|%+f|%5f|%-6f|%06f',
    ['double', Infinity],
    ['double', Infinity],
    ['double', -Infinity],
    ['double', Infinity],
    ['double', NaN],
    ['double', NaN],
    ['double', Infinity],
    ['double', Infinity],
    ['double', NaN],
    ['double', -Infinity],
  ],
  ['%p|%20p|%-20p|%p', ['uint64_t', 0x7ffd1234n], ['uint64_t', 0xdeadbeefn], ['uint64_t', 0x10n], ['uint64_t', 0n]],
  ['100%% sure|%5%|%-5d%%', ['int', 9]],
];

function cSnprintf(): (fmt: string, args: Arg[]) => string {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const snprintf = koffi.load('libc.so.6').func('int snprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, ...)');
  return (fmt, args) => {
    const buf = Buffer.alloc(4096);
    const n = snprintf(buf, buf.length, fmt, ...args.flatMap(([t, v]) => [t === 'char' ? 'int' : t, v])) as number;
    return buf.subarray(0, n).toString('latin1');
  };
}

describe('the printf formatter', () => {
  const c = cSnprintf();
  for (const [fmt, ...args] of CASES) {
    it(`formats ${JSON.stringify(fmt)} exactly as libc's snprintf does`, () => {
      assert.equal(sprintf(fmt, ...args.map(([, v]) => v)), c(fmt, args));
    });
  }

  it('rounds exact halves to even and prints the exact binary value, as glibc does', () => {
    assert.equal(sprintf('%.0f %.0f %.1f', 0.5, 2.5, 0.25), '0 2 0.2');
    assert.equal(sprintf('%.20f', 0.1), '0.10000000000000000555');
  });

  it('prints an unknown conversion as written and a missing argument as zero', () => {
    assert.equal(sprintf('%y|%d|%s', 1), '%y|1|(null)');
  });

  it('reads JavaScript bigints and numeric strings as integers', () => {
    assert.equal(sprintf('%d %x %lu', 2n ** 60n, '255', -1n), '1152921504606846976 ff 18446744073709551615');
  });
});

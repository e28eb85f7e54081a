import '../support/env.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as appSpec from '../../src/spec/app.js';
import * as sysSpec from '../../src/spec/sys.js';
import { app, sys } from '../../src/index.js';
import { RESOURCE } from '../../src/core/driver.js';
import { isDreError } from '../../src/core/errors.js';
import { fillResource, type ResourceValue } from '../../src/spec/common.js';

/** mulberry32: a small seeded generator, so a failure is the same on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A name that is valid but names no container, base, snapshot or cgroup of this root. */
const NOBODY = 'fuzz-nobody';

/** Values no caller should pass; none of them runs caller code that throws. */
function hostileValues(): unknown[] {
  const withGetters = {
    get type() {
      return 1;
    },
    get name() {
      return Object.create(null);
    },
    get value() {
      return Symbol('v');
    },
  };
  const readOnlyValue = Object.defineProperty({}, 'value', { value: 1, writable: false, enumerable: true });
  const nullProto = Object.create(null);
  const refusingProxy = new Proxy({}, { set: () => false, defineProperty: () => false, deleteProperty: () => false });
  const oddProxy = new Proxy({}, { get: (_t, k) => (k === 'type' ? 1 : k === Symbol.toPrimitive ? undefined : Object.create(null)), has: () => true });
  return [
    null,
    undefined,
    0,
    -1,
    1,
    11,
    1.5,
    -0,
    NaN,
    Infinity,
    -Infinity,
    2 ** 53,
    2 ** 31,
    10n,
    true,
    false,
    '',
    ' ',
    'x'.repeat(65),
    'x'.repeat(10_000),
    '../etc',
    '.hidden',
    '-dash',
    'a/b',
    'nul\0byte',
    'ü',
    NOBODY,
    Symbol('s'),
    () => 0,
    [],
    [1, 2],
    Object.freeze([]),
    {},
    Object.freeze({}),
    Object.seal({}),
    Object.preventExtensions({}),
    nullProto,
    Object.freeze(Object.create(null)),
    readOnlyValue,
    withGetters,
    Object.freeze(withGetters),
    refusingProxy,
    oddProxy,
    new Proxy([], {}),
    new Date(0),
    /re/,
    new Map(),
    Promise.resolve(1),
    { toString: () => 'web' },
    { valueOf: () => 12 },
    { [Symbol.toPrimitive]: () => 12 },
  ];
}

/** Handles, holders and structs of the right outline with hostile parts, for both kinds. */
function shapedValues(type: number): unknown[] {
  const handle = (extra: object) => ({ type, name: NOBODY, ...extra });
  const resource = (t: unknown, udata: unknown) => ({ type: t, udata });
  return [
    handle({}),
    Object.freeze(handle({})),
    Object.assign(Object.create(null), handle({})),
    handle({ name: Object.create(null) }),
    handle({ name: Symbol('n') }),
    handle({ type: Object.create(null) }),
    handle({ type: 10n }),
    new Proxy(handle({}), {}),
    { type: type === 1 ? 100 : 1, name: NOBODY },
    resource(1, { cpu: { parcent: 50 } }),
    resource(1, { cpu: { parcent: 12.5 } }),
    resource(1, 5),
    resource(1, Object.freeze({})),
    resource(2, { cpu: { cores: Object.create(null) } }),
    resource(2, { cpu: { cores: 10n } }),
    resource(3, { mem: { usage_in_bytes: Symbol('b') } }),
    resource(4, { mem: Object.freeze({}) }),
    resource(Object.create(null), {}),
    Object.freeze(resource(3, null)),
    { type, udata: Object.create(null) },
    { type, udata: { lxc: Object.create(null), kvm: Object.create(null) } },
    { type, udata: { lxc: { port: Object.create(null), base: Symbol('b') }, kvm: { memory_size: 1.5, base: 10n, rootfs: Object.create(null) } } },
  ];
}

/** Arguments that might really make a container: every create gets data that fails validation. */
const createData = (type: number): unknown[] => [
  null,
  undefined,
  {},
  Object.freeze({}),
  Object.create(null),
  { type: Object.create(null) },
  { type: type === 1 ? 100 : 1, udata: {} },
  { type, udata: Object.create(null) },
  { type, udata: { lxc: { port: 1.5 }, kvm: { memory_size: -1 } } },
  { type, udata: 5 },
];

const OUTCOME_MS = 20_000;

async function outcome(fn: (...a: unknown[]) => unknown, args: unknown[]): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${OUTCOME_MS} ms`)), OUTCOME_MS)));
  try {
    return await Promise.race([Promise.resolve().then(() => fn(...args)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describeArgs(args: unknown[]): string {
  return args
    .map((a) => {
      try {
        if (typeof a === 'string') return JSON.stringify(a.slice(0, 20));
        if (typeof a === 'symbol' || typeof a === 'bigint') return a.toString();
        if (typeof a === 'object' && a !== null) return Object.getPrototypeOf(a) === null ? '[null-proto]' : Object.isFrozen(a) ? '[frozen]' : '[object]';
        return String(a);
      } catch {
        return '[?]';
      }
    })
    .join(', ');
}

for (const [kind, spec, type] of [
  ['app', appSpec, 1],
  ['sys', sysSpec, 100],
] as const) {
  describe(`dre/${kind}: hostile arguments`, () => {
    const functions = Object.entries(spec).filter(([n, f]) => n.startsWith('dre_') && typeof f === 'function') as [string, (...a: unknown[]) => unknown][];

    it(`exports every function of the spec (${functions.length})`, () => {
      // The spec's section 1.2.5 has 41 functions, 1.3.5 has 37.
      assert.equal(functions.length, kind === 'app' ? 41 : 37);
    });

    it('never makes a dre_* function throw or reject: each resolves to a number, a handle or null', { timeout: 900_000 }, async () => {
      const rnd = random(kind === 'app' ? 19 : 1919);
      const before = await (kind === 'app' ? app.list() : sys.list()); // the suite's other files share this root
      const pool = [...hostileValues(), ...shapedValues(type)];
      const pick = (xs: unknown[]) => xs[Math.floor(rnd() * xs.length)];
      const failures: string[] = [];
      let calls = 0;
      const seen = new Set<unknown>();
      for (const [fname, fn] of functions) {
        const creates = fname.endsWith('_create_container');
        for (let round = 0; round < 60; round++) {
          const arity = Math.max(fn.length, 1) + (round % 3 === 0 ? 1 : 0);
          const args = Array.from({ length: arity }, (_, i) => (creates && i === 1 ? pick(createData(type)) : pick(pool)));
          calls++;
          try {
            const r = await outcome(fn, args);
            seen.add(typeof r === 'number' ? r : r === null ? null : 'handle');
            const handleLike = typeof r === 'object' && r !== null && typeof (r as { name?: unknown }).name === 'string';
            if (!(Number.isInteger(r) || r === null || handleLike)) failures.push(`${fname}(${describeArgs(args)}) resolved to ${String(r)}`);
          } catch (e) {
            failures.push(`${fname}(${describeArgs(args)}) threw ${(e as Error)?.stack?.split('\n').slice(0, 2).join(' ') ?? String(e)}`);
          }
        }
      }
      assert.ok(calls >= functions.length * 60);
      // Past argument checks too: some calls reached the container lookup.
      for (const code of [spec.DRE_ERR_NULL_POINTER, spec.DRE_ERR_INVALID_ARGUMENT, spec.DRE_ERR_REQUEST_TOO_LONG, spec.DRE_ERR_CONTAINER_NONEXISTENCE, null]) {
        assert.ok(seen.has(code), `no call answered ${code}: ${[...seen].join(' ')}`);
      }
      assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${calls} calls failed`);
      // Nothing was made on the way.
      assert.deepEqual(await (kind === 'app' ? app.list() : sys.list()), before);
    });

    it('answers the examples of issue 19 with a code', async () => {
      const list = kind === 'app' ? spec.dre_app_get_container_list : sysSpec.dre_sys_get_container_list;
      assert.equal(await list(Object.freeze({}) as never), spec.DRE_ERR_INVALID_ARGUMENT);
      assert.equal(await list(Object.seal({}) as never), spec.DRE_ERR_INVALID_ARGUMENT);
      const h = { type, name: NOBODY } as never;
      if (kind === 'app') {
        assert.equal(await appSpec.dre_app_register_vpid(h, Object.create(null)), appSpec.DRE_ERR_INVALID_ARGUMENT);
        assert.equal(await appSpec.dre_app_unbind_vpid(h, 'cg', Object.create(null)), appSpec.DRE_ERR_INVALID_ARGUMENT);
        assert.equal(await appSpec.dre_app_get_base_list(Object.freeze({}) as never), appSpec.DRE_ERR_INVALID_ARGUMENT);
      } else {
        const r = await sysSpec.dre_sys_destroy_cgroup(h, Object.create(null));
        assert.ok(r === sysSpec.DRE_ERR_INVALID_ARGUMENT || r === sysSpec.DRE_ERR_CONTAINER_NONEXISTENCE, `code ${r}`);
        assert.equal(await sysSpec.dre_sys_get_base_list(Object.freeze({}) as never), sysSpec.DRE_ERR_INVALID_ARGUMENT);
      }
    });
  });
}

describe('get_resource writing into a hostile struct', () => {
  it('fills a plain struct (CPU % rounded) and refuses frozen, sealed or primitive parts with INVALID_ARGUMENT', () => {
    const plain = { type: RESOURCE.CPU, udata: {} } as ResourceValue;
    fillResource(plain, { type: RESOURCE.CPU, percent: 66.9 });
    assert.equal(plain.udata.cpu?.parcent, 67);
    const nullProto = Object.assign(Object.create(null), { type: RESOURCE.MEMORY });
    fillResource(nullProto, { type: RESOURCE.MEMORY, bytes: 5 });
    assert.equal(nullProto.udata.mem.usage_in_bytes, 5);
    const hostile = [
      Object.freeze({ type: RESOURCE.CPU }),
      Object.seal({ type: RESOURCE.CPU }),
      { type: RESOURCE.CPU, udata: 5 },
      { type: RESOURCE.CPU, udata: Object.freeze({}) },
      new Proxy({ type: RESOURCE.CPU }, { set: () => false }),
    ];
    for (const target of hostile) {
      assert.throws(
        () => fillResource(target as ResourceValue, { type: RESOURCE.CPU, percent: 1 }),
        (e: unknown) => isDreError(e) && e.errName === 'DRE_ERR_INVALID_ARGUMENT',
      );
    }
  });
});

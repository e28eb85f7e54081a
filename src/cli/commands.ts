/** Subcommand builders shared by the CLIs: one container, container + tag, listings, resource words. */
import { RESOURCE, type Resource, type ResourceType } from '../core/driver.js';
import { dreError } from '../core/errors.js';
import { intArg, parse, printJson, type Command } from './common.js';

export const one = (usage: string, summary: string, name: string, fn: (n: string) => Promise<void>): Command => ({
  name,
  usage,
  summary,
  run: async (args) => {
    const { positionals } = parse(args, {}, 1);
    await fn(positionals[0]);
  },
});

export const tagged = (name: string, summary: string, fn: (n: string, tag: string) => Promise<void>): Command => ({
  name,
  usage: 'NAME TAG',
  summary,
  run: async (args) => {
    const { positionals } = parse(args, {}, 2);
    await fn(positionals[0], positionals[1]);
  },
});

export const listing = (name: string, usage: string, summary: string, fn: (args: string[]) => Promise<string[]>): Command => ({
  name,
  usage: `${usage} [--json]`,
  summary,
  run: async (args) => {
    const { values, positionals } = parse(args, {}, usage ? 1 : 0);
    const items = await fn(positionals);
    if (values.json) printJson(items);
    else for (const i of items) process.stdout.write(`${i}\n`);
  },
});

const RESOURCE_NAMES: Record<string, ResourceType> = { cpu: RESOURCE.CPU, cores: RESOURCE.CPU_CORE, memory: RESOURCE.MEMORY, memsw: RESOURCE.MEMSW };

export function resourceType(word: string | undefined): ResourceType {
  const t = word === undefined ? undefined : RESOURCE_NAMES[word];
  if (t === undefined) throw dreError('DRE_ERR_INVALID_ARGUMENT', `resource must be one of ${Object.keys(RESOURCE_NAMES).join(', ')}, not ${JSON.stringify(word)}`);
  return t;
}

export function resource(word: string, value: string | undefined): Resource {
  const type = resourceType(word);
  if (type === RESOURCE.CPU_CORE) return { type, cores: value };
  const n = intArg(value, word);
  return type === RESOURCE.CPU ? { type, percent: n } : { type, bytes: n };
}

export const pidOf = (text: string, what = 'pid') => intArg(text, what)!;

/** Splits `NAME [--flags] -- CMD...` into the words before `--` and the command after it. */
export function splitCommand(args: string[]): { before: string[]; argv: string[] } {
  const cut = args.indexOf('--');
  return cut < 0 ? { before: args.slice(0, 1), argv: args.slice(1) } : { before: args.slice(0, cut), argv: args.slice(cut + 1) };
}

/** Every method of `T`, resolving after `T` is loaded. */
export type Lazy<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never };

/**
 * A module (or driver) loaded on first use: a CLI run loads only what its command needs, so
 * `status` pays for the state module and the core, not for every driver module.
 */
export function lazy<T extends object>(load: () => Promise<T>): Lazy<T> {
  let loaded: Promise<T> | undefined;
  return new Proxy({} as Lazy<T>, {
    get: (_, key) => async (...args: unknown[]) => {
      const target = await (loaded ??= load());
      return (target[key as keyof T] as (...a: unknown[]) => unknown)(...args);
    },
  });
}

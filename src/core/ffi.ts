/**
 * The one way the host side binds C libraries (koffi): koffi itself is loaded on first use only (it
 * costs ≈ 70 ms, which read-only CLI calls never pay), and each library once per process. A library
 * that is missing says which Debian package brings it (the set-up installs them all). The D-Aware
 * library binds its own: it runs inside containers and imports nothing of the host side.
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');
export type Library = ReturnType<Koffi['load']>;

let loaded: Koffi | undefined;
const libraries = new Map<string, Library>();

/** koffi, loaded now if it was not yet. */
export function koffi(): Koffi {
  loaded ??= createRequire(import.meta.url)('koffi') as Koffi;
  return loaded;
}

/** Whether this process has loaded koffi already (then a bound call costs microseconds). */
export const koffiLoaded = (): boolean => loaded !== undefined;

/** The shared library `soname`, loaded once; `pkg` is the Debian package named when it is missing. */
export function library(soname: string, pkg: string): Library {
  let lib = libraries.get(soname);
  if (!lib) {
    try {
      lib = koffi().load(soname);
    } catch (e) {
      throw new Error(`${soname} cannot be loaded (Debian package ${pkg}; the set-up installs it): ${(e as Error).message}`, { cause: e });
    }
    libraries.set(soname, lib);
  }
  return lib;
}

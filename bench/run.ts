/**
 * `npm run bench`: runs every bench/<area>.js module (each exports `bench(): Promise<void>`) in turn.
 * `npm run bench -- sys` runs only the modules whose name contains "sys".
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv[2];
const modules = readdirSync(here).filter(
  (f) => f.endsWith('.js') && !['run.js', 'stats.js', 'rawlxc.js', 'cluster-support.js'].includes(f) && (!only || f.includes(only)),
);
for (const file of modules.sort()) {
  console.log(`\n== ${file.replace(/\.js$/, '')}`);
  const mod = (await import(pathToFileURL(join(here, file)).href)) as { bench: () => Promise<void> };
  await mod.bench();
}

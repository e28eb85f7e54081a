// The CLIs as one bundle each (esbuild), for start-up time: Node resolves and reads one file and a
// few lazily loaded chunks instead of ~40 modules (README, "Start-up"). Run by `npm run build` after tsc.
// The bundle sits in dist/src/bin, at the depth of dist/src/<area>, so the paths modules build from
// import.meta.url (../../../package.json, ../app/forwarder.js) mean the same inlined.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

const outdir = 'dist/src/bin';
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['dist/src/cli/dre-app.js', 'dist/src/cli/dre-sys.js'],
  bundle: true,
  splitting: true, // the lazy imports stay lazy: each command loads only the chunks it needs
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir,
  chunkNames: '[name]-[hash]',
  external: ['koffi', 'etcd3', 'cockatiel'], // koffi is native, etcd3 reads its .proto files beside itself (cockatiel: its policies, one copy): they load from node_modules
  // commander is CommonJS: its require() of Node's modules needs a real require in an ES module.
  banner: { js: "import { createRequire as __dreRequire } from 'node:module'; const require = __dreRequire(import.meta.url);" },
  logLevel: 'warning',
});
for (const prog of ['dre-app', 'dre-sys']) chmodSync(`${outdir}/${prog}.js`, 0o755);

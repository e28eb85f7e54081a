// The CLIs as one CommonJS bundle each (esbuild), for start-up time (README, "Start-up"): Node reads
// one file through its CommonJS loader (its ES-module loader costs ≈ 10 ms more to start and link the
// chunks), and scripts/cli-start.cjs runs it from a V8 code cache. Run by `npm run build` after tsc.
// The bundle sits in dist/src/bin, at the depth of dist/src/<area>, so the paths modules build from
// import.meta.url (../../../package.json) mean the same inlined.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const outdir = 'dist/src/bin';

// commander requires node:child_process when it loads, for subcommands run as separate programs, which
// ours never are; loading it (with net, dgram and the streams) costs ≈ 4 ms of every start. Commander
// gets it on first use instead (it only reads properties of it, e.g. childProcess.spawn).
const lazyChildProcessInCommander = {
  name: 'lazy-child-process-in-commander',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'dre-lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'dre-lazy' }, () => ({
      contents: "let m; module.exports = new Proxy({}, { get: (_, key) => (m ??= require('node:child_process'))[key] });",
      loader: 'js',
    }));
  },
};
rmSync(outdir, { recursive: true, force: true });
for (const prog of ['dre-app', 'dre-sys']) {
  await build({
    entryPoints: [`dist/src/cli/${prog}.js`],
    bundle: true,
    format: 'cjs', // lazy import()s become require()s run when first needed: a command evaluates only the modules it uses
    // Those of the packages left outside (etcd3, cockatiel: CommonJS both) too: an import() in a vm.Script run from a code
    // cache finds no loader in Node 20 (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
    supported: { 'dynamic-import': false },
    platform: 'node',
    target: 'node20',
    outfile: `${outdir}/${prog}.cjs`,
    external: ['koffi', 'etcd3', 'cockatiel'], // koffi is native, etcd3 reads its .proto files beside itself (cockatiel: its policies, one copy): they load from node_modules
    define: { 'import.meta.url': '__dreModuleUrl' },
    banner: { js: "const __dreModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins: [lazyChildProcessInCommander],
    logLevel: 'warning',
  });
  // The entry's #! line stays in the bundle, where it is no JavaScript: cli-start.cjs compiles it as a function body.
  const bundle = `${outdir}/${prog}.cjs`;
  writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/^#!.*\n/, ''));
  chmodSync(bundle, 0o644); // data for cli-start.cjs, not a program
  writeFileSync(`${outdir}/${prog}.js`, `#!/usr/bin/env node\nrequire('./cli-start.cjs').run(require('node:path').join(__dirname, '${prog}.cjs'));\n`);
  chmodSync(`${outdir}/${prog}.js`, 0o755);
}
copyFileSync('scripts/cli-start.cjs', `${outdir}/cli-start.cjs`);
writeFileSync(`${outdir}/package.json`, '{ "type": "commonjs" }\n'); // the .js starters here are CommonJS
// The first code caches, so that a copy installed read-only starts from one too.
for (const prog of ['dre-app', 'dre-sys']) execFileSync(process.execPath, [`${outdir}/${prog}.js`, '--version'], { stdio: 'ignore' });

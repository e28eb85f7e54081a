'use strict';
// Starts a CLI bundle (scripts/bundle-cli.mjs) through a V8 code cache kept beside it: with the cache,
// Node does not parse and compile the ~650 KB bundle at each start (≈ 13 ms here), it reads the code V8
// made before. The cache lives beside the bundle, never in a shared temporary directory: V8 checks
// little more than the source's length before it runs cached code, so a cache someone else can write
// would run their code as the caller (often root). The cache's first line names the bundle's size and
// mtime, so a rebuilt bundle never meets an old cache, and the commands it has learnt: the first run of
// a command makes the cache again at its exit, with the functions that command compiled (≈ 5 ms of a
// status at each later start). Where the directory is not writable (an installed, read-only copy) the
// cache stays as the build made it.
const { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname } = require('node:path');
const { Script } = require('node:vm');

const MAX_LEARNT = 64;

exports.run = (file) => {
  const cacheFile = file.replace(/\.cjs$/, '.v8cache');
  const st = statSync(file);
  const stamp = `${st.size}:${st.mtimeMs}`;
  const command = /^[-a-z]{1,32}$/.test(process.argv[2] ?? '') ? process.argv[2] : undefined;
  let cachedData;
  let learnt = [];
  try {
    const cache = readFileSync(cacheFile);
    const eol = cache.indexOf(10);
    const [size, mtime, commands = ''] = cache.subarray(0, eol).toString('latin1').split(':');
    if (eol > 0 && `${size}:${mtime}` === stamp) {
      cachedData = cache.subarray(eol + 1);
      learnt = commands.split(',').filter(Boolean);
    }
  } catch {
    /* no cache yet */
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (script.cachedDataRejected) learnt = [];
  const learns = command !== undefined && !learnt.includes(command) && learnt.length < MAX_LEARNT;
  if (cachedData === undefined || script.cachedDataRejected || learns) {
    // Made at exit, so the functions this run compiled are in it too.
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}`;
      const header = `${stamp}:${[...learnt, ...(learns ? [command] : [])].join(',')}\n`;
      try {
        writeFileSync(tmp, Buffer.concat([Buffer.from(header, 'latin1'), script.createCachedData()]), { mode: 0o644 });
        renameSync(tmp, cacheFile);
      } catch {
        try {
          unlinkSync(tmp);
        } catch {
          /* never made */
        }
      }
    });
  }
  const mod = new Module(file, module);
  mod.filename = file;
  script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, dirname(file));
};

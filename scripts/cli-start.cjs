'use strict';
// Starts a CLI bundle (scripts/bundle-cli.mjs) through a V8 code cache kept beside it: with the cache,
// Node does not parse and compile the ~650 KB bundle at each start (≈ 13 ms here), it reads the code V8
// made the last time. The cache lives beside the bundle, never in a shared temporary directory: V8
// checks little more than the source's length before it runs cached code, so a cache someone else can
// write would run their code as the caller (often root). The cache's first line names the bundle's
// size and mtime, so a rebuilt bundle never meets the old cache. Where the directory is not writable
// (an installed, read-only copy), the bundle is compiled at each start, as without a cache.
const { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname } = require('node:path');
const { Script } = require('node:vm');

exports.run = (file) => {
  const cacheFile = file.replace(/\.cjs$/, '.v8cache');
  const st = statSync(file);
  const stamp = Buffer.from(`${st.size}:${st.mtimeMs}\n`);
  let cachedData;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.subarray(0, stamp.length).equals(stamp)) cachedData = cache.subarray(stamp.length);
  } catch {
    /* no cache yet */
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    // Made at exit, so the functions this run compiled are in it too.
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}`;
      try {
        writeFileSync(tmp, Buffer.concat([stamp, script.createCachedData()]), { mode: 0o644 });
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

/**
 * The kernel's nftables through libnftables (Debian's libnftables1, the library the `nft` tool is
 * built on), in process through koffi: a command costs ≈ 30 µs where forking `nft` costs ≈ 3 ms.
 * Input is nft's own command language; listings come back as nft's JSON (`nft -j`). Bound on first use.
 */
import { library } from './ffi.js';

/** A command libnftables refused; `stderr` is its message (what `nft` would print), `enoent` a missing table, map or element. */
export class NftError extends Error {
  constructor(
    readonly commands: string,
    readonly stderr: string,
  ) {
    super(`nft ${commands.trim().split('\n')[0]}: ${stderr.trim().split('\n')[0]}`);
    this.name = 'NftError';
  }

  get enoent(): boolean {
    return /No such file or directory/.test(this.stderr);
  }
}

interface Lib {
  run: (ctx: unknown, commands: string) => number;
  output: (ctx: unknown) => string | null;
  error: (ctx: unknown) => string | null;
  ctx: unknown;
}

let lib: Lib | undefined;
const NFT_CTX_OUTPUT_JSON = 1 << 4;

function bind(): Lib {
  if (!lib) {
    const so = library('libnftables.so.1', 'libnftables1');
    const ctx = (so.func('void *nft_ctx_new(uint32_t)') as (f: number) => unknown)(0);
    // Output and errors go to buffers the calls below read (each read empties its buffer).
    (so.func('int nft_ctx_buffer_output(void *)') as (c: unknown) => number)(ctx);
    (so.func('int nft_ctx_buffer_error(void *)') as (c: unknown) => number)(ctx);
    (so.func('void nft_ctx_output_set_flags(void *, unsigned int)') as (c: unknown, f: number) => void)(ctx, NFT_CTX_OUTPUT_JSON);
    lib = {
      ctx,
      run: so.func('int nft_run_cmd_from_buffer(void *, const char *)') as Lib['run'],
      output: so.func('const char *nft_ctx_get_output_buffer(void *)') as Lib['output'],
      error: so.func('const char *nft_ctx_get_error_buffer(void *)') as Lib['error'],
    };
  }
  return lib;
}

/**
 * How often a batch is run when the kernel fails it with EINTR ("Interrupted system call"), as it
 * sometimes does while other processes change the ruleset at the same time (seen with 60 parallel
 * starts adding port forwards while other roots' tables changed). The kernel aborts a failed batch
 * whole, so running it again is safe.
 */
const INTERRUPTED_TRIES = 10;

/** Runs nft commands (one batch: all or nothing); resolves to what they printed, or throws NftError. */
export function nft(commands: string): string {
  const l = bind();
  for (let attempt = 1; ; attempt++) {
    const code = l.run(l.ctx, commands);
    const out = l.output(l.ctx) ?? '';
    const err = l.error(l.ctx) ?? '';
    if (code === 0) return out;
    if (attempt < INTERRUPTED_TRIES && /Interrupted system call/.test(err)) continue;
    throw new NftError(commands, err || `libnftables returned ${code}`);
  }
}

/** The objects of a listing command (`list table ...`), each `{ table: ... }`, `{ map: ... }`, ... */
export function nftList(command: string): Record<string, unknown>[] {
  const out = nft(command);
  return out ? ((JSON.parse(out) as { nftables: Record<string, unknown>[] }).nftables ?? []) : [];
}

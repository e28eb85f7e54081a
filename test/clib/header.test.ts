import '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as A from '../../src/spec/app.js';
import * as S from '../../src/spec/sys.js';
import { DRE_ERR } from '../../src/core/errors.js';
import { sourceDir } from './vectors.js';

/** The DRE_* constants the TypeScript spec layer exports (dre/app and dre/sys), by name. */
const tsConstants = new Map<string, number>(
  [...Object.entries(A), ...Object.entries(S)].filter(([k, v]) => k.startsWith('DRE_') && typeof v === 'number') as [string, number][],
);

/** Compiles and runs a C program with both installed libraries' flags; returns its stdout. */
function compileAndRun(source: string): string {
  const dir = mkdtempSync(join(process.env.DRE_TEST_TMP!, 'clib-h-'));
  writeFileSync(join(dir, 'h.c'), source);
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'dreapp', 'dresys'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', '-o', join(dir, 'h'), join(dir, 'h.c'), ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  return execFileSync(join(dir, 'h'), { encoding: 'utf8' });
}

describe('dre_app.h and dre_sys.h as the spec prints them', () => {
  it('every constant has the value the TypeScript spec layer exports, compiled', () => {
    const names = [...tsConstants.keys()];
    const out = compileAndRun(
      `#include <dre_app.h>\n#include <dre_sys.h>\n#include <stdio.h>\nint main(void) {\n${names.map((n) => `  printf("${n} %d\\n", (int)${n});`).join('\n')}\n  return 0;\n}\n`,
    );
    const got = new Map(
      out
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
    );
    assert.deepEqual(Object.fromEntries(got), Object.fromEntries(tsConstants));
    for (const [name, code] of Object.entries(DRE_ERR)) assert.equal(got.get(name), code, name);
  });

  it('declares no DRE_ constant the TypeScript layer lacks', () => {
    const text = ['dre_common.h', 'dre_app.h', 'dre_sys.h'].map((f) => readFileSync(join(sourceDir, '..', '..', 'c', 'dre', f), 'utf8')).join('\n');
    const declared = new Set([...text.matchAll(/^\s+(DRE_[A-Z_]+)\b/gm)].map((m) => m[1]));
    assert.deepEqual(
      [...declared].filter((n) => !tsConstants.has(n)),
      [],
    );
  });

  it("has the spec's types and field names, typos included (parcent), and the structs the spec means", () => {
    const out = compileAndRun(`#include <dre_app.h>
#include <dre_sys.h>
#include <stdio.h>
int main(void) {
  dre_return_t r = 0; dre_name_t n = "x"; dre_list_t l = &n; dre_err_t e = DRE_ERR_NULL_POINTER;
  dre_app_data ad; ad.type = DRE_APP_CONTAINER_TYPE_LXC; ad.udata.lxc.port = 22; ad.udata.lxc.base = "b";
  dre_app_handle ah = { DRE_APP_CONTAINER_TYPE_LXC, "web" };
  dre_app_pid_t p = { .pid = 1, .vpid = 2 }; dre_app_pid_t *pp[] = { &p, NULL }; dre_app_pid_list_t pl = pp; dre_pid_list_t pl2 = pl;
  dre_app_resource_value_t ar; ar.type = DRE_APP_CONTAINER_RESOURCE_CPU; ar.udata.cpu.parcent = 5; ar.udata.cpu.cores = "0";
  ar.udata.mem.usage_in_bytes = 1; ar.udata.mem.memsw_usage_in_bytes = 2;
  dre_app_resource_t art = DRE_APP_CONTAINER_RESOURCE_MEMSW; dre_app_status_t ast = DRE_APP_CONTAINER_STATUS_BUSY; dre_app_type_t aty = ah.type;
  dre_sys_data sd; sd.type = DRE_SYS_CONTAINER_TYPE_KVM; sd.udata.kvm.memory_size = 192; sd.udata.kvm.base = "b"; sd.udata.kvm.rootfs = "/dev/sdb1";
  dre_sys_handle sh = { DRE_SYS_CONTAINER_TYPE_KVM, "vm" };
  dre_sys_resource_value_t sr; sr.type = DRE_SYS_CONTAINER_RESOURCE_CPU_CORE; sr.udata.cpu.cores = "0-1"; sr.udata.mem.usage_in_bytes = 3;
  dre_sys_resource_t srt = sr.type; dre_sys_status_t sst = DRE_SYS_CONTAINER_STATUS_STOP; dre_sys_type_t sty = sh.type;
  /* port and base (memory_size, base, rootfs) are set together: the spec's unions would overwrite each other. */
  printf("%d %s %d %s %s %d %d %d %d %d %d %d %d %d %d %s %d\\n", ad.udata.lxc.port, ad.udata.lxc.base, sd.udata.kvm.memory_size, sd.udata.kvm.base,
         sd.udata.kvm.rootfs, r, (int)e, pl2[0]->vpid, (int)art, (int)ast, (int)aty, (int)srt, (int)sst, (int)sty, ar.udata.mem.memsw_usage_in_bytes, l[0], sr.udata.mem.usage_in_bytes);
  return 0;
}
`);
    assert.equal(out.trim(), '22 b 192 b /dev/sdb1 0 -201 2 4 14 1 2 11 100 2 x 3');
  });
});

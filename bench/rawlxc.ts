/** The raw side of the LXC benches: a plain LXC container with the exact config D-RE wrote for another one. */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lxcPath } from '../src/app/layout.js';
import { makeOwnedDir } from '../src/core/access.js';
import { rootIdRange } from '../src/app/userns.js';

/**
 * Makes container `name` under `rawPath` from D-RE container `model`'s config (same base, overlay layout
 * and id map; its paths moved to the raw container's), as `lxc-create -t none` plus a config would.
 */
export function makeRawContainer(rawPath: string, name: string, model: string, config: string): void {
  const dir = join(rawPath, name);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(rawPath, 0o711);
  makeOwnedDir(join(dir, 'upper'), rootIdRange());
  makeOwnedDir(join(dir, 'work'), rootIdRange(), 0o700);
  mkdirSync(join(dir, 'rootfs'));
  const text = readFileSync(config, 'utf8')
    .replaceAll(join(lxcPath(), model), dir)
    .replaceAll(`/app/${model}`, `/raw/${name}`)
    .replace(/lxc\.uts\.name = .*/, `lxc.uts.name = ${name}`);
  writeFileSync(join(dir, 'config'), text);
  // Its run dir with an (empty) D-Aware registry, so LXC makes the same mounts for both.
  mkdirSync(join(process.env.DRE_RUNDIR!, 'raw', name, 'daware'), { recursive: true, mode: 0o711 });
}

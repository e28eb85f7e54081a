import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recordPath, snapshotPath } from '../../src/app/layout.js';
import { baseRecordPath } from '../../src/app/base.js';
import { DRE_ERR } from '../../src/core/errors.js';
import { containerDir, containersDir, stateRoot } from '../../src/core/paths.js';
import { cli, uniqueName } from '../support/env.js';

const UNKNOWN = -DRE_ERR.DRE_ERR_CONTAINER_UNKNOWN_STATUS;
const ok = (args: string[]) => {
  const r = cli('dre-app', args);
  assert.equal(r.code, 0, `dre-app ${args.join(' ')}: ${r.stderr}`);
  return r;
};
const addressOf = (name: string) => JSON.parse(readFileSync(recordPath(name), 'utf8')).address as string;

describe('a damaged record of one container', () => {
  it('fails only that container, with UNKNOWN_STATUS naming the file; list shows the rest; destroy works', () => {
    const [torn, whole] = [uniqueName('torn'), uniqueName('whole')];
    ok(['create', torn, '--no-network']);
    ok(['create', whole, '--no-network']);
    writeFileSync(recordPath(torn), '');

    const list = cli('dre-app', ['list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { name: string; status: string }[];
    assert.deepEqual(rows.find((r) => r.name === whole)?.status, 'STOP');
    assert.deepEqual(rows.find((r) => r.name === torn)?.status, 'UNKNOWN');
    assert.match(list.stderr, new RegExp(`${torn}: DRE_ERR_CONTAINER_UNKNOWN_STATUS: .*${recordPath(torn).replace(/[.]/g, '\\.')}`));

    for (const cmd of ['start', 'status', 'snapshots']) {
      const r = cli('dre-app', [cmd, torn]);
      assert.equal(r.code, UNKNOWN, `${cmd}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /^dre-app: DRE_ERR_CONTAINER_UNKNOWN_STATUS: .*dre\.json is damaged \(empty\); restore the file, or remove the container with dre-app destroy/,
      );
      assert.doesNotMatch(r.stderr, /internal error|    at /);
    }
    ok(['destroy', torn]);
    assert.equal(existsSync(containerDir('app', torn)), false);
    ok(['status', whole]);
    ok(['destroy', whole]);
  });

  it('with a field of the wrong type fails start with UNKNOWN_STATUS naming the field, not a TypeError', () => {
    const name = uniqueName('badtype');
    ok(['create', name, '--no-network']);
    const rec = JSON.parse(readFileSync(recordPath(name), 'utf8'));
    writeFileSync(recordPath(name), JSON.stringify({ ...rec, base: 5, layers: 'x' }));
    const r = cli('dre-app', ['start', name]);
    assert.equal(r.code, UNKNOWN, r.stderr);
    assert.match(r.stderr, /field "base" must be a string/);
    ok(['destroy', name]);
  });

  it('accepts the optional fields privileged (boolean) and idmap (object), and refuses them with other types', () => {
    const name = uniqueName('optional');
    ok(['create', name, '--no-network']);
    const rec = JSON.parse(readFileSync(recordPath(name), 'utf8'));
    writeFileSync(recordPath(name), JSON.stringify({ ...rec, privileged: true, idmap: { uid: [0, 100000, 65536] } }));
    ok(['status', name]);
    writeFileSync(recordPath(name), JSON.stringify({ ...rec, privileged: 'yes' }));
    assert.equal(cli('dre-app', ['status', name]).code, UNKNOWN);
    ok(['destroy', name]);
  });

  it('of a system container fails only that container; dre-sys list shows it as UNKNOWN', () => {
    const name = uniqueName('sysdamaged');
    mkdirSync(containerDir('sys', name), { recursive: true });
    writeFileSync(join(containerDir('sys', name), 'dre.json'), '{"name": ');
    const list = cli('dre-sys', ['list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as { name: string; status: string }[]).find((r) => r.name === name)?.status, 'UNKNOWN');
    try {
      const r = cli('dre-sys', ['status', name]);
      assert.equal(r.code, UNKNOWN, r.stderr);
      assert.match(r.stderr, /dre\.json is damaged \(not valid JSON\)/);
    } finally {
      rmSync(containerDir('sys', name), { recursive: true, force: true }); // the suite's other files share this root
    }
  });
});

describe('damaged shared records', () => {
  it('a torn leases.json is rebuilt from the containers: create works and never reuses an address', () => {
    const [a, b] = [uniqueName('lease'), uniqueName('lease')];
    ok(['create', a]);
    writeFileSync(join(stateRoot(), 'app', 'leases.json'), '{"x": ');
    ok(['create', b]);
    assert.notEqual(addressOf(a), addressOf(b));
    const leases = JSON.parse(readFileSync(join(stateRoot(), 'app', 'leases.json'), 'utf8'));
    assert.equal(leases[a].address, addressOf(a));
    assert.equal(leases[b].address, addressOf(b));
    ok(['destroy', a]);
    ok(['destroy', b]);
  });

  it('a torn snapshot record is skipped: later saves work, the listing leaves it out, rm-snapshot removes it', () => {
    const name = uniqueName('snaptorn');
    ok(['create', name, '--no-network']);
    ok(['snapshot', name, 'one']);
    writeFileSync(snapshotPath(name, 'one'), '');
    ok(['snapshot', name, 'two']);
    const listed = cli('dre-app', ['snapshots', name, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), ['two']);
    assert.match(listed.stderr, /one\.json is damaged \(empty\); the snapshot is skipped/);
    ok(['load', name, 'two']);
    ok(['rm-snapshot', name, 'one']);
    assert.equal(existsSync(snapshotPath(name, 'one')), false);
    ok(['destroy', name]);
  });

  it('a torn base record fails starts on that base with BASE_NONEXISTENCE naming the file; rm-base still works', () => {
    const [src, base] = [uniqueName('basesrc'), uniqueName('tornbase')];
    ok(['create', src, '--no-network']);
    ok(['snapshot', src, 's']);
    ok(['commit', src, 's', base]);
    const onBase = uniqueName('onbase');
    ok(['create', onBase, '--no-network', '--base', base]);
    writeFileSync(baseRecordPath(base), '[]');
    const r = cli('dre-app', ['start', onBase]);
    assert.equal(r.code, -DRE_ERR.DRE_ERR_BASE_NONEXISTENCE, r.stderr);
    assert.match(r.stderr, /base\.json is damaged \(not a JSON object\)/);
    ok(['status', src]); // the rest of the root is untouched
    ok(['destroy', onBase]);
    ok(['rm-base', base]);
    ok(['destroy', src]);
    assert.deepEqual(
      JSON.parse(cli('dre-app', ['list', '--json']).stdout).filter((c: { name: string }) => [src, onBase].includes(c.name)),
      [],
    );
    assert.equal(existsSync(join(containersDir('app'), src)), false);
  });
});

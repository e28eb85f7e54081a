// Pure: the address arithmetic and the busybox root, the undo and staging helpers, checked without engines.
import '../support/env.js';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { layBusyboxRoot } from '../../src/core/busybox.js';
import { macOf, parseSubnet } from '../../src/core/network.js';
import { withRevertAsync } from '../../src/core/revert.js';
import { buildAside, replaceFile, withScratch } from '../../src/core/staging.js';
import { sleep } from '../../src/core/proc.js';

const tmp = mkdtempSync(join(process.env.DRE_TEST_TMP!, 'encoders-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const errName = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as { errName?: string }).errName;
  }
  return 'ok';
};

describe('subnet parsing (core/network.ts)', () => {
  it('clears the host bits and gives the prefix and the size', () => {
    assert.deepEqual(parseSubnet('10.47.0.0/22'), { base: (10 << 24) + (47 << 16), prefix: 22, size: 1024 });
    assert.deepEqual(parseSubnet('10.47.3.77/22'), parseSubnet('10.47.0.0/22'));
    assert.deepEqual(parseSubnet('192.168.1.9/29'), { base: 0xc0a80108, prefix: 29, size: 8 });
  });

  it('refuses what is not an IPv4 CIDR with a prefix of 8..29', () => {
    for (const bad of ['10.47.0.0', '10.47.0.0/7', '10.47.0.0/30', '10.47.0.256/24', '10.47.0/24', 'a.b.c.d/24', '10.47.0.0/x', '::1/64', '']) {
      assert.equal(
        errName(() => parseSubnet(bad)),
        'DRE_ERR_INVALID_ARGUMENT',
        bad,
      );
    }
  });
});

describe('MAC derivation', () => {
  it("gives an application container's address a fixed, locally administered unicast MAC", () => {
    assert.equal(macOf('10.47.0.5'), '02:de:0a:2f:00:05');
    assert.equal(macOf('192.168.255.254'), '02:de:c0:a8:ff:fe');
    const first = parseInt(macOf('10.47.1.2').slice(0, 2), 16);
    assert.equal(first & 0b11, 0b10); // locally administered, not multicast
  });
});

describe('the undo idiom with asynchronous steps (core/revert.ts)', () => {
  it('awaits each undo step before the one added before it, and passes over one that rejects', async () => {
    const log: string[] = [];
    const work = new Error('the work failed');
    await assert.rejects(
      withRevertAsync(async (r) => {
        r.add(() => log.push('first'));
        r.add(async () => {
          await sleep(20);
          log.push('second, slow');
        });
        r.add(() => Promise.reject(new Error('third fails')));
        throw work;
      }),
      (e) => e === work,
    );
    assert.deepEqual(log, ['second, slow', 'first']);
  });
});

describe('building aside (core/staging.ts)', () => {
  it('publishes the directory whole, and leaves nothing when the build fails', async () => {
    const dir = join(tmp, 'aside');
    const made = await buildAside(dir, 'a', (s) => writeFileSync(join(s, 'f'), 'x'), { dirMode: 0o711 });
    assert.equal(made, join(dir, 'a'));
    assert.equal(readFileSync(join(made, 'f'), 'utf8'), 'x');
    assert.equal(statSync(dir).mode & 0o777, 0o711);
    await assert.rejects(
      buildAside(dir, 'b', () => {
        throw new Error('half-way');
      }),
      /half-way/,
    );
    assert.deepEqual(readdirSync(dir), ['a']);
  });

  it('says what a taken name means: the error given, the other one kept, or the rename error', async () => {
    const dir = join(tmp, 'taken');
    mkdirSync(join(dir, 'x', 'theirs'), { recursive: true });
    const fill = (s: string) => writeFileSync(join(s, 'ours'), '');
    await assert.rejects(buildAside(dir, 'x', fill, { ifTaken: () => new Error('appeared meanwhile') }), /appeared meanwhile/);
    assert.equal(await buildAside(dir, 'x', fill, { ifTaken: () => {} }), join(dir, 'x'));
    assert.deepEqual(readdirSync(join(dir, 'x')), ['theirs']);
    await assert.rejects(buildAside(dir, 'x', fill), (e: NodeJS.ErrnoException) => ['ENOTEMPTY', 'EEXIST'].includes(e.code!));
    assert.deepEqual(readdirSync(dir), ['x']);
  });

  it('removes a scratch directory and a half-written file whatever happens', async () => {
    const scratch = join(tmp, 'scratch');
    await assert.rejects(
      withScratch(scratch, async (s) => {
        writeFileSync(join(s, 'f'), '');
        throw new Error('fails');
      }),
    );
    assert.equal(existsSync(scratch), false);
    const file = join(tmp, 'out.tar');
    writeFileSync(file, 'old');
    await assert.rejects(
      replaceFile(file, async (t) => {
        writeFileSync(t, 'half');
        throw new Error('fails');
      }),
    );
    assert.equal(readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('out.tar')),
      ['out.tar'],
    );
    await replaceFile(file, async (t) => writeFileSync(t, 'new'));
    assert.equal(readFileSync(file, 'utf8'), 'new');
  });
});

describe('the busybox root both kinds lay out (core/busybox.ts)', () => {
  it("holds busybox, a link to it for each applet, the kind's directories and its files with their modes", async () => {
    const root = join(tmp, 'rootfs');
    await layBusyboxRoot(root, ['opt'], { 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n', 'etc/init.d/rcS': { text: '#!/bin/sh\n', mode: 0o755 } }, 'test');
    assert.equal(statSync(join(root, 'bin/busybox')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(root, 'bin/sh')), '/bin/busybox');
    assert.equal(lstatSync(join(root, 'bin/busybox')).isFile(), true);
    assert.equal(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(join(root, 'root')).mode & 0o777, 0o700);
    assert.ok(statSync(join(root, 'opt')).isDirectory());
    assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(statSync(join(root, 'etc/passwd')).mode & 0o777, 0o644);
    assert.equal(statSync(join(root, 'etc/init.d/rcS')).mode & 0o777, 0o755);
  });
});

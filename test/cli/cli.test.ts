/** The command lines as issue 15 found them: each test is one stumble a new user hit. */
import '../support/env.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appDriver as app } from '../../src/app/driver.js';
import { lxcLogPath } from '../../src/app/layout.js';
import { groupDir } from '../../src/core/cgroup.js';
import { compareNames, sortNames } from '../../src/core/names.js';
import { containerDir, containerGroup } from '../../src/core/paths.js';
import { localDiskPath, readRecord } from '../../src/sys/layout.js';
import { sysDriver as sys } from '../../src/sys/driver.js';
import { fitWidths, progress, tableText } from '../../src/cli/output.js';
import { bytesArg } from '../../src/cli/commands.js';
import { sleep } from '../../src/core/proc.js';
import { parseEventBlock } from '../../src/daemon/client.js';
import { Daemon } from '../support/dred.js';
import { cli, cliAsync, distDir, freePort, uniqueName } from '../support/env.js';

const run = (args: string[]) => cli('dre-app', args);
const oneUsageLine = (stderr: string, re: RegExp) => {
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /^dre-app: DRE_ERR_INVALID_ARGUMENT: /);
  assert.match(stderr, re);
};

describe('dre-app usage', () => {
  // Privileged: they start without newuidmap's say (an unprivileged start needs the host's subuid set-up).
  const a = uniqueName('c');
  const b = uniqueName('c');
  before(async () => {
    await app.create(a, { network: false, privileged: true });
    await app.create(b, { network: false, privileged: true });
    await app.saveSnapshot(a, 's1');
    await app.start(a);
    await app.start(b);
  });
  after(async () => {
    for (const n of [a, b]) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => undefined);
      await app.destroy(n).catch(() => undefined);
    }
  });

  it('refuses extra arguments and acts on nothing (stop c8 c9 used to stop c8 alone)', async () => {
    const r = run(['stop', a, b]);
    assert.equal(r.code, 101);
    oneUsageLine(r.stderr, /too many arguments/);
    assert.equal(await app.status(a), 12);
    assert.equal(await app.status(b), 12);
    assert.equal(run(['suspend', a, 'extra', 'args']).code, 101);
    assert.equal(await app.status(a), 12);
  });

  it('suggests the command meant on a typo', () => {
    const r = run(['stpo', a]);
    assert.equal(r.code, 101);
    oneUsageLine(r.stderr, /Did you mean stop\?/);
    assert.equal(run(['list', '--jsno']).code, 101);
  });

  it('prints help with exit status 0 when run bare, and its version', () => {
    const bare = run([]);
    assert.equal(bare.code, 0);
    assert.match(bare.stdout, /^Usage: dre-app /);
    assert.match(bare.stdout, /\n {2}exec /);
    const v = run(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), JSON.parse(readFileSync(`${distDir}/../package.json`, 'utf8')).version);
  });

  it('prints pid --json as JSON, and -q as the bare value', async () => {
    const r = run(['pid', a, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { name: a, pid: await app.pid(a) });
    assert.equal(run(['pid', a, '-q']).stdout, `${await app.pid(a)}\n`);
  });

  it('lists in every format: table, json, yaml, csv, and -q for the names alone', () => {
    const names = run(['list', '-q']).stdout.trim().split('\n');
    assert.ok(names.includes(a) && names.includes(b), names.join(' '));
    const json = JSON.parse(run(['list', '--format', 'json']).stdout) as { name: string; status: string }[];
    assert.equal(json.find((r) => r.name === a)?.status, 'RUNNING');
    const yaml = run(['list', '--format', 'yaml']).stdout;
    assert.match(yaml, new RegExp(`- name: ${a}\\n {2}status: RUNNING\\n`));
    const csv = run(['list', '--format', 'csv']).stdout.split('\r\n');
    assert.equal(csv[0], 'NAME,STATUS,BASE,ADDRESS,PORT');
    assert.ok(csv.includes(`${a},RUNNING,default-privileged,,`), csv.join('|'));
    assert.equal(run(['list', '--format', 'xml']).code, 101);
  });

  it("tells exec's command status from D-RE's own with --dre-status (113 was CONTAINER_RUNNING's)", () => {
    const plain = run(['exec', a, '--', 'sh', '-c', 'exit 113']);
    assert.equal(plain.code, 113);
    assert.equal(plain.stderr, '');
    const told = run(['exec', a, '--dre-status', '--', 'sh', '-c', 'exit 113']);
    assert.equal(told.code, 0);
    assert.equal(told.stderr, 'dre-app: exec: status 113\n');
    // Issue 15 saw an ERROR 'Unsupported config key "lxc.seccomp"' at each exec: lxc-attach asks the
    // monitor for that removed key only when the running config has no lxc.seccomp.profile.
    assert.doesNotMatch(readFileSync(lxcLogPath(a), 'utf8'), /Unsupported config key/);
    assert.doesNotMatch(plain.stderr + told.stderr, /ERROR/);
    const ghost = run(['exec', uniqueName('ghost'), '--dre-status', '--', 'true']);
    assert.equal(ghost.code, 111);
    assert.match(ghost.stderr, /^dre-app: DRE_ERR_CONTAINER_NONEXISTENCE: /);
  });

  it('limits the container itself in one command, with units (limit NAME memory 512M), and lifts it', async () => {
    const dir = groupDir('memory', containerGroup('app', a))!;
    const limitFile = existsSync(join(dir, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
    const before = readFileSync(join(dir, limitFile), 'utf8').trim();
    const r = run(['limit', a, 'memory', '512M']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, limitFile), 'utf8').trim(), String(512 * 2 ** 20));
    assert.equal(run(['limit', a, 'memory', 'lots']).code, 101);
    assert.equal(readFileSync(join(dir, limitFile), 'utf8').trim(), String(512 * 2 ** 20));
    assert.equal(run(['unlimit', a, 'memory']).code, 0);
    assert.equal(readFileSync(join(dir, limitFile), 'utf8').trim(), before);
  });

  it('tells everything about one container with info (state, pid, base, snapshots with dates and sizes, limits, usage)', async () => {
    assert.equal(run(['limit', a, 'memory', '300M']).code, 0);
    const r = run(['info', a, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const i = JSON.parse(r.stdout);
    assert.equal(i.status, 'RUNNING');
    assert.equal(i.pid, await app.pid(a));
    assert.equal(i.base, 'default-privileged');
    assert.equal(i.snapshots.length, 1);
    assert.equal(i.snapshots[0].tag, 's1');
    assert.ok(Math.abs(Date.parse(i.snapshots[0].created) - Date.now()) < 10 * 60_000, i.snapshots[0].created);
    assert.equal(typeof i.snapshots[0].bytes, 'number');
    assert.equal(i.limits.memory, 300 * 2 ** 20);
    assert.ok(i.usage.memory > 0 && i.usage.memory < 300 * 2 ** 20, String(i.usage.memory));
    assert.match(run(['info', a]).stdout, /^Name: .*\nStatus: RUNNING \(PID \d+\)\n/);
    const stopped = JSON.parse(run(['info', b, '--json']).stdout);
    assert.equal(stopped.status, 'RUNNING');
    assert.equal(run(['info', uniqueName('ghost')]).code, 111);
    run(['unlimit', a, 'memory']);
  });

  it('samples CPU and memory of each running container by name with top --once', () => {
    const r = run(['top', '--once', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { name: string; cpuPercent: number; memory: number }[];
    const row = rows.find((x) => x.name === a);
    assert.ok(row && row.memory > 0 && row.cpuPercent >= 0, r.stdout);
    assert.match(run(['top', '--once']).stdout, /^NAME\s+STATUS\s+CPU\s+MEMORY\n/);
  });

  it('destroys a running container with --force, and refuses without it', async () => {
    const n = uniqueName('f');
    await app.create(n, { network: false, privileged: true });
    await app.start(n);
    assert.equal(run(['destroy', n]).code, 113);
    const r = run(['destroy', n, '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(app.exists(n), false);
  });
});

describe('names sort naturally', () => {
  it('orders c1, c2, c10 (not c1, c10, c2), in the library list and the CLI', async () => {
    assert.deepEqual(['c10', 'c2', 'c1', 'b', 'c1a', 'c01x'].sort(compareNames), ['b', 'c01x', 'c1', 'c1a', 'c2', 'c10']);
    const names = ['c10', 'c2', 'c1', 'b', 'c1a', 'c01x', 'ab-', 'ab1', 'x99999999999999999999', 'x100000000000000000000', 'x0099', 'x99', 'a.1', 'a-1'];
    assert.deepEqual(sortNames(names), [...names].sort(compareNames), 'sortNames is compareNames');
    assert.deepEqual(['x100000000000000000000', 'x99999999999999999999', 'x0099', 'x99'].sort(compareNames), [
      'x0099',
      'x99',
      'x99999999999999999999',
      'x100000000000000000000',
    ]);
    const p = uniqueName('n');
    const made = [`${p}-10`, `${p}-2`, `${p}-1`];
    try {
      for (const n of made) await app.create(n, { network: false, privileged: true });
      const mine = (xs: string[]) => xs.filter((x) => x.startsWith(`${p}-`));
      assert.deepEqual(mine(await app.list()), [`${p}-1`, `${p}-2`, `${p}-10`]);
      assert.deepEqual(mine(run(['list', '-q']).stdout.trim().split('\n')), [`${p}-1`, `${p}-2`, `${p}-10`]);
    } finally {
      for (const n of made) await app.destroy(n).catch(() => undefined);
    }
  });
});

describe('start-up', () => {
  const starter = join(distDir, 'src', 'bin', 'cli-start.cjs');
  const runBundle = (bundle: string, command: string) => {
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(starter)}).run(${JSON.stringify(bundle)})`, 'prog.js', command], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  it('runs a bundle from the V8 code cache beside it, learns each command once, and never runs a cache made for another bundle of the same length', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dre-cli-start-'));
    const header = () => readFileSync(join(dir, 'prog.v8cache')).toString('latin1').split('\n')[0];
    try {
      const bundle = join(dir, 'prog.cjs');
      writeFileSync(bundle, "console.log('aaaa');\n");
      assert.equal(runBundle(bundle, 'list'), 'aaaa\n');
      const st = statSync(bundle);
      assert.equal(header(), `${st.size}:${st.mtimeMs}:list`, 'made at the first start, named for the bundle and the command');
      assert.equal(runBundle(bundle, 'list'), 'aaaa\n', 'from the cache');
      assert.equal(header(), `${st.size}:${st.mtimeMs}:list`, 'a learnt command makes no new cache');
      assert.equal(runBundle(bundle, 'status'), 'aaaa\n');
      assert.equal(header(), `${st.size}:${st.mtimeMs}:list,status`, 'a new command is learnt');
      // V8 itself checks little more than the source length before running cached code.
      writeFileSync(bundle, "console.log('bbbb');\n");
      utimesSync(bundle, st.atime, new Date(st.mtimeMs + 5000));
      assert.equal(runBundle(bundle, 'list'), 'bbbb\n');
      assert.equal(header(), `${st.size}:${statSync(bundle).mtimeMs}:list`, 'made again for the new bundle');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships bundles with no import() left (a vm.Script from a code cache has no loader for one in Node 20): etcd3 is required', () => {
    for (const prog of ['dre-app', 'dre-sys']) {
      const text = readFileSync(join(distDir, 'src', 'bin', `${prog}.cjs`), 'utf8');
      assert.doesNotMatch(text, /\bimport\(/, prog);
    }
    assert.match(readFileSync(join(distDir, 'src', 'bin', 'dre-sys.cjs'), 'utf8'), /require\("etcd3"\)/);
  });

  it('ships the CLIs with their caches made at build time', () => {
    for (const prog of ['dre-app', 'dre-sys']) {
      const st = statSync(join(distDir, 'src', 'bin', `${prog}.cjs`));
      const header = readFileSync(join(distDir, 'src', 'bin', `${prog}.v8cache`))
        .toString('latin1')
        .split('\n')[0];
      assert.ok(header.startsWith(`${st.size}:${st.mtimeMs}:`), header);
    }
  });

  it('writes its output past a reader that went away, with no error (list | head -1)', () => {
    const output = JSON.stringify(new URL('../../src/cli/output.js', import.meta.url).href);
    const writer = `import(${output}).then((m) => { m.writeStdout('x'.repeat(1 << 20)); console.error('wrote'); })`;
    // 1 MiB is more than the pipe holds, so the writes meet EPIPE once head has read its byte and gone.
    const r = spawnSync('bash', ['-c', `${JSON.stringify(process.execPath)} -e ${JSON.stringify(writer)} | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`], {
      encoding: 'utf8',
    });
    assert.equal(r.stdout, '0\n', r.stderr);
    assert.equal(r.stderr, 'wrote\n');
  });
});

describe('sizes and tables', () => {
  it('accepts sizes with units for memory limits (512M used to be "must be an integer")', () => {
    assert.equal(bytesArg('512M', 'memory'), 512 * 2 ** 20);
    assert.equal(bytesArg('1.5G', 'memory'), 1.5 * 2 ** 30);
    assert.equal(bytesArg('4096', 'memory'), 4096);
    assert.equal(bytesArg('64MiB', 'memory'), 64 * 2 ** 20);
    assert.throws(() => bytesArg('lots', 'memory'), /DRE_ERR_INVALID_ARGUMENT|size in bytes/);
    const r = run(['limit', uniqueName('ghost'), 'g', 'memory', '512M']);
    assert.equal(r.code, 111, r.stderr); // the size parsed: the failure is the container's absence
  });

  it('shows progress as a bar redrawn in place on a terminal, and as plain lines when piped', () => {
    const fake = (tty: boolean) => {
      const out: string[] = [];
      return { out, stream: { isTTY: tty, columns: 60, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream };
    };
    const piped = fake(false);
    const p = progress('migrate vm', piped.stream);
    p.step('active', 0.5);
    p.step('making the initramfs');
    p.done('completed');
    assert.deepEqual(piped.out, ['migrate vm: [##########..........] 50% active\n', 'migrate vm: making the initramfs\n', 'migrate vm: completed\n']);
    const tty = fake(true);
    const t = progress('migrate vm', tty.stream);
    t.step('active', 0.25);
    t.done('completed');
    assert.equal(tty.out[0], '\r\x1b[Kmigrate vm: [#####...............] 25% active');
    assert.equal(tty.out[1], '\r\x1b[Kmigrate vm: completed\n');
  });

  it('reads one Server-Sent Event block as its event, and skips comments and keep-alives', () => {
    assert.deepEqual(parseEventBlock('id: 3\nevent: started\ndata: {"kind":"app","name":"web","type":"started"}'), {
      kind: 'app',
      name: 'web',
      type: 'started',
    });
    assert.equal(parseEventBlock(': keepalive'), undefined);
    assert.equal(parseEventBlock('data: {torn'), undefined);
  });

  it('fits a table into the terminal width, cutting the widest column', () => {
    assert.deepEqual(fitWidths([4, 40, 10], 40), [4, 22, 10]);
    const text = tableText(['NAME', 'NOTE'], [['web', 'x'.repeat(60)]], 30);
    for (const line of text.trimEnd().split('\n')) assert.ok(line.length <= 30, line);
    assert.match(text, /…\n$/);
  });
});

describe('dre-sys', () => {
  const vm = uniqueName('vm');
  after(async () => {
    await sys.destroy(vm).catch(() => undefined);
  });

  it('names the disk "disk" in list --json, and records the tcg a create ran under', async () => {
    const r = cli('dre-sys', ['create', vm], { env: { DRE_SYS_ACCEL: 'tcg' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readRecord(vm)?.accel, 'tcg');
    const row = (JSON.parse(cli('dre-sys', ['list', '--json']).stdout) as { name: string; disk: string }[]).find((x) => x.name === vm);
    assert.equal(row?.disk, 'default');
    const table = cli('dre-sys', ['list']).stdout.split('\n');
    assert.match(table[0], /^NAME\s+STATUS\s+DISK\s+MEMORY/);
  });

  it('changes memory and CPUs after create with config set, and QEMU gets them at the next start', async () => {
    const sysRun = (args: string[]) => cli('dre-sys', args);
    assert.equal(sysRun(['config', 'set', vm, 'memory', '300M']).code, 0);
    assert.equal(sysRun(['config', 'set', vm, 'cpus', '2']).code, 0);
    const port = await freePort();
    assert.equal(sysRun(['config', 'set', vm, 'port', String(port)]).code, 0); // a VM on the D-RE bridge forwards a port to its SSH
    assert.equal(sysRun(['config', 'show', vm, '--json']).stdout.includes(`"port": ${port}`), true);
    assert.equal(sysRun(['config', 'set', vm, 'port', 'none']).code, 0);
    assert.equal(sysRun(['config', 'set', vm, 'memory', '300']).code, 101); // bytes: below 16 MiB
    assert.deepEqual(JSON.parse(sysRun(['config', 'show', vm, '--json']).stdout), { memory: 300 * 2 ** 20, cpus: 2, port: null, autostart: false });
    assert.equal(readRecord(vm)?.memoryMiB, 300);
    const started = cli('dre-sys', ['start', vm], { env: { DRE_SYS_ACCEL: 'tcg' } });
    assert.equal(started.code, 0, started.stderr);
    try {
      const cmdline = readFileSync(`/proc/${await sys.pid(vm)}/cmdline`, 'utf8').split('\0');
      assert.equal(cmdline[cmdline.indexOf('-m') + 1], '300');
      assert.equal(cmdline[cmdline.indexOf('-smp') + 1], '2');
      assert.equal(sysRun(['config', 'set', vm, 'cpus', '1']).code, 113);
      const info = JSON.parse(sysRun(['info', vm, '--json']).stdout);
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.pid, await sys.pid(vm));
      assert.equal(info.memoryMiB, 300);
      assert.ok(info.usage.memory > 0, JSON.stringify(info.usage));
      assert.deepEqual(info.snapshots, []);
      const top = JSON.parse(sysRun(['top', '--once', '--json']).stdout) as { name: string; memory: number }[];
      assert.ok((top.find((x) => x.name === vm)?.memory ?? 0) > 0, JSON.stringify(top));
    } finally {
      await sys.stop(vm, { timeoutMs: 0 });
    }
  });

  it('renames a stopped system container (disk and record go with it) and refuses the same name', async () => {
    const to = uniqueName('vm');
    const r = cli('dre-sys', ['rename', vm, to]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await sys.list()).includes(to));
    assert.equal(readRecord(to)?.memoryMiB, 300);
    assert.equal(cli('dre-sys', ['rename', to, vm]).code, 0);
    assert.equal(cli('dre-sys', ['rename', vm, vm]).code, 101);
  });

  it("sets cause to the engine's whole result when an engine tool fails (cause was empty in every error seen)", async () => {
    rmSync(localDiskPath(vm));
    const err = await sys.listSnapshots(vm).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.match(String(err), /qemu-img info failed/);
    const cause = err?.cause as { tool: string; code: number; stderr: string };
    assert.equal(cause.tool, 'qemu-img');
    assert.notEqual(cause.code, 0);
    assert.match(cause.stderr, /Could not open/);
  });
});

describe('dre-app logs', () => {
  const c = uniqueName('logs');
  after(async () => {
    await app.stop(c, { timeoutMs: 0 }).catch(() => undefined);
    await app.destroy(c).catch(() => undefined);
  });

  it("keeps the previous run's LXC log, so the D-Aware record of the last stop survives a start", async () => {
    await app.create(c, { network: false, privileged: true });
    await app.start(c);
    assert.equal(run(['exec', c, '--', 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 &']).code, 0);
    const vpid = run(['exec', c, '--', 'pidof', 'sleep']).stdout.trim();
    assert.match(vpid, /^\d+$/);
    assert.equal(run(['register', c, vpid, '--vpid']).code, 0);
    assert.equal(run(['stop', c, '--timeout', '5']).code, 0);
    assert.equal(run(['start', c]).code, 0);
    const previous = run(['logs', c, '--source', 'lxc.1']);
    assert.equal(previous.code, 0, previous.stderr);
    assert.match(previous.stdout, new RegExp(`registered process \\d+ \\(PID ${vpid} in the container\\)`));
    const all = run(['logs', c]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^==> console \(/m);
    assert.match(all.stdout, /^==> lxc\.1 \(/m);
    assert.match(all.stdout, /^==> syslog \(\/var\/log\/messages in the container\) <==\n(.*\n)*.*syslogd started/m);
    assert.equal(run(['logs', c, '--source', 'nope']).code, 101);
  });
});

describe('dre-app events', () => {
  const c = uniqueName('ev');
  let daemon: Daemon | undefined;
  after(async () => {
    await daemon?.kill('SIGTERM');
    await app.destroy(c).catch(() => undefined);
  });

  it('says there is no daemon with NO_SOCKET_AVAILABLE', () => {
    const r = run(['events', '--count', '1']);
    assert.equal(r.code, 153);
    assert.match(r.stderr, /^dre-app: DRE_ERR_NO_SOCKET_AVAILABLE: .*start dred/);
  });

  it("streams the daemon's events of one container, as lines or JSON lines", async () => {
    daemon = await Daemon.start();
    const lines = cliAsync('dre-app', ['events', c, '--count', '2']);
    const json = cliAsync('dre-app', ['monitor', c, '--count', '1', '--format', 'json', '--type', 'snapshot-saved']);
    await sleep(1500); // both subscribed (a stream has no past)
    await app.create(c, { network: false, privileged: true });
    await app.saveSnapshot(c, 'e1');
    const [l, j] = await Promise.all([lines.done, json.done]);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, new RegExp(`^\\S+  ${c}  created\\n\\S+  ${c}  snapshot-saved  \\{"tag":"e1"\\}\\n$`));
    assert.equal(j.code, 0, j.stderr);
    const e = JSON.parse(j.stdout);
    assert.deepEqual([e.kind, e.name, e.type, e.tag], ['app', c, 'snapshot-saved', 'e1']);
  });
});

describe('dre-app rename', () => {
  const from = uniqueName('rn');
  const to = uniqueName('rn');
  const other = uniqueName('rn');
  after(async () => {
    for (const n of [from, to, other]) {
      await app.stop(n, { timeoutMs: 0 }).catch(() => undefined);
      await app.destroy(n).catch(() => undefined);
    }
  });

  it('renames a stopped container with its snapshots, address and record, and refuses precisely', async () => {
    await app.create(from, { privileged: true });
    await app.create(other, { network: false, privileged: true });
    await app.saveSnapshot(from, 's1');
    const address = (await app.info(from)).address;
    assert.equal(run(['rename', from, other]).code, 112);
    assert.equal(run(['rename', from, '../x']).code, 101);
    assert.equal(run(['rename', uniqueName('ghost'), to]).code, 111);
    const r = run(['rename', from, to]);
    assert.equal(r.code, 0, r.stderr);
    const names = await app.list();
    assert.ok(names.includes(to) && !names.includes(from), names.join(' '));
    assert.equal(existsSync(containerDir('app', from)), false);
    assert.deepEqual(await app.listSnapshots(to), ['s1']);
    assert.equal((await app.info(to)).address, address);
    await app.start(to);
    assert.equal(run(['exec', to, '--', 'hostname']).stdout, `${to}\n`);
    assert.equal(run(['rename', to, from]).code, 113);
  });
});

describe('dre-app config', () => {
  const c = uniqueName('cfg');
  after(async () => {
    await app.stop(c, { timeoutMs: 0 }).catch(() => undefined);
    await app.destroy(c).catch(() => undefined);
  });

  it('changes memory, cpus, port and autostart after create; the kernel holds the limits from the next start, or at once', async () => {
    await app.create(c, { privileged: true });
    assert.equal(run(['config', 'set', c, 'memory', '256M']).code, 0);
    assert.equal(run(['config', 'set', c, 'colour', 'blue']).code, 101);
    assert.equal(run(['config', 'set', c, 'memory', 'lots']).code, 101);
    assert.equal(run(['start', c]).code, 0);
    const mem = groupDir('memory', containerGroup('app', c))!;
    const memFile = existsSync(join(mem, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
    assert.equal(readFileSync(join(mem, memFile), 'utf8').trim(), String(256 * 2 ** 20));
    assert.equal(run(['config', 'set', c, 'cpus', '1']).code, 0);
    const cpu = groupDir('cpu', containerGroup('app', c))!;
    if (existsSync(join(cpu, 'cpu.cfs_quota_us'))) assert.equal(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8').trim(), '100000');
    else assert.match(readFileSync(join(cpu, 'cpu.max'), 'utf8'), /^100000 /);
    assert.equal(run(['config', 'set', c, 'port', '2298']).code, 113);
    assert.equal(run(['stop', c, '--timeout', '0']).code, 0);
    assert.equal(run(['config', 'set', c, 'port', '2298']).code, 0);
    assert.equal(run(['config', 'set', c, 'autostart', 'true']).code, 0);
    assert.deepEqual(JSON.parse(run(['config', 'show', c, '--json']).stdout), { memory: 256 * 2 ** 20, cpus: 1, port: 2298, autostart: true });
    assert.equal(run(['config', 'set', c, 'memory', 'none']).code, 0);
    assert.equal(JSON.parse(run(['config', 'show', c, '--json']).stdout).memory, null);
    assert.equal((await app.info(c)).port, 2298);
  });
});

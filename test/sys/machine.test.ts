// Pure: QEMU's command line and the confined command around it, checked without root or QEMU.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confinedCommand, qemuArgs, SANDBOX, type MachineSpec } from '../../src/sys/machine.js';
import { sysMac } from '../../src/sys/tap.js';

const user = { name: 'dre-qemu', uid: 995, gid: 994 };

const spec = (over: Partial<MachineSpec> = {}): MachineSpec => ({
  name: 'vm1',
  accel: 'tcg',
  memoryMiB: 256,
  kernel: '/b/vmlinuz',
  initrd: '/b/initrd.img',
  disk: '/c/disk.qcow2',
  diskFormat: 'qcow2',
  qmpSocket: '/r/qmp.sock',
  agentSocket: '/r/agent.sock',
  consoleSocket: '/r/console.sock',
  consoleLog: '/r/console.log',
  pidFile: '/r/qemu.pid',
  ...over,
});

/** The value after `flag` in an argv (the first occurrence). */
const after = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];

describe('the confined QEMU command', () => {
  it('runs qemu-system-x86_64 through setpriv with exactly the arguments given, after --', () => {
    const [cmd, argv] = confinedCommand(user, ['-name', 'x', '--', '-S']);
    assert.equal(cmd, 'setpriv');
    assert.deepEqual(argv.slice(argv.indexOf('--') + 1), ['qemu-system-x86_64', '-name', 'x', '--', '-S']);
  });

  it("takes the user's uid by name and its gid by number (no group named like the user is assumed)", () => {
    const [, argv] = confinedCommand({ name: 'dre-qemu', uid: 995, gid: 101 }, []);
    assert.equal(after(argv, '--reuid'), 'dre-qemu');
    assert.equal(after(argv, '--regid'), '101');
    assert.ok(argv.includes('--init-groups'));
  });

  it('empties the inheritable and bounding capability sets and sets no_new_privs before exec', () => {
    const [, argv] = confinedCommand(user, []);
    const own = argv.slice(0, argv.indexOf('--'));
    for (const opt of ['--inh-caps=-all', '--bounding-set=-all', '--no-new-privs']) assert.ok(own.includes(opt), opt);
  });
});

describe('the seccomp sandbox on the QEMU command line', () => {
  it('denies obsolete syscalls, privilege changes, fork/exec and scheduler changes', () => {
    const opts = SANDBOX.split(',');
    assert.equal(opts[0], 'on');
    for (const o of ['obsolete=deny', 'elevateprivileges=deny', 'spawn=deny', 'resourcecontrol=deny']) assert.ok(opts.includes(o), o);
  });

  it('is on every command line, which never daemonizes (the sandbox forbids fork)', () => {
    for (const m of [spec(), spec({ incoming: true }), spec({ diskFds: true, diskFormat: 'raw' }), spec({ loadvm: 'dre-ckpt-a' })]) {
      const argv = qemuArgs(m);
      assert.equal(after(argv, '-sandbox'), SANDBOX);
      assert.ok(!argv.includes('-daemonize'));
      assert.ok(!argv.includes('-runas'));
    }
  });

  it('starts paused, or waits for a deferred migration instead', () => {
    assert.ok(qemuArgs(spec()).includes('-S'));
    const incoming = qemuArgs(spec({ incoming: true }));
    assert.equal(after(incoming, '-incoming'), 'defer');
    assert.ok(!incoming.includes('-S'));
  });

  it('opens a --rootfs disk from the inherited fds 3 and 4, never by its path', () => {
    const argv = qemuArgs(spec({ disk: '/home/u/root.img', diskFormat: 'raw', diskFds: true }));
    assert.deepEqual(
      argv.flatMap((a, i) => (a === '-add-fd' ? [argv[i + 1]] : [])),
      ['fd=3,set=1,opaque=rootfs-rw', 'fd=4,set=1,opaque=rootfs-ro'],
    );
    assert.match(after(argv, '-drive'), /^file=\/dev\/fdset\/1,.*format=raw/);
    assert.ok(!argv.some((a) => a.includes('/home/u/root.img')));
  });
});

describe("a system container's MAC", () => {
  it('is six octets, locally administered and unicast (0e:…), the same for the same name, another for another name', () => {
    const mac = sysMac('vm1');
    assert.match(mac, /^0e(:[0-9a-f]{2}){5}$/);
    assert.equal(parseInt(mac.slice(0, 2), 16) & 0b11, 0b10);
    assert.equal(sysMac('vm1'), mac);
    assert.notEqual(sysMac('vm2'), mac);
  });
});

import { uniqueName } from '../support/env.js';
import { app, inside, ok, readInside } from '../support/inside.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerDir, containerRunDir } from '../../src/core/paths.js';
import { C_DAWARE, C_STAGED, compileStatic } from '../support/clib.js';

/**
 * D-Aware in every language a busybox container runs: a C program linked statically against
 * libdaware.a, a Python program on the host's python3 (bound in at /opt/dre/bin/python3), a shell
 * script under daware-register and, for the registry, the Node library. Each registers SIGTERM and
 * logs through the base's syslogd; `dre-app stop` must run every callback before the container goes.
 */
const C_APP = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "daware.h"

static int noop(int signo, void *arg) { (void)signo; (void)arg; return 0; }

/* Runs in the signal handler: only open, write, close. */
static int on_term(int signo, void *arg) {
  int fd = open("/root/c-callback", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char text[64] = "signal=15 arg=";
  strcat(text, (const char *)arg);
  strcat(text, "\\n");
  if (signo == SIGTERM && fd >= 0) (void)!write(fd, text, strlen(text));
  close(fd);
  return 7;
}

/* Registration where no registry is reachable or writable: NULL and errno, never a crash. */
static int probe(void) {
  DTermination *h = daware_termination_register_callback(SIGTERM, noop, NULL);
  printf("%s %s\\n", h ? "handle" : "NULL", h ? "-" : strerrorname_np(errno));
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "probe")) return probe();
  daware_log_open("capp", LOG_PID, LOG_LOCAL2);
  daware_log_set_format("%file%:%line%:%func%|%lvl%|%faci%|%prog%|%pid%|%msg%");
  DLOG_EMERG("emerg %d", 0);
  DLOG_ALERT("alert %s", "one");
  DLOG_CRIT("crit %5.2f", 3.14159);
  DLOG_ERR("err %x", 255);
  DLOG_WARNING("warning %-4s|", "ab");
  DLOG_NOTICE("notice %c", 'N');
  DLOG_INFO("info %lu", 18446744073709551615UL);
  DLOG_DEBUG("debug %%");
  DLOG(LOG_DAEMON | LOG_NOTICE, "dlog %d", 42);
  daware_log(LOG_INFO, "given.c", 99, "given", NULL);
  int n = 0;
  DLOG_INFO("refused %n|%d", &n, 5);
  daware_log_set_format(NULL);
  DLOG_INFO("plain");
  DTermination *kill9 = daware_termination_register_callback(SIGKILL, on_term, NULL);
  int kill9_errno = errno;
  DTermination *nofunc = daware_termination_register_callback(SIGTERM, NULL, NULL);
  daware_termination_unregister_callback(NULL);
  DTermination bogus = 0;
  daware_termination_unregister_callback(&bogus);
  daware_termination_unregister_callback(daware_termination_register_callback(SIGUSR1, noop, NULL));
  DTermination *h = daware_termination_register_callback(SIGTERM, on_term, "c-arg");
  FILE *f = fopen("/root/c-ready", "w");
  fprintf(f, "%d %s %s %s %s %d\\n", (int)getpid(), kill9 ? "handle" : "NULL", strerrorname_np(kill9_errno), nofunc ? "handle" : "NULL", h ? "handle" : "NULL", n);
  fclose(f);
  for (;;) pause();
}
`;

const PY_APP = `import os, sys, time
import daware as d

def on_term(signo, arg):
    d.DLOG_NOTICE('callback %d', signo)
    with open('/root/py-callback', 'w') as f:
        f.write('signal=%d arg=%s\\n' % (signo, arg))
    return 3

def main():
    d.daware_log_open('pyapp', d.LOG_PID, d.LOG_LOCAL4)
    d.daware_log_set_format('%file%:%line%:%func%|%lvl%|%faci%|%msg%')
    d.DLOG_WARNING('python %05.1f|%s', 2.5, None)
    d.DLOG_INFO('refused %n|%d', 5)
    d.daware_log(d.LOG_INFO, 'given.py', 9, 'given', None)
    refused = [d.daware_termination_register_callback(9, on_term), d.daware_termination_register_callback(15, 'nope')]
    h = d.daware_termination_register_callback(15, on_term, 'py-arg')
    with open('/root/py-ready', 'w') as f:
        f.write('%d %r %r\\n' % (os.getpid(), refused, h))
    while True:
        time.sleep(1)

main()
`;

const NODE_APP = `import { daware_termination_register_callback as r } from '/opt/dre/daware.js';
import { writeFileSync } from 'node:fs';
r(15, () => { writeFileSync('/root/node-callback', 'done\\n'); return 0; }, null);
writeFileSync('/root/node-ready', String(process.pid));
setInterval(() => {}, 1 << 30);
`;

/** The host PID of `vpid` in the container whose init is `init`, and its start time (read from /proc, not from D-RE). */
function hostProcess(init: number, vpid: number): { pid: number; start: string } {
  const ns = readlinkSync(`/proc/${init}/ns/pid`);
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const nspid = /^NSpid:\s*(.*)$/m
        .exec(readFileSync(`/proc/${e}/status`, 'utf8'))![1]
        .trim()
        .split(/\s+/)
        .map(Number);
      if (readlinkSync(`/proc/${e}/ns/pid`) !== ns || nspid.at(-1) !== vpid) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      return { pid: Number(e), start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] };
    } catch {
      /* gone */
    }
  }
  throw new Error(`no process ${vpid} in the container of init ${init}`);
}

/** busybox syslogd's lines: "Dec  2 03:16:47 HOST FACILITY.LEVEL TAG: MESSAGE". */
function syslogLines(text: string): { facility: string; level: string; tag: string; message: string }[] {
  return text
    .split('\n')
    .map((l) => /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (\w+)\.(\w+) ([^:]*): (.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ facility: m![1], level: m![2], tag: m![3], message: m![4] }));
}

/** Runs `cmd` on the host in a private mount namespace whose /run/daware is a read-only tmpfs. */
function withReadOnlyRegistry(cmd: string[]): string {
  const script = 'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/daware && mount -t tmpfs -o ro,mode=1777 tmpfs /run/daware && exec "$@"';
  return execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...cmd], { encoding: 'utf8' });
}

/** Threads that register, unregister and log at once; then one signal: its callback runs once, in order, and the registry is left empty. */
const C_THREADS = `#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "daware.h"

static int noop(int signo, void *arg) { (void)signo; (void)arg; return 0; }
static int last(int signo, void *arg) {
  (void)!write(1, (const char *)arg, strlen((const char *)arg));
  return signo == SIGUSR2 ? 5 : 1;
}

static void *churn(void *arg) {
  long id = (long)arg;
  for (int i = 0; i < 2000; i++) {
    DTermination *h = daware_termination_register_callback(SIGUSR1, noop, NULL);
    if (h == NULL) return (void *)1;
    if (i % 100 == 0) DLOG_DEBUG("thread %ld round %d", id, i);
    daware_termination_unregister_callback(h);
  }
  return NULL;
}

int main(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, churn, (void *)i);
  int failed = 0;
  for (int i = 0; i < 8; i++) {
    void *r;
    pthread_join(t[i], &r);
    failed += r != NULL;
  }
  char path[64];
  snprintf(path, sizeof path, "/run/daware/%d.10", (int)getpid());
  printf("failed=%d usr1-entry=%d\\n", failed, access(path, F_OK) == 0);
  fflush(stdout);
  daware_termination_register_callback(SIGUSR2, last, "first\\n");
  daware_termination_register_callback(SIGUSR2, last, "second\\n");
  kill(getpid(), SIGUSR2);
  return 99; /* not reached: the callbacks exit */
}
`;

describe('libdaware, the Python module and daware-register in a busybox container', () => {
  const name = uniqueName('dawc');
  let dir: string;
  let init: number;
  let cReady: string[];
  let pyReady: string;
  let shVpid: number;
  let nodeVpid: number;

  before(async () => {
    dir = mkdtempSync('/tmp/dre-daware-clib-');
    writeFileSync(join(dir, 'app.c'), C_APP);
    compileStatic(join(dir, 'app.c'), join(dir, 'capp'), ['-Wno-format']); // %n on purpose
    ok('create', name);
    ok('start', name);
    init = Number(ok('pid', name).trim());
    const binary = readFileSync(join(dir, 'capp')).toString('base64');
    assert.equal(inside(name, 'base64 -d > /root/capp && chmod 755 /root/capp', binary).code, 0);
    assert.equal(inside(name, 'cat > /root/app.py', PY_APP).code, 0);
    assert.equal(inside(name, 'cat > /root/app.mjs', NODE_APP).code, 0);
    assert.equal(inside(name, '/root/capp > /root/c.log 2>&1 &').code, 0);
    assert.equal(inside(name, '/opt/dre/bin/python3 /root/app.py > /root/py.log 2>&1 &').code, 0);
    assert.equal(inside(name, '/opt/dre/bin/node /root/app.mjs > /root/node.log 2>&1 &').code, 0);
    const onSignal = 'echo shell > /root/sh-callback; logger -t shapp shell callback ran';
    assert.equal(
      inside(name, `/opt/dre/bin/daware-register -c '${onSignal}' TERM -- sh -c 'echo $PPID > /root/sh-ready; exec sleep 1000' > /root/sh.log 2>&1 &`).code,
      0,
    );
    cReady = (await readInside(name, '/root/c-ready')).trim().split(' ');
    pyReady = (await readInside(name, '/root/py-ready')).trim();
    shVpid = Number(await readInside(name, '/root/sh-ready'));
    nodeVpid = Number(await readInside(name, '/root/node-ready'));
  });

  after(() => {
    app('stop', name, '--timeout', '0');
    app('destroy', name);
    rmSync(dir, { recursive: true, force: true });
  });

  it('offers daware.h, libdaware.so/.a and a pkg-config file that resolves inside the container, at /opt/dre/c', () => {
    const r = inside(name, 'ls /opt/dre/c/include /opt/dre/c/lib /opt/dre/c/lib/pkgconfig; cat /opt/dre/c/lib/pkgconfig/daware.pc');
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['daware.h', 'libdaware.a', 'libdaware.so', 'libdaware.so.1', 'daware.pc'])
      assert.match(r.stdout, new RegExp(`^${f.replace('.', '\\.')}$`, 'm'));
    // The same file on the host: pkg-config finds the staged tree relative to the .pc file itself.
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'daware'], {
      env: { ...process.env, PKG_CONFIG_PATH: join(C_STAGED, 'lib', 'pkgconfig') },
      encoding: 'utf8',
    });
    assert.match(flags, /-I\S+\/include -L\S+\/lib -ldaware/);
  });

  it('refuses SIGKILL and a NULL callback with NULL and EINVAL, prints %n as written and never writes through it', () => {
    const [, kill9, kill9Errno, nofunc, h, n] = cReady;
    assert.deepEqual([kill9, kill9Errno, nofunc, h, n], ['NULL', 'EINVAL', 'NULL', 'handle', '0']);
    assert.match(pyReady, /^\d+ \[None, None\] 1$/);
  });

  it('writes one registry entry per program, named <vpid>.15 and holding its start time, which the host accepts', () => {
    const cVpid = Number(cReady[0]);
    const pyVpid = Number(pyReady.split(' ')[0]);
    const registry = join(containerRunDir('app', name), 'daware');
    const vpids = [cVpid, pyVpid, shVpid, nodeVpid].sort((a, b) => a - b);
    assert.deepEqual(readdirSync(registry).sort(), vpids.map((v) => `${v}.15`).sort()); // SIGUSR1's entry went with its unregister
    for (const v of vpids) assert.equal(readFileSync(join(registry, `${v}.15`), 'utf8'), `${hostProcess(init, v).start}\n`);
    const listed = JSON.parse(ok('registered', name, '--json')) as { pid: number; vpid: number }[];
    assert.deepEqual(
      listed,
      vpids.map((v) => ({ pid: hostProcess(init, v).pid, vpid: v })),
    );
  });

  it('returns NULL / None / 69 where the registry is missing (the host) or read-only', () => {
    const capp = join(dir, 'capp');
    assert.equal(execFileSync(capp, ['probe'], { encoding: 'utf8' }), 'NULL ENOENT\n');
    assert.equal(withReadOnlyRegistry([capp, 'probe']), 'NULL EROFS\n');
    // The same program linked against libdaware.so instead.
    const lib = join(C_STAGED, 'lib');
    execFileSync('gcc', [
      '-std=c11',
      '-Wall',
      '-Wextra',
      '-Wno-format',
      '-I',
      join(C_STAGED, 'include'),
      '-o',
      `${capp}-dyn`,
      join(dir, 'app.c'),
      '-L',
      lib,
      '-ldaware',
      `-Wl,-rpath,${lib}`,
    ]);
    assert.match(execFileSync('ldd', [`${capp}-dyn`], { encoding: 'utf8' }), /libdaware\.so\.1 => \S+libdaware\.so\.1/);
    assert.equal(withReadOnlyRegistry([`${capp}-dyn`, 'probe']), 'NULL EROFS\n');
    const py = [
      'python3',
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(join(C_DAWARE, '..', '..', 'python'))}); import daware; print(daware.daware_termination_register_callback(15, lambda s, a: 0))`,
    ];
    assert.equal(execFileSync(py[0], py.slice(1), { encoding: 'utf8' }), 'None\n');
    assert.equal(withReadOnlyRegistry(py), 'None\n');
    const tool = join(C_STAGED, 'bin', 'daware-register');
    assert.equal(spawnSync(tool, ['TERM', '--', 'true']).status, 69);
    assert.equal(
      spawnSync('unshare', [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/daware && mount -t tmpfs -o ro tmpfs /run/daware && exec "$@"',
        'sh',
        tool,
        'TERM',
        '--',
        'true',
      ]).status,
      69,
    );
    assert.equal(spawnSync(tool, ['KILL', '--', 'true']).status, 64);
    assert.equal(spawnSync(tool, ['TERM', 'true']).status, 64);
  });

  it('keeps its table and the registry right under threads that register, unregister and log at once', () => {
    writeFileSync(join(dir, 'threads.c'), C_THREADS);
    compileStatic(join(dir, 'threads.c'), join(dir, 'threads'), ['-pthread']);
    // A private mount namespace with a writable registry of its own (a tmpfs at /run/daware) and no syslogd.
    const script = `mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/daware && mount -t tmpfs -o mode=1777 tmpfs /run/daware || exit 90
${join(dir, 'threads')}; echo "status=$?"; ls -A /run/daware | wc -l`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.stdout, 'failed=0 usr1-entry=0\nfirst\nsecond\nstatus=5\n0\n', r.stderr);
  });

  it('shows the syslog lines of the running container with dre-app logs', () => {
    const out = ok('logs', name);
    assert.match(
      out,
      new RegExp(`local2\\.info capp\\[${cReady[0]}\\]: \\S+app\\.c:\\d+:main\\|info\\|local2\\|capp\\|${cReady[0]}\\|info 18446744073709551615$`, 'm'),
    );
    assert.match(out, /local4\.warn pyapp\[\d+\]: \/root\/app\.py:\d+:main\|warning\|local4\|python 002\.5\|\(null\)$/m);
  });

  it('runs every callback at dre-app stop before the container stops, and the syslog lines carry file, line and function', () => {
    ok('stop', name, '--timeout', '10');
    const upper = join(containerDir('app', name), 'upper', 'root');
    assert.equal(readFileSync(join(upper, 'c-callback'), 'utf8'), 'signal=15 arg=c-arg\n');
    assert.equal(readFileSync(join(upper, 'py-callback'), 'utf8'), 'signal=15 arg=py-arg\n');
    assert.equal(readFileSync(join(upper, 'node-callback'), 'utf8'), 'done\n');
    assert.equal(readFileSync(join(upper, 'sh-callback'), 'utf8'), 'shell\n');
    const steps = readFileSync(join(containerRunDir('app', name), 'lxc.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(' daware - '));
    assert.match(steps.at(-2) ?? '', /all 4 registered processes exited after \d+ ms/, steps.join('\n'));

    const log = syslogLines(readFileSync(join(containerDir('app', name), 'upper', 'var', 'log', 'messages'), 'utf8'));
    const cPid = cReady[0];
    const src = join(dir, 'app.c');
    const lineOf = (text: string) => String(C_APP.split('\n').findIndex((l) => l.includes(text)) + 1);
    const c = log.filter((l) => l.tag === `capp[${cPid}]`).map((l) => `${l.facility}.${l.level} ${l.message}`);
    const site = (call: string) => `${src}:${lineOf(call)}:main`;
    assert.deepEqual(c.slice(0, 10), [
      `local2.emerg ${site('DLOG_EMERG(')}|emerg|local2|capp|${cPid}|emerg 0`,
      `local2.alert ${site('DLOG_ALERT(')}|alert|local2|capp|${cPid}|alert one`,
      `local2.crit ${site('DLOG_CRIT(')}|crit|local2|capp|${cPid}|crit  3.14`,
      `local2.err ${site('DLOG_ERR(')}|err|local2|capp|${cPid}|err ff`,
      `local2.warn ${site('DLOG_WARNING(')}|warning|local2|capp|${cPid}|warning ab  |`,
      `local2.notice ${site('DLOG_NOTICE(')}|notice|local2|capp|${cPid}|notice N`,
      `local2.info ${site('DLOG_INFO("info')}|info|local2|capp|${cPid}|info 18446744073709551615`,
      `local2.debug ${site('DLOG_DEBUG(')}|debug|local2|capp|${cPid}|debug %`,
      `daemon.notice ${site('DLOG(LOG_DAEMON')}|notice|daemon|capp|${cPid}|dlog 42`,
      `local2.info given.c:99:given|info|local2|capp|${cPid}|`,
    ]);
    // %n: printed as written, consuming nothing, so the %d takes the pointer's slot (C's variadic rules) - only its text is checked.
    assert.match(c[10], /\|refused %n\|-?\d+$/);
    assert.equal(c[11], 'local2.info plain');

    const pyPid = pyReady.split(' ')[0];
    const py = log.filter((l) => l.tag === `pyapp[${pyPid}]`).map((l) => `${l.facility}.${l.level} ${l.message}`);
    const pyLine = (text: string) => PY_APP.split('\n').findIndex((l) => l.includes(text)) + 1;
    assert.deepEqual(py, [
      `local4.warn /root/app.py:${pyLine("DLOG_WARNING('python")}:main|warning|local4|python 002.5|(null)`,
      `local4.info /root/app.py:${pyLine("DLOG_INFO('refused")}:main|info|local4|refused %n|5`,
      'local4.info given.py:9:given|info|local4|',
      `local4.notice /root/app.py:${pyLine("DLOG_NOTICE('callback")}:on_term|notice|local4|callback 15`,
    ]);
    assert.ok(log.some((l) => l.tag === 'shapp' && l.message === 'shell callback ran'));
  });
});

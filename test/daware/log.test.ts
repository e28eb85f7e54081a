import { distDir } from '../support/env.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

/**
 * Each program below runs as its own Node process, in a private mount namespace whose /dev is a
 * fresh tmpfs: busybox syslogd listens on that namespace's /dev/log and writes what it receives to a
 * file, and /dev/console is a plain file that catches LOG_CONS output. The host's /dev is untouched.
 */
const LIB = join(distDir, 'src', 'daware', 'index.js');
const header = `import * as d from ${JSON.stringify(LIB)};\nimport { readdirSync, readlinkSync } from 'node:fs';\nconsole.log(process.pid);\n`;

const PROGRAMS: Record<string, string> = {
  'basic.mjs': `${header}
d.daware_log_open('dtest', d.LOG_PID | d.LOG_NOWAIT, d.LOG_LOCAL3);
d.DLOG_WARNING('answer=%05.1f|%-4s|%x|%c', 3.14159, 'ab', 255, 65);
d.daware_log(d.LOG_DAEMON | d.LOG_DEBUG, 'file.c', 7, 'fn', 'n=%d %s', 5, 'five');
d.DLOG_INFO('%s', '%n%s%s%d');
d.daware_log_close();
d.DLOG_NOTICE('after close');
`,
  'levels.mjs': `${header}
d.daware_log_open('lv', 0, d.LOG_USER);
const levels = ['EMERG', 'ALERT', 'CRIT', 'ERR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];
for (const l of levels) d.daware_log(d['LOG_' + l], 'f', 1, 'g', 'level %s', l);
const facilities = ['KERN', 'USER', 'MAIL', 'DAEMON', 'AUTH', 'SYSLOG', 'LPR', 'NEWS', 'UUCP', 'CRON', 'AUTHPRIV', 'FTP',
  'LOCAL0', 'LOCAL1', 'LOCAL2', 'LOCAL3', 'LOCAL4', 'LOCAL5', 'LOCAL6', 'LOCAL7'];
for (const f of facilities) d.daware_log(d['LOG_' + f] | d.LOG_INFO, 'f', 1, 'g', 'facility %s', f);
`,
  'format.mjs': `${header}
d.daware_log_open('fmt', d.LOG_PID, d.LOG_LOCAL1);
d.daware_log_set_format('%faci%|%lvl%|%time%|%host%|%prog%|%pid%|%msg%|%file%|%line%|%func%|%other%');
function reportTemperature() {
  d.DLOG(d.LOG_NOTICE, 'temp=%.2f', 21.456); // the DLOG line
}
reportTemperature();
d.daware_log_set_format(null);
d.DLOG_ERR('plain again');
`,
  'perror.mjs': `${header}
d.daware_log_open('perr', d.LOG_PID | d.LOG_PERROR, d.LOG_USER);
d.DLOG_ERR('to stderr too: %d', 42);
`,
  'noident.mjs': `${header}
d.DLOG_INFO('no open');
`,
  'ndelay.mjs': `${header}
const sockets = () => readdirSync('/proc/self/fd').filter((f) => { try { return readlinkSync('/proc/self/fd/' + f).startsWith('socket:'); } catch { return false; } }).length;
const base = sockets();
d.daware_log_open('nd', d.LOG_NDELAY, d.LOG_USER);
const afterNdelay = sockets() - base;
d.daware_log_close();
d.daware_log_open('od', d.LOG_ODELAY, d.LOG_USER);
const afterOdelay = sockets() - base;
d.DLOG_INFO('first message opens it');
const afterFirst = sockets() - base;
console.log(JSON.stringify({ afterNdelay, afterOdelay, afterFirst }));
`,
};

const CONSOLE_PROGRAMS: Record<string, string> = {
  'nocons.mjs': `${header}
d.daware_log_open('nocons', 0, d.LOG_USER);
d.DLOG_ERR('lost without a logger');
`,
  'cons.mjs': `${header}
d.daware_log_open('cons', d.LOG_PID | d.LOG_CONS, d.LOG_USER);
d.DLOG_ERR('to the console: %s', 'no logger');
`,
};

const HARNESS = `
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const [dir, withDaemon] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/dev']);
for (const [n, min] of [['null', 3], ['zero', 5], ['random', 8], ['urandom', 9]]) execFileSync('mknod', ['-m', '666', '/dev/' + n, 'c', '1', String(min)]);
writeFileSync('/dev/console', '');
let daemon;
if (withDaemon === 'yes') {
  daemon = spawn('busybox', ['syslogd', '-n', '-O', dir + '/messages'], { stdio: 'ignore' });
  for (let i = 0; i < 500 && !existsSync('/dev/log'); i++) await sleep(10);
}
const results = {};
for (const p of JSON.parse(readFileSync(dir + '/programs.json', 'utf8'))) {
  const r = spawnSync(process.execPath, [dir + '/' + p], { encoding: 'utf8', timeout: 30000 });
  results[p] = { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
if (daemon) {
  // One socket, read in order: once the marker is written, everything before it is too.
  execFileSync('busybox', ['logger', '-t', 'end', 'END-OF-TEST']);
  for (let i = 0; i < 500; i++) {
    if (existsSync(dir + '/messages') && readFileSync(dir + '/messages', 'utf8').includes('END-OF-TEST')) break;
    await sleep(10);
  }
  daemon.kill();
  await new Promise((r) => daemon.on('exit', r));
}
results.console = readFileSync('/dev/console', 'utf8');
writeFileSync(dir + '/results.json', JSON.stringify(results));
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
interface Line {
  host: string;
  facility: string;
  level: string;
  tag: string;
  message: string;
}

/** Runs `programs` in a private mount namespace, with or without a syslog daemon there. */
function inPrivateNamespace(dir: string, programs: Record<string, string>, withDaemon: boolean): Record<string, Run> & { console: string } {
  for (const [name, text] of Object.entries(programs)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'programs.json'), JSON.stringify(Object.keys(programs)));
  writeFileSync(join(dir, 'harness.mjs'), HARNESS);
  execFileSync('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, join(dir, 'harness.mjs'), dir, withDaemon ? 'yes' : 'no'], {
    stdio: 'inherit',
    timeout: 120_000,
  });
  return JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
}

/** busybox syslogd's lines: "Nov 28 03:16:47 HOST FACILITY.LEVEL TAG: MESSAGE". */
function parseMessages(text: string): Line[] {
  const lines: Line[] = [];
  for (const l of text.split('\n')) {
    const m = /^\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+) (\w+)\.(\w+) ([^:]*): (.*)$/.exec(l);
    if (m) lines.push({ host: m[1], facility: m[2], level: m[3], tag: m[4], message: m[5] });
  }
  return lines;
}

describe('logging through the system logger', () => {
  let dir: string;
  let runs: Record<string, Run> & { console: string };
  let consoleRuns: Record<string, Run> & { console: string };
  let lines: Line[];
  const pidOf = (p: string) => Number(runs[p].stdout.split('\n')[0]);
  const from = (tag: string) => lines.filter((l) => l.tag === tag);

  before(() => {
    dir = mkdtempSync('/tmp/dre-daware-log-');
    runs = inPrivateNamespace(dir, PROGRAMS, true);
    lines = parseMessages(readFileSync(join(dir, 'messages'), 'utf8'));
    consoleRuns = inPrivateNamespace(dir, CONSOLE_PROGRAMS, false);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every logging program to a clean exit', () => {
    for (const [name, r] of Object.entries({ ...runs, ...consoleRuns })) {
      if (name !== 'console') assert.equal((r as Run).code, 0, `${name}: ${(r as Run).stderr}`);
    }
  });

  it('delivers facility, level, ident, pid and the printf-formatted message to the daemon', () => {
    const pid = pidOf('basic.mjs');
    const got = from(`dtest[${pid}]`).map((l) => `${l.facility}.${l.level} ${l.message}`);
    assert.deepEqual(got, ['local3.warn answer=003.1|ab  |ff|A', 'daemon.debug n=5 five', 'local3.info %n%s%s%d']);
  });

  it('names the program itself once the log is closed (options kept, as glibc keeps them), and when it was never opened', () => {
    assert.deepEqual(
      from(`basic.mjs[${pidOf('basic.mjs')}]`).map((l) => `${l.facility}.${l.level} ${l.message}`),
      ['local3.notice after close'],
    );
    assert.deepEqual(
      from('noident.mjs').map((l) => `${l.facility}.${l.level} ${l.message}`),
      ['user.info no open'],
    );
  });

  it('sends every level and every facility with the values syslog.h gives them', () => {
    const levels = from('lv').filter((l) => l.message.startsWith('level '));
    assert.deepEqual(
      levels.map((l) => `${l.level}=${l.message}`),
      [
        'emerg=level EMERG',
        'alert=level ALERT',
        'crit=level CRIT',
        'err=level ERR',
        'warn=level WARNING',
        'notice=level NOTICE',
        'info=level INFO',
        'debug=level DEBUG',
      ],
    );
    const facilities = from('lv').filter((l) => l.message.startsWith('facility '));
    // LOG_KERN is 0, which syslog(3) reads as "the default facility" (user here): no user process can send kern.
    const expected = [
      'user',
      'user',
      'mail',
      'daemon',
      'auth',
      'syslog',
      'lpr',
      'news',
      'uucp',
      'cron',
      'authpriv',
      'ftp',
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `local${i}`),
    ];
    assert.deepEqual(
      facilities.map((l) => l.facility),
      expected,
    );
    assert.ok(facilities.every((l) => l.level === 'info'));
  });

  it('lays the message out with every tag of daware_log_set_format, the call site taken from DLOG', () => {
    const pid = pidOf('format.mjs');
    const own = from(`fmt[${pid}]`);
    assert.equal(own.length, 2);
    const f = own[0].message.split('|');
    const program = join(dir, 'format.mjs');
    const dlogLine = PROGRAMS['format.mjs'].split('\n').findIndex((l) => l.includes('// the DLOG line')) + 1;
    assert.equal(f[0], 'local1');
    assert.equal(f[1], 'notice');
    assert.match(f[2], /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d$/);
    assert.deepEqual(f.slice(3), [hostname(), 'fmt', String(pid), 'temp=21.46', program, String(dlogLine), 'reportTemperature', '%other%']);
    assert.equal(own[0].facility, 'local1');
    assert.equal(own[1].message, 'plain again');
  });

  it('copies each message to stderr with LOG_PERROR', () => {
    const pid = pidOf('perror.mjs');
    assert.match(runs['perror.mjs'].stderr, new RegExp(`^perr\\[${pid}\\]: to stderr too: 42$`, 'm'));
    assert.deepEqual(
      from(`perr[${pid}]`).map((l) => l.message),
      ['to stderr too: 42'],
    );
  });

  it('connects at open with LOG_NDELAY and only at the first message with LOG_ODELAY', () => {
    const counts = JSON.parse(runs['ndelay.mjs'].stdout.split('\n')[1]);
    assert.deepEqual(counts, { afterNdelay: 1, afterOdelay: 0, afterFirst: 1 });
    assert.deepEqual(
      from('od').map((l) => l.message),
      ['first message opens it'],
    );
  });

  it('writes to the console with LOG_CONS when no logger listens, and not without it', () => {
    const pid = Number(consoleRuns['cons.mjs'].stdout.split('\n')[0]);
    assert.match(consoleRuns.console, new RegExp(`cons\\[${pid}\\]: to the console: no logger`));
    assert.doesNotMatch(consoleRuns.console, /lost without a logger/);
  });
});

/** Logging of spec 2.6.1-2.6.4 and 2.3: printf-formatted messages to the system logger through libc's syslog(3). */
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FACILITY_NAMES, LEVEL_NAMES, LOG_ALERT, LOG_CRIT, LOG_DEBUG, LOG_EMERG, LOG_ERR, LOG_FAC, LOG_FACMASK, LOG_INFO, LOG_NOTICE, LOG_PRI, LOG_USER, LOG_WARNING } from './constants.js';
import * as libc from './libc.js';
import { sprintf } from './printf.js';

const DEFAULT_FORMAT = '%msg%';

const state = { opened: false, ident: programName(), option: 0, facility: LOG_USER, format: DEFAULT_FORMAT };

/** The program's name when none is given: the script Node runs (a C program's __progname). */
function programName(): string {
  return basename(process.argv[1] ?? process.argv0 ?? 'node');
}

/** Opens the log (optional): `ident` tags every message (null: the program name), `option` is openlog's, `facility` the default. */
export function daware_log_open(ident: string | null, option: number, facility: number): void {
  state.ident = ident === null || ident === undefined ? programName() : String(ident);
  state.option = Number(option) | 0;
  state.facility = Number(facility) & LOG_FACMASK;
  libc.openlog(state.ident, state.option, state.facility);
  state.opened = true;
}

/** Closes the connection to the system logger (optional); the next message opens it again. */
export function daware_log_close(): void {
  libc.closelog();
  state.opened = false;
  state.ident = programName();
}

/**
 * Sets the layout of each message's text (null: just the message). Tags: %faci% %lvl% %time% %host%
 * %prog% %pid% %msg% %file% %line% %func%; anything else is kept as written.
 */
export function daware_log_set_format(logfmt: string | null): void {
  state.format = logfmt === null || logfmt === undefined ? DEFAULT_FORMAT : String(logfmt);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** Local time as syslog's header writes it: "Nov 28 03:16:47". */
function syslogTime(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Logs `fmt` (C printf) with `args` at `priority` (facility | level), naming the source position given. */
export function daware_log(priority: number, file: string, line: number, func: string, fmt: string, ...args: unknown[]): void {
  const pri = Number(priority) | 0;
  if (!state.opened) daware_log_open(state.ident, state.option, state.facility);
  const facility = pri & LOG_FACMASK || state.facility;
  const tags: Record<string, () => string> = {
    faci: () => FACILITY_NAMES[LOG_FAC(facility)] ?? String(LOG_FAC(facility)),
    lvl: () => LEVEL_NAMES[LOG_PRI(pri)],
    time: () => syslogTime(new Date()),
    host: () => hostname(),
    prog: () => state.ident,
    pid: () => String(process.pid),
    msg: () => sprintf(String(fmt ?? ''), ...args),
    file: () => String(file),
    line: () => String(line),
    func: () => String(func),
  };
  const text = state.format.replace(/%(faci|lvl|time|host|prog|pid|msg|file|line|func)%/g, (_m, tag: string) => tags[tag]());
  libc.syslog(pri, text);
}

interface Site {
  file: string;
  line: number;
  func: string;
}

/** The source position of whoever called `fn` (V8's structured stack trace, one frame above `fn`). */
function callerOf(fn: (...a: never[]) => void): Site {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.prepareStackTrace = (_e, sites) => sites;
    Error.stackTraceLimit = 1;
    Error.captureStackTrace(holder, fn);
    const site = holder.stack?.[0];
    const name = site?.getFileName() ?? '<unknown>';
    return {
      file: name.startsWith('file://') ? fileURLToPath(name) : name,
      line: site?.getLineNumber() ?? 0,
      func: site?.getFunctionName() ?? '<anonymous>',
    };
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

/** Logs at `priority` with the caller's file, line and function (spec 2.3.1). */
export function DLOG(priority: number, fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG);
  daware_log(priority, s.file, s.line, s.func, fmt, ...args);
}

// One function per level (spec 2.3.2); each names itself so the call site is the frame above it.
export function DLOG_EMERG(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_EMERG);
  daware_log(LOG_EMERG, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_ALERT(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_ALERT);
  daware_log(LOG_ALERT, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_CRIT(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_CRIT);
  daware_log(LOG_CRIT, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_ERR(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_ERR);
  daware_log(LOG_ERR, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_WARNING(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_WARNING);
  daware_log(LOG_WARNING, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_NOTICE(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_NOTICE);
  daware_log(LOG_NOTICE, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_INFO(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_INFO);
  daware_log(LOG_INFO, s.file, s.line, s.func, fmt, ...args);
}
export function DLOG_DEBUG(fmt: string, ...args: unknown[]): void {
  const s = callerOf(DLOG_DEBUG);
  daware_log(LOG_DEBUG, s.file, s.line, s.func, fmt, ...args);
}

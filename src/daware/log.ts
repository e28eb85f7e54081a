/** Logging of spec 2.6.1-2.6.4 and 2.3: printf-formatted messages to the system logger through libc's syslog(3). */
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FACILITY_NAMES,
  LEVEL_NAMES,
  LOG_ALERT,
  LOG_CRIT,
  LOG_DEBUG,
  LOG_EMERG,
  LOG_ERR,
  LOG_FAC,
  LOG_FACMASK,
  LOG_INFO,
  LOG_NOTICE,
  LOG_PRI,
  LOG_USER,
  LOG_WARNING,
} from './constants.js';
import * as libc from './libc.js';
import { sprintf } from './printf.js';

const DEFAULT_FORMAT = '%msg%';
const TAG = /%(faci|lvl|time|host|prog|pid|msg|file|line|func)%/;

/** `parts`: the format split at its tags (odd indices are tag names); `needsSite`: it names the call site. */
const state = { opened: false, ident: programName(), option: 0, facility: LOG_USER, format: DEFAULT_FORMAT, parts: [DEFAULT_FORMAT], needsSite: false };

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
  state.parts = state.format.split(new RegExp(TAG, 'g'));
  state.needsSite = state.parts.some((p, i) => i % 2 === 1 && (p === 'file' || p === 'line' || p === 'func'));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** Local time as syslog's header writes it: "Nov 28 03:16:47". */
function syslogTime(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The text of one tag of the format for this message. */
function expand(tag: string, pri: number, facility: number, file: string, line: number, func: string, fmt: string, args: unknown[]): string {
  switch (tag) {
    case 'faci':
      return FACILITY_NAMES[LOG_FAC(facility)] ?? String(LOG_FAC(facility));
    case 'lvl':
      return LEVEL_NAMES[LOG_PRI(pri)];
    case 'time':
      return syslogTime(new Date());
    case 'host':
      return hostname();
    case 'prog':
      return state.ident;
    case 'pid':
      return String(process.pid);
    case 'msg':
      return sprintf(String(fmt ?? ''), ...args);
    case 'file':
      return String(file);
    case 'line':
      return String(line);
    default:
      return String(func);
  }
}

/** Logs `fmt` (C printf) with `args` at `priority` (facility | level), naming the source position given. */
export function daware_log(priority: number, file: string, line: number, func: string, fmt: string, ...args: unknown[]): void {
  const pri = Number(priority) | 0;
  if (!state.opened) daware_log_open(state.ident, state.option, state.facility);
  if (state.format === DEFAULT_FORMAT) {
    libc.syslog(pri, sprintf(String(fmt ?? ''), ...args));
    return;
  }
  const facility = pri & LOG_FACMASK || state.facility;
  let text = '';
  for (let i = 0; i < state.parts.length; i++) text += i % 2 ? expand(state.parts[i], pri, facility, file, line, func, fmt, args) : state.parts[i];
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

/** Where no tag of the format names the call site, the stack is not captured. */
const NO_SITE: Site = { file: '', line: 0, func: '' };

/** The call site of `fn`'s caller, when the format shows it. */
function siteOf(fn: (...a: never[]) => void): Site {
  return state.needsSite ? callerOf(fn) : NO_SITE;
}

/** Logs at `priority` with the caller's file, line and function (spec 2.3.1). */
export function DLOG(priority: number, fmt: string, ...args: unknown[]): void {
  const s = siteOf(DLOG);
  daware_log(priority, s.file, s.line, s.func, fmt, ...args);
}

type LevelLog = (fmt: string, ...args: unknown[]) => void;

/** The logger of one level (spec 2.3.2), named `name`; it skips its own frame, so the call site is its caller's. */
function atLevel(name: string, level: number): LevelLog {
  const log: LevelLog = (fmt, ...args) => {
    const s = siteOf(log);
    daware_log(level, s.file, s.line, s.func, fmt, ...args);
  };
  return Object.defineProperty(log, 'name', { value: name });
}

export const DLOG_EMERG = atLevel('DLOG_EMERG', LOG_EMERG);
export const DLOG_ALERT = atLevel('DLOG_ALERT', LOG_ALERT);
export const DLOG_CRIT = atLevel('DLOG_CRIT', LOG_CRIT);
export const DLOG_ERR = atLevel('DLOG_ERR', LOG_ERR);
export const DLOG_WARNING = atLevel('DLOG_WARNING', LOG_WARNING);
export const DLOG_NOTICE = atLevel('DLOG_NOTICE', LOG_NOTICE);
export const DLOG_INFO = atLevel('DLOG_INFO', LOG_INFO);
export const DLOG_DEBUG = atLevel('DLOG_DEBUG', LOG_DEBUG);

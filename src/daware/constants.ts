/** The facility, level and option constants of Linux's <syslog.h> (spec 2.7), with its helper macros. */

// Levels (2.7.2).
export const LOG_EMERG = 0;
export const LOG_ALERT = 1;
export const LOG_CRIT = 2;
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

// Facilities (2.7.1): the code shifted left by 3, as in <syslog.h>.
export const LOG_KERN = 0 << 3;
export const LOG_USER = 1 << 3;
export const LOG_MAIL = 2 << 3;
export const LOG_DAEMON = 3 << 3;
export const LOG_AUTH = 4 << 3;
export const LOG_SYSLOG = 5 << 3;
export const LOG_LPR = 6 << 3;
export const LOG_NEWS = 7 << 3;
export const LOG_UUCP = 8 << 3;
export const LOG_CRON = 9 << 3;
export const LOG_AUTHPRIV = 10 << 3;
export const LOG_FTP = 11 << 3;
export const LOG_LOCAL0 = 16 << 3;
export const LOG_LOCAL1 = 17 << 3;
export const LOG_LOCAL2 = 18 << 3;
export const LOG_LOCAL3 = 19 << 3;
export const LOG_LOCAL4 = 20 << 3;
export const LOG_LOCAL5 = 21 << 3;
export const LOG_LOCAL6 = 22 << 3;
export const LOG_LOCAL7 = 23 << 3;

// Options of openlog (2.7.3).
export const LOG_PID = 0x01;
export const LOG_CONS = 0x02;
export const LOG_ODELAY = 0x04;
export const LOG_NDELAY = 0x08;
export const LOG_NOWAIT = 0x10;
export const LOG_PERROR = 0x20;

export const LOG_PRIMASK = 0x07;
export const LOG_FACMASK = 0x03f8;
export const LOG_NFACILITIES = 24;
export const LOG_PRI = (p: number): number => p & LOG_PRIMASK;
export const LOG_FAC = (p: number): number => (p & LOG_FACMASK) >> 3;
export const LOG_MAKEPRI = (fac: number, pri: number): number => fac | pri;
export const LOG_MASK = (pri: number): number => 1 << pri;
export const LOG_UPTO = (pri: number): number => (1 << (pri + 1)) - 1;

/** Level names as syslog(3)'s prioritynames spells them (for %lvl%). */
export const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

/** Facility names by code (LOG_FAC) as syslog(3)'s facilitynames spells them (for %faci%). */
export const FACILITY_NAMES: Readonly<Record<number, string>> = {
  0: 'kern',
  1: 'user',
  2: 'mail',
  3: 'daemon',
  4: 'auth',
  5: 'syslog',
  6: 'lpr',
  7: 'news',
  8: 'uucp',
  9: 'cron',
  10: 'authpriv',
  11: 'ftp',
  16: 'local0',
  17: 'local1',
  18: 'local2',
  19: 'local3',
  20: 'local4',
  21: 'local5',
  22: 'local6',
  23: 'local7',
};

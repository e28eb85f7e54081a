/*
 * daware.h: the D-Aware library of D-RE (spec D-RE APIs E1.02, chapter 2) for C and C++ programs in
 * application containers. Link libdaware.so or libdaware.a (pkg-config module "daware"). libc only.
 * The registry it writes is described in docs/daware-protocol.md (version 1).
 */
#ifndef DAWARE_H
#define DAWARE_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h> /* LOG_* facilities, levels and options (spec 2.7) */

#ifdef __cplusplus
extern "C" {
#endif

#define DAWARE_PROTOCOL_VERSION 1

/* 2.5.1: the handle of a termination callback. */
typedef long DTermination;

/* 2.6.1: logs fmt (printf) at priority (facility | level), naming the source position given.
 * A NULL fmt logs an empty message; a conversion C does not know (%n, %m, %1$d ...) is printed as
 * written and consumes no argument (%a and %A are C's, unlike Node's). Thread-safe; not
 * async-signal-safe (neither is syslog(3)). */
void daware_log(int priority, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* 2.6.2: closes the connection to the system logger (optional). */
void daware_log_close(void);
/* 2.6.3: opens the log (optional): ident (NULL: the program name), openlog's option, default facility. */
void daware_log_open(const char *ident, int option, int facility);
/* 2.6.4: the layout of each message (NULL: just the message). Tags: %faci% %lvl% %time% %host%
 * %prog% %pid% %msg% %file% %line% %func%; anything else is kept as written. */
void daware_log_set_format(const char *logfmt);

/* 2.6.5: runs func(signo, arg) when the process gets signo, after recording the process in the
 * container's registry (/run/daware); then the process leaves the registry and exits with the
 * callback's return value. func runs inside the signal handler: use async-signal-safe calls there.
 * NULL (errno set) when signo cannot be caught (SIGKILL, SIGSTOP, out of range: EINVAL), func is
 * NULL (EINVAL), no registry is reachable or writable (its errno: ENOENT, EROFS, EACCES ...), or 64
 * callbacks are registered already (ENOSPC). Thread-safe. */
DTermination *daware_termination_register_callback(int signo, int (*func)(int, void *), void *arg);
/* 2.6.6: removes a callback; the last one of its signal restores the old handler and removes the
 * registry entry. NULL and handles not returned by register are ignored. Thread-safe. */
void daware_termination_unregister_callback(DTermination *dterm);

/* Extensions (not in the spec): the message formatter daware_log uses, vsnprintf's contract. */
int daware_format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int daware_vformat(char *buf, size_t size, const char *fmt, va_list ap);

/* 2.3.1 and 2.3.2: log with the caller's file, line and function. */
#define DLOG(priority, ...) daware_log((priority), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define DLOG_EMERG(...) DLOG(LOG_EMERG, __VA_ARGS__)
#define DLOG_ALERT(...) DLOG(LOG_ALERT, __VA_ARGS__)
#define DLOG_CRIT(...) DLOG(LOG_CRIT, __VA_ARGS__)
#define DLOG_ERR(...) DLOG(LOG_ERR, __VA_ARGS__)
#define DLOG_WARNING(...) DLOG(LOG_WARNING, __VA_ARGS__)
#define DLOG_NOTICE(...) DLOG(LOG_NOTICE, __VA_ARGS__)
#define DLOG_INFO(...) DLOG(LOG_INFO, __VA_ARGS__)
#define DLOG_DEBUG(...) DLOG(LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif

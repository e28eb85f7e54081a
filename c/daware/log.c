/* Logging of spec 2.6.1-2.6.4: printf-formatted messages, laid out by the format's tags, sent by syslog(3). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "daware.h"

extern char *__progname; /* the program's name, as syslog(3) uses it by default (glibc and musl) */

/* A format, split once at its tags; never freed, as a concurrent daware_log may still read it. */
struct layout {
  char *text;
  int is_default;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout default_layout = {"%msg%", 1};
static _Atomic(struct layout *) current = &default_layout;
static atomic_int opened;
static char ident[256];
static int has_ident, option, facility = LOG_USER;

static const char *const LEVELS[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};
static const char *const FACILITIES[24] = {"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
                                           "uucp", "cron", "authpriv", "ftp", NULL, NULL, NULL, NULL,
                                           "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};
static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void open_locked(const char *id, int opt, int fac) {
  if (id != ident) {
    has_ident = id != NULL;
    if (id) snprintf(ident, sizeof ident, "%s", id); /* openlog keeps the pointer: ours, not the caller's */
  }
  option = opt;
  facility = fac & LOG_FACMASK;
  openlog(has_ident ? ident : NULL, option, facility);
  atomic_store(&opened, 1);
}

void daware_log_open(const char *id, int opt, int fac) {
  pthread_mutex_lock(&lock);
  open_locked(id, opt, fac);
  pthread_mutex_unlock(&lock);
}

void daware_log_close(void) {
  pthread_mutex_lock(&lock);
  closelog();
  has_ident = 0;
  atomic_store(&opened, 0);
  pthread_mutex_unlock(&lock);
}

void daware_log_set_format(const char *logfmt) {
  struct layout *l = &default_layout;
  if (logfmt != NULL && strcmp(logfmt, "%msg%") != 0) {
    l = malloc(sizeof *l);
    char *text = l ? strdup(logfmt) : NULL;
    if (text == NULL) {
      free(l);
      return; /* out of memory: the format stays as it was */
    }
    l->text = text;
    l->is_default = 0;
  }
  atomic_store(&current, l);
}

struct text {
  char *s;
  size_t len, cap;
  char small[1024];
};

static void add(struct text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *b = t->s == t->small ? malloc(cap) : realloc(t->s, cap);
    if (b == NULL) return; /* out of memory: the message is cut here */
    if (t->s == t->small) memcpy(b, t->small, t->len);
    t->s = b;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void adds(struct text *t, const char *s) { add(t, s, strlen(s)); }

/* The message itself into t (stack first, the heap for long ones). */
static void message(struct text *t, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = daware_vformat(t->s, t->cap, fmt, ap);
  if (n >= 0 && (size_t)n >= t->cap) {
    char *b = malloc((size_t)n + 1);
    if (b) {
      daware_vformat(b, (size_t)n + 1, fmt, again);
      t->s = b;
      t->cap = (size_t)n + 1;
    }
  }
  va_end(again);
  t->len = n < 0 ? 0 : (size_t)n < t->cap ? (size_t)n : t->cap - 1;
}

static void tag(struct text *out, const char *name, size_t n, int pri, const char *file, int line, const char *func,
                const char *msg) {
  char b[64];
  if (!strncmp(name, "faci", n)) {
    int f = (pri & LOG_FACMASK) ? (pri & LOG_FACMASK) : facility;
    int code = LOG_FAC(f);
    if (code < 24 && FACILITIES[code]) adds(out, FACILITIES[code]);
    else snprintf(b, sizeof b, "%d", code), adds(out, b);
  } else if (!strncmp(name, "lvl", n)) {
    adds(out, LEVELS[LOG_PRI(pri)]);
  } else if (!strncmp(name, "time", n)) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(b, sizeof b, "%s %2d %02d:%02d:%02d", MONTHS[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    adds(out, b);
  } else if (!strncmp(name, "host", n)) {
    if (gethostname(b, sizeof b) == 0) b[sizeof b - 1] = '\0', adds(out, b);
  } else if (!strncmp(name, "prog", n)) {
    adds(out, has_ident ? ident : __progname);
  } else if (!strncmp(name, "pid", n)) {
    snprintf(b, sizeof b, "%d", (int)getpid());
    adds(out, b);
  } else if (!strncmp(name, "msg", n)) {
    adds(out, msg);
  } else if (!strncmp(name, "file", n)) {
    adds(out, file ? file : "");
  } else if (!strncmp(name, "line", n)) {
    snprintf(b, sizeof b, "%d", line);
    adds(out, b);
  } else {
    adds(out, func ? func : "");
  }
}

/* The length of the tag name at s (just after a '%') when a tag and its closing '%' start there, else 0. */
static size_t tag_at(const char *s) {
  static const char *const TAGS[] = {"faci", "lvl", "time", "host", "prog", "pid", "msg", "file", "line", "func"};
  for (size_t i = 0; i < sizeof TAGS / sizeof *TAGS; i++) {
    size_t n = strlen(TAGS[i]);
    if (!strncmp(s, TAGS[i], n) && s[n] == '%') return n;
  }
  return 0;
}

void daware_log(int priority, const char *file, int line, const char *func, const char *fmt, ...) {
  if (!atomic_load(&opened)) {
    pthread_mutex_lock(&lock);
    if (!atomic_load(&opened)) open_locked(has_ident ? ident : NULL, option, facility);
    pthread_mutex_unlock(&lock);
  }
  struct text msg = {.cap = sizeof msg.small};
  msg.s = msg.small;
  va_list ap;
  va_start(ap, fmt);
  message(&msg, fmt, ap);
  va_end(ap);
  struct layout *l = atomic_load(&current);
  if (l->is_default) {
    syslog(priority, "%s", msg.s);
  } else {
    struct text out = {.cap = sizeof out.small};
    out.s = out.small;
    out.s[0] = '\0';
    const char *s = l->text;
    for (const char *pct; (pct = strchr(s, '%')) != NULL;) {
      size_t n = tag_at(pct + 1);
      add(&out, s, (size_t)(pct - s) + (n ? 0 : 1));
      if (n) tag(&out, pct + 1, n, priority, file, line, func, msg.s);
      s = pct + 1 + (n ? n + 1 : 0);
    }
    adds(&out, s);
    syslog(priority, "%s", out.s);
    if (out.s != out.small) free(out.s);
  }
  if (msg.s != msg.small) free(msg.s);
}

/*
 * The printf formatter of daware_log: the format is parsed exactly as the Node library's sprintf
 * parses it (src/daware/printf.ts), and each conversion C knows is handed alone to libc's snprintf
 * with its argument fetched at its C type. So %n (and any conversion C has not) is printed as written
 * and never writes memory, and the output matches Node's for the shared vectors.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <wchar.h>
#include "daware.h"

struct out {
  char *buf;
  size_t size;
  size_t len;
};

static void put(struct out *o, const char *s, size_t n) {
  if (o->len < o->size) {
    size_t room = o->size - o->len;
    memcpy(o->buf + o->len, s, n < room ? n : room);
  }
  o->len += n;
}

/* snprintf of one conversion straight into the output (it writes what fits, returns the whole length). */
#define EMIT(o, spec, value)                                                                     \
  do {                                                                                           \
    size_t room_ = (o)->len < (o)->size ? (o)->size - (o)->len : 0;                              \
    int n_ = snprintf(room_ ? (o)->buf + (o)->len : NULL, room_, (spec), (value));               \
    if (n_ > 0) (o)->len += (size_t)n_;                                                          \
  } while (0)

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads a decimal number, saturating at INT_MAX. */
static int number(const char **p) {
  long v = 0;
  while (is_digit(**p)) {
    if (v < INT_MAX) v = v * 10 + (**p - '0');
    (*p)++;
  }
  return v > INT_MAX ? INT_MAX : (int)v;
}

int daware_vformat(char *buf, size_t size, const char *fmt, va_list ap) {
  struct out o = {buf, size, 0};
  if (fmt == NULL) fmt = "";
  for (const char *p = fmt; *p;) {
    const char *pct = strchr(p, '%');
    if (pct == NULL) {
      put(&o, p, strlen(p));
      break;
    }
    put(&o, p, (size_t)(pct - p));
    const char *q = pct + 1;
    char flags[6] = "";
    size_t nflags = 0;
    for (; *q && strchr("-+ #0", *q); q++) {
      if (!memchr(flags, *q, nflags) && nflags < 5) flags[nflags++] = *q;
    }
    flags[nflags] = '\0';
    int width_star = 0, width = -1, prec_star = 0, prec = -1;
    if (*q == '*') width_star = 1, q++;
    else if (is_digit(*q)) width = number(&q);
    if (*q == '.') {
      q++;
      if (*q == '*') prec_star = 1, q++;
      else prec = number(&q);
    }
    char len[3] = "";
    if ((q[0] == 'h' && q[1] == 'h') || (q[0] == 'l' && q[1] == 'l')) len[0] = q[0], len[1] = q[1], q += 2;
    else if (*q && strchr("hlLqjzZt", *q)) len[0] = *q++;
    char conv = *q && strchr("diouxXcsfFeEgGaAp%", *q) ? *q : '\0';
    if (conv == '\0') {
      put(&o, pct, (size_t)(q - pct)); /* not a conversion C knows: as written, like glibc */
      p = q;
      continue;
    }
    p = q + 1;
    if (conv == '%') {
      put(&o, "%", 1);
      continue;
    }
    int left = strchr(flags, '-') != NULL;
    if (width_star) {
      int v = va_arg(ap, int);
      if (v < 0) left = 1, v = v == INT_MIN ? INT_MAX : -v;
      width = v;
    }
    if (prec_star) {
      int v = va_arg(ap, int);
      prec = v < 0 ? -1 : v;
    }
    if (left && !strchr(flags, '-') && nflags < 5) flags[nflags++] = '-', flags[nflags] = '\0';
    /* glibc's own spelling of the length: q is ll, Z is z, L on an integer is ll. */
    const char *clen = len;
    int integer = strchr("diouxX", conv) != NULL;
    if (len[0] == 'q' || (len[0] == 'L' && integer)) clen = "ll";
    else if (len[0] == 'Z') clen = "z";
    else if (!integer && !strchr("cs", conv) && len[0] != 'L') clen = ""; /* floats and %p take no h/l */
    if (strchr("cs", conv) && len[0] != 'l') clen = "";
    char spec[48];
    char w[16] = "", pr[16] = "";
    if (width >= 0) snprintf(w, sizeof w, "%d", width);
    if (prec >= 0) snprintf(pr, sizeof pr, ".%d", prec);
    snprintf(spec, sizeof spec, "%%%s%s%s%s%c", flags, w, pr, clen, conv);
    switch (conv) {
    case 'd':
    case 'i':
      if (!strcmp(clen, "l")) EMIT(&o, spec, va_arg(ap, long));
      else if (!strcmp(clen, "ll")) EMIT(&o, spec, va_arg(ap, long long));
      else if (!strcmp(clen, "j")) EMIT(&o, spec, va_arg(ap, intmax_t));
      else if (!strcmp(clen, "z")) EMIT(&o, spec, va_arg(ap, ssize_t));
      else if (!strcmp(clen, "t")) EMIT(&o, spec, va_arg(ap, ptrdiff_t));
      else EMIT(&o, spec, va_arg(ap, int)); /* hh, h and none: promoted to int */
      break;
    case 'o':
    case 'u':
    case 'x':
    case 'X':
      if (!strcmp(clen, "l")) EMIT(&o, spec, va_arg(ap, unsigned long));
      else if (!strcmp(clen, "ll")) EMIT(&o, spec, va_arg(ap, unsigned long long));
      else if (!strcmp(clen, "j")) EMIT(&o, spec, va_arg(ap, uintmax_t));
      else if (!strcmp(clen, "z")) EMIT(&o, spec, va_arg(ap, size_t));
      else if (!strcmp(clen, "t")) EMIT(&o, spec, va_arg(ap, ptrdiff_t));
      else EMIT(&o, spec, va_arg(ap, unsigned int));
      break;
    case 'c':
      if (clen[0] == 'l') EMIT(&o, spec, va_arg(ap, wint_t));
      else EMIT(&o, spec, va_arg(ap, int));
      break;
    case 's':
      if (clen[0] == 'l') EMIT(&o, spec, va_arg(ap, const wchar_t *));
      else EMIT(&o, spec, va_arg(ap, const char *));
      break;
    case 'p':
      EMIT(&o, spec, va_arg(ap, void *));
      break;
    default: /* f F e E g G a A */
      if (clen[0] == 'L') EMIT(&o, spec, va_arg(ap, long double));
      else EMIT(&o, spec, va_arg(ap, double));
    }
  }
  if (size > 0) buf[o.len < size ? o.len : size - 1] = '\0';
  return o.len > INT_MAX ? INT_MAX : (int)o.len;
}

int daware_format(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = daware_vformat(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

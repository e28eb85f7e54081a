/*
 * Termination callbacks (spec 2.6.5-2.6.6) and the registry entries of docs/daware-protocol.md.
 * The handler runs the callbacks itself, so it touches only a fixed table published with atomics,
 * and async-signal-safe calls (getpid, unlink, _exit): no lock, no allocation, no stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daware.h"

#define REGISTRY "/run/daware"
#define MAX_CALLBACKS 64
#define MAX_SIGNAL 64

struct slot {
  DTermination handle;
  atomic_int used;
  int signo;
  int (*func)(int, void *);
  void *arg;
  unsigned long order;
};

static struct slot slots[MAX_CALLBACKS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int per_signal[MAX_SIGNAL + 1]; /* callbacks registered for each signal */
static atomic_int has_entry[MAX_SIGNAL + 1];
static struct sigaction previous[MAX_SIGNAL + 1];
static atomic_int terminating;
static unsigned long next_order;
static int exit_hook;

/* Appends decimal v to p (async-signal-safe); returns the end. */
static char *decimal(char *p, long v) {
  char d[24];
  int n = 0;
  do d[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  while (n > 0) *p++ = d[--n];
  return p;
}

/* "/run/daware/<pid>.<signo>" (or, with tmp, "/run/daware/.<pid>.<signo>.tmp"). */
static void entry_path(char *buf, int signo, int tmp) {
  char *p = buf;
  memcpy(p, REGISTRY "/", sizeof REGISTRY);
  p += sizeof REGISTRY;
  if (tmp) *p++ = '.';
  p = decimal(p, (long)getpid());
  *p++ = '.';
  p = decimal(p, signo);
  if (tmp) memcpy(p, ".tmp", 4), p += 4;
  *p = '\0';
}

/* Field 22 of /proc/self/stat (the start time in clock ticks) followed by "\n", into buf. */
static int start_time(char *buf, size_t size) {
  char stat[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return -1;
  stat[n] = '\0';
  char *p = strrchr(stat, ')');
  if (p == NULL) return -1;
  p += 2; /* field 3 */
  for (int field = 3; field < 22 && p; field++) p = strchr(p, ' '), p = p ? p + 1 : NULL;
  if (p == NULL) return -1;
  size_t len = strcspn(p, " ");
  if (len == 0 || len + 2 > size) return -1;
  memcpy(buf, p, len);
  buf[len] = '\n';
  buf[len + 1] = '\0';
  return 0;
}

/* Writes this process's entry for signo, whole or not at all (a temporary file renamed into place). */
static int write_entry(int signo) {
  struct stat st;
  if (stat(REGISTRY, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) return errno = ENOTDIR, -1;
  char content[32], tmp[64], path[64];
  if (start_time(content, sizeof content) != 0) return errno = EIO, -1;
  entry_path(tmp, signo, 1);
  entry_path(path, signo, 0);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(content);
  int ok = write(fd, content, len) == (ssize_t)len;
  int saved = errno;
  if (close(fd) != 0 && ok) ok = 0, saved = errno;
  if (ok && rename(tmp, path) == 0) return 0;
  if (ok) saved = errno;
  unlink(tmp);
  errno = saved;
  return -1;
}

/* Removes every entry of this process (async-signal-safe). */
static void leave_registry(void) {
  char path[64];
  for (int s = 1; s <= MAX_SIGNAL; s++) {
    if (!atomic_load(&has_entry[s])) continue;
    entry_path(path, s, 0);
    unlink(path);
  }
}

static void on_signal(int signo) {
  if (atomic_exchange(&terminating, 1)) return; /* a second signal while the callbacks run */
  int status = 0;
  unsigned long done = 0;
  for (;;) { /* the callbacks of signo in registration order */
    struct slot *first = NULL;
    for (int i = 0; i < MAX_CALLBACKS; i++) {
      struct slot *s = &slots[i];
      if (atomic_load(&s->used) && s->signo == signo && s->order >= done && (!first || s->order < first->order)) first = s;
    }
    if (first == NULL) break;
    done = first->order + 1;
    status = first->func(signo, first->arg);
  }
  leave_registry();
  _exit(status & 0xff);
}

DTermination *daware_termination_register_callback(int signo, int (*func)(int, void *), void *arg) {
  if (signo < 1 || signo > MAX_SIGNAL || signo == SIGKILL || signo == SIGSTOP || func == NULL) {
    errno = EINVAL;
    return NULL;
  }
  DTermination *handle = NULL;
  pthread_mutex_lock(&lock);
  struct slot *free_slot = NULL;
  for (int i = 0; i < MAX_CALLBACKS && !free_slot; i++) {
    if (!atomic_load(&slots[i].used)) free_slot = &slots[i];
  }
  if (free_slot == NULL) {
    errno = ENOSPC;
  } else if (write_entry(signo) == 0) {
    int installed = per_signal[signo] > 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask); /* nothing else interrupts the callbacks */
    if (installed || sigaction(signo, &sa, &previous[signo]) == 0) {
      free_slot->signo = signo;
      free_slot->func = func;
      free_slot->arg = arg;
      free_slot->order = next_order++;
      free_slot->handle = (DTermination)(free_slot - slots) + 1;
      atomic_store(&has_entry[signo], 1);
      atomic_store(&free_slot->used, 1); /* published last: the handler sees a whole slot or none */
      per_signal[signo]++;
      if (!exit_hook) exit_hook = atexit(leave_registry) == 0;
      handle = &free_slot->handle;
    } else {
      int saved = errno; /* a signal libc keeps for itself (SIGCANCEL, SIGSETXID): EINVAL */
      char path[64];
      entry_path(path, signo, 0);
      unlink(path);
      errno = saved;
    }
  }
  pthread_mutex_unlock(&lock);
  return handle;
}

void daware_termination_unregister_callback(DTermination *dterm) {
  if (dterm == NULL) return;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_CALLBACKS; i++) {
    struct slot *s = &slots[i];
    if (&s->handle != dterm || !atomic_load(&s->used)) continue;
    atomic_store(&s->used, 0);
    if (--per_signal[s->signo] == 0) {
      sigaction(s->signo, &previous[s->signo], NULL);
      atomic_store(&has_entry[s->signo], 0);
      char path[64];
      entry_path(path, s->signo, 0);
      unlink(path);
    }
  }
  pthread_mutex_unlock(&lock);
}

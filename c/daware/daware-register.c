/*
 * daware-register: D-Aware for shell scripts. Registers SIGNAL (docs/daware-protocol.md), runs CMD,
 * and exits with its status. When SIGNAL comes (D-RE sends it at stop), it runs ON_SIGNAL with
 * /bin/sh -c (its status becomes ours), else it passes SIGNAL on to CMD and takes CMD's status.
 *   daware-register [-c ON_SIGNAL] SIGNAL -- CMD [ARG...]
 * Exit: CMD's status (128+N if signal N ended it), 64 usage, 69 no registry, 127 CMD not run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include "daware.h"

static const struct { const char *name; int signo; } NAMES[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
  {"TERM", SIGTERM}, {"PWR", SIGPWR}, {"KILL", SIGKILL}, {"STOP", SIGSTOP},
};

static pid_t child;
static const char *on_signal;

static int status_of(int ws) { return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws); }

/* Runs in the signal handler: fork, execve, kill and waitpid are async-signal-safe. */
static int callback(int signo, void *arg) {
  (void)arg;
  int ws, status;
  if (on_signal) {
    pid_t sh = fork();
    if (sh == 0) {
      char *const argv[] = {"sh", "-c", (char *)on_signal, NULL};
      execv("/bin/sh", argv);
      _exit(127);
    }
    status = sh > 0 && waitpid(sh, &ws, 0) == sh ? status_of(ws) : 127;
    kill(child, signo);
    waitpid(child, &ws, 0);
    return status;
  }
  kill(child, signo);
  return waitpid(child, &ws, 0) == child ? status_of(ws) : 1;
}

static int signal_number(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  if (*s && *end == '\0') return n > 0 && n <= 64 ? (int)n : -1;
  if (!strncasecmp(s, "SIG", 3)) s += 3;
  for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++) {
    if (!strcasecmp(s, NAMES[i].name)) return NAMES[i].signo;
  }
  return -1;
}

int main(int argc, char **argv) {
  int i = 1;
  if (i + 1 < argc && !strcmp(argv[i], "-c")) on_signal = argv[i + 1], i += 2;
  int signo = i < argc ? signal_number(argv[i]) : -1;
  if (signo < 0 || i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) {
    fprintf(stderr, "usage: daware-register [-c ON_SIGNAL] SIGNAL -- CMD [ARG...]\n");
    return 64;
  }
  char **cmd = argv + i + 2;
  /* SIGNAL stays blocked until CMD runs, so the callback always has a child to talk to. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, signo);
  sigprocmask(SIG_BLOCK, &block, &old);
  DTermination *h = daware_termination_register_callback(signo, callback, NULL);
  if (h == NULL) {
    fprintf(stderr, "daware-register: cannot register signal %d: %s\n", signo,
            errno == EINVAL ? "it cannot be caught" : strerror(errno));
    return errno == EINVAL ? 64 : 69;
  }
  child = fork();
  if (child == 0) {
    signal(signo, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(cmd[0], cmd);
    fprintf(stderr, "daware-register: %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  if (child < 0) {
    perror("daware-register: fork");
    return 71;
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  int ws;
  while (waitpid(child, &ws, 0) < 0 && errno == EINTR) {}
  daware_termination_unregister_callback(h);
  return status_of(ws);
}

/*
 * dre-notify: the host side of the NOTIFY_SOCKET that dred serves in every application container
 * (systemd's notify protocol: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1, WATCHDOG_USEC=...).
 * One process for the whole D-RE root: it binds the unix datagram sockets the daemon names on its
 * stdin and writes one JSON line per accepted message on its stdout.
 *
 * stdin, one command a line, fields separated by tabs (paths may hold spaces):
 *   add KEY PATH CGROUP  |  del KEY
 *   KEY names the container (letters, digits, . _ -), PATH is the socket to bind (replaced), CGROUP
 *   the container's cgroup path as /proc/PID/cgroup shows it.
 * stdout, one JSON object a line:
 *   {"key":K,"pid":P,"msg":"READY=1\nSTATUS=..."}   an accepted message
 *   {"key":K,"bound":PATH}                            a socket is ready
 *   {"key":K,"dropped":N,"why":"..."}                 messages dropped (reported once a second at most)
 *   {"key":K,"error":"..."}                           an add that failed
 *
 * What arrives is untrusted: a message counts only with the sender's credentials (SO_PASSCRED) and
 * when the sender is a process of that container (its /proc/PID/cgroup is at or below CGROUP);
 * at most MAX_MSG bytes (a longer one is dropped, not cut); at most RATE messages a second per socket
 * (a bucket of BURST); anything else is dropped and counted.
 *
 * A PATH longer than a unix address holds (107 bytes) is bound the way systemd and conmon do it: through
 * the directory opened O_PATH, as /proc/self/fd/N/NAME (the kernel resolves the directory by its
 * descriptor; the container never sees the host path, only its own short NOTIFY_SOCKET).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 1024
#define MAX_MSG 4096
#define RATE 20.0
#define BURST 40.0

struct watched {
  int fd;
  char key[128];
  char cgroup[512];
  double tokens;
  double refilled;
  unsigned long dropped;
  const char *why;
  double reported;
};

static struct watched socks[MAX_SOCKETS];
static int nsocks;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes s as a JSON string (quotes included). */
static void json_string(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void report(const struct watched *w, const char *field, const char *value) {
  fputs("{\"key\":", stdout);
  json_string(w->key, strlen(w->key));
  printf(",\"%s\":", field);
  json_string(value, strlen(value));
  fputs("}\n", stdout);
  fflush(stdout);
}

static void drop(struct watched *w, const char *why) {
  w->dropped++;
  w->why = why;
  double t = now();
  if (t - w->reported < 1.0) return;
  w->reported = t;
  fputs("{\"key\":", stdout);
  json_string(w->key, strlen(w->key));
  printf(",\"dropped\":%lu,\"why\":", w->dropped);
  json_string(why, strlen(why));
  fputs("}\n", stdout);
  fflush(stdout);
  w->dropped = 0;
}

/*
 * Whether process pid is in the cgroup `want` or below it, in any hierarchy /proc/PID/cgroup lists;
 * -1 when the process is gone (reaped before it could be checked: it cannot count).
 */
static int in_cgroup(pid_t pid, const char *want) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t n = strlen(want);
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *p = strchr(line, ':');
    if (p) p = strchr(p + 1, ':');
    if (!p) continue;
    p++;
    p[strcspn(p, "\n")] = '\0';
    found = strncmp(p, want, n) == 0 && (p[n] == '\0' || p[n] == '/');
  }
  fclose(f);
  return found;
}

static int valid_key(const char *k) {
  if (!*k || strlen(k) >= sizeof socks[0].key) return 0;
  for (const char *p = k; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-')) return 0;
  return 1;
}

static void del(const char *key) {
  for (int i = 0; i < nsocks; i++) {
    if (strcmp(socks[i].key, key) != 0) continue;
    close(socks[i].fd);
    socks[i] = socks[--nsocks];
    return;
  }
}

/*
 * The address that binds `path`: the path itself when it fits, else /proc/self/fd/N/NAME through its
 * directory opened O_PATH (*dirfd, closed by the caller after the bind). -1 with errno set on failure.
 */
static int socket_address(const char *path, struct sockaddr_un *addr, int *dirfd) {
  *dirfd = -1;
  if (strlen(path) < sizeof addr->sun_path) {
    memcpy(addr->sun_path, path, strlen(path) + 1);
    return 0;
  }
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path || !slash[1]) return errno = ENAMETOOLONG, -1;
  char dir[4096];
  if ((size_t)(slash - path) >= sizeof dir) return errno = ENAMETOOLONG, -1;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = '\0';
  if ((*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return -1;
  int n = snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dirfd, slash + 1);
  if (n < 0 || (size_t)n >= sizeof addr->sun_path) return errno = ENAMETOOLONG, -1;
  return 0;
}

static void add(const char *key, const char *path, const char *cgroup) {
  struct watched w = {.fd = -1, .tokens = BURST, .refilled = now()};
  snprintf(w.key, sizeof w.key, "%s", key);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(cgroup) >= sizeof w.cgroup || cgroup[0] != '/') return report(&w, "error", "cgroup too long or not absolute");
  if (nsocks == MAX_SOCKETS) return report(&w, "error", "too many sockets");
  snprintf(w.cgroup, sizeof w.cgroup, "%s", cgroup);
  del(key);
  int dirfd = -1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 || socket_address(path, &addr, &dirfd) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    if (dirfd >= 0) close(dirfd);
    return report(&w, "error", strerror(e));
  }
  unlink(path);
  /* Anyone in the container may send (its root is an unprivileged uid on the host): mode 0666. */
  int bound = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && chmod(path, 0666) == 0;
  int e = errno;
  if (dirfd >= 0) close(dirfd);
  if (!bound) {
    close(fd);
    return report(&w, "error", strerror(e));
  }
  w.fd = fd;
  socks[nsocks++] = w;
  report(&w, "bound", path);
}

/* One command line from the daemon. */
static void command(char *line) {
  char *save = NULL;
  char *verb = strtok_r(line, "\t\n", &save);
  char *key = strtok_r(NULL, "\t\n", &save);
  if (!verb || !key || !valid_key(key)) return;
  if (strcmp(verb, "del") == 0) return del(key);
  char *path = strtok_r(NULL, "\t\n", &save);
  char *cgroup = strtok_r(NULL, "\t\n", &save);
  if (strcmp(verb, "add") == 0 && path && cgroup) add(key, path, cgroup);
}

static void receive(struct watched *w) {
  char buf[MAX_MSG + 1];
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
  } control;
  for (;;) {
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(w->fd, &m, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (n < 0) return;
    struct ucred *cred = NULL;
    int member;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) cred = (struct ucred *)CMSG_DATA(c);
      if (c->cmsg_type == SCM_RIGHTS) /* descriptors passed along (FDSTORE=1): never kept */
        for (int *fd = (int *)CMSG_DATA(c); (char *)fd < (char *)c + c->cmsg_len; fd++) close(*fd);
    }
    double t = now();
    w->tokens += (t - w->refilled) * RATE;
    if (w->tokens > BURST) w->tokens = BURST;
    w->refilled = t;
    if ((size_t)n > MAX_MSG || (m.msg_flags & MSG_TRUNC)) drop(w, "longer than 4096 bytes");
    else if (!cred || cred->pid <= 0) drop(w, "no credentials");
    else if ((member = in_cgroup(cred->pid, w->cgroup)) < 0) drop(w, "sender gone before it could be checked");
    else if (!member) drop(w, "sender is not a process of the container");
    else if (w->tokens < 1.0) drop(w, "more than 20 messages a second");
    else {
      w->tokens -= 1.0;
      fputs("{\"key\":", stdout);
      json_string(w->key, strlen(w->key));
      printf(",\"pid\":%d,\"msg\":", (int)cred->pid);
      json_string(buf, (size_t)n);
      fputs("}\n", stdout);
      fflush(stdout);
    }
  }
}

int main(void) {
  static struct pollfd fds[MAX_SOCKETS + 1];
  char line[2048];
  size_t have = 0;
  for (;;) {
    fds[0] = (struct pollfd){.fd = 0, .events = POLLIN};
    for (int i = 0; i < nsocks; i++) fds[i + 1] = (struct pollfd){.fd = socks[i].fd, .events = POLLIN};
    int count = nsocks;
    if (poll(fds, (nfds_t)count + 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[0].revents) {
      ssize_t n = read(0, line + have, sizeof line - 1 - have);
      if (n <= 0) return 0; /* the daemon is gone: so is the relay */
      have += (size_t)n;
      line[have] = '\0';
      char *start = line, *nl;
      while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        command(start);
        start = nl + 1;
      }
      have = strlen(start);
      memmove(line, start, have);
      if (have == sizeof line - 1) have = 0; /* a line longer than any command: dropped */
    }
    for (int i = 0; i < count && i < nsocks; i++)
      if (fds[i + 1].revents && fds[i + 1].fd == socks[i].fd) receive(&socks[i]);
  }
}

/* DLOG_INFO through libdaware against a plain syslog(3) of the same message, interleaved rounds.
 * Prints one line per round: "<µs per DLOG_INFO> <µs per syslog>". bench/daware.ts builds and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include "daware.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double ours(int batch) {
  double t = now_us();
  for (int i = 0; i < batch; i++) DLOG_INFO("request %d took %.3f ms from %s", i, 1.5, "client");
  return (now_us() - t) / batch;
}

static double plain(int batch) {
  double t = now_us();
  for (int i = 0; i < batch; i++) syslog(LOG_INFO, "request %d took %.3f ms from %s", i, 1.5, "client");
  return (now_us() - t) / batch;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 15, batch = argc > 2 ? atoi(argv[2]) : 2000;
  daware_log_open("bench", 0, LOG_USER); /* the same openlog for both sides */
  for (int r = 0; r < rounds; r++) {
    double a, b;
    if (r % 2 == 0) a = ours(batch), b = plain(batch);
    else b = plain(batch), a = ours(batch);
    printf("%.4f %.4f\n", a, b);
  }
  return 0;
}

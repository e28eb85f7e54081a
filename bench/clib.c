/*
 * The C side of bench/clib.ts, through libdreapp and dred:
 *   clib status NAME N   N calls of dre_app_status on one handle: one line of milliseconds each
 *   clib start NAME      one dre_app_start: its milliseconds
 */
#include <dre_app.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    dre_app_handle *h = dre_app_open(argv[2]);
    if (h == NULL) return 1;
    int n = argc > 3 ? atoi(argv[3]) : 1;
    for (int i = 0; i < n; i++) {
        double t = now_ms();
        int r = strcmp(argv[1], "start") == 0 ? dre_app_start(h) : dre_app_status(h);
        double ms = now_ms() - t;
        if (r < 0) {
            fprintf(stderr, "%s: %d\n", argv[1], r);
            return 1;
        }
        printf("%.4f\n", ms);
    }
    dre_app_close(h);
    return 0;
}

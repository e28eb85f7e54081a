/*
 * Several threads at once through libdreapp: each lists the containers and releases the list, opens
 * and closes a handle, and asks a status, many times. Prints the number of unexpected results.
 * Usage: threads NAME (an existing container) THREADS ROUNDS
 */
#include <dre_app.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char *name;
static int rounds;

static void *work(void *arg)
{
    long wrong = 0;
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        dre_list_t l;
        if (dre_app_get_container_list(&l) != 0 || dre_app_release_container_list(l) != 0) wrong++;
        dre_app_handle *h = dre_app_open(name);
        if (h == NULL) {
            wrong++;
            continue;
        }
        if (dre_app_status(h) != DRE_APP_CONTAINER_STATUS_STOP) wrong++;
        if (dre_app_close(h) != 0) wrong++;
    }
    return (void *)wrong;
}

int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    name = argv[1];
    int n = atoi(argv[2]);
    rounds = atoi(argv[3]);
    pthread_t t[64];
    long wrong = 0;
    for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < n && i < 64; i++) {
        void *w;
        pthread_join(t[i], &w);
        wrong += (long)w;
    }
    printf("%ld\n", wrong);
    return wrong != 0;
}

/*
 * aiod-bench peer: a gearmand worker in C with one function, "noop", that
 * returns an empty result at once (the gearman counterpart of bench.noop).
 * Built and started by tests/bench/peers.sh.
 *   gearman_worker PORT
 */
#include <stdio.h>
#include <stdlib.h>

#include <libgearman/gearman.h>

static void *noop(gearman_job_st *job, void *context, size_t *result_size, gearman_return_t *ret) {
    (void)job;
    (void)context;
    *result_size = 0;
    *ret = GEARMAN_SUCCESS;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gearman_worker PORT\n");
        return 2;
    }
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w)
        return 1;
    if (gearman_worker_add_server(w, "127.0.0.1", (in_port_t)atoi(argv[1])) != GEARMAN_SUCCESS ||
        gearman_worker_add_function(w, "noop", 0, noop, NULL) != GEARMAN_SUCCESS) {
        fprintf(stderr, "gearman_worker: %s\n", gearman_worker_error(w));
        return 1;
    }
    for (;;) {
        gearman_return_t r = gearman_worker_work(w);
        if (r != GEARMAN_SUCCESS) {
            fprintf(stderr, "gearman_worker: %s\n", gearman_worker_error(w));
            return 1;
        }
    }
}

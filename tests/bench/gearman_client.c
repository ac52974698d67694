/*
 * aiod-bench peer: a gearmand client in C running foreground "noop" jobs.
 *   gearman_client PORT latency N          one job at a time: p50/p99 in us
 *   gearman_client PORT throughput N D     N jobs, D submitted per batch
 *                                          (gearman_client_run_tasks)
 * Prints "name value" lines like aiod-bench --connect.
 * Built and run by tests/bench/peers.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libgearman/gearman.h>

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: gearman_client PORT latency N | PORT throughput N DEPTH\n");
        return 2;
    }
    gearman_client_st *c = gearman_client_create(NULL);
    if (!c ||
        gearman_client_add_server(c, "127.0.0.1", (in_port_t)atoi(argv[1])) != GEARMAN_SUCCESS)
        return 1;
    long n = atol(argv[3]);
    if (!strcmp(argv[2], "latency")) {
        unsigned long long *v = malloc((size_t)n * sizeof(*v));
        for (long i = -n / 10; i < n; i++) {
            unsigned long long t0 = now_ns();
            size_t len;
            gearman_return_t r;
            void *res = gearman_client_do(c, "noop", NULL, "x", 1, &len, &r);
            free(res);
            if (r != GEARMAN_SUCCESS) {
                printf("latency failed: %s\n", gearman_client_error(c));
                return 1;
            }
            if (i >= 0)
                v[i] = now_ns() - t0;
        }
        qsort(v, (size_t)n, sizeof(*v), cmp);
        printf("latency_p50_us %.1f\nlatency_p99_us %.1f\n", (double)v[n / 2] / 1e3,
               (double)v[(size_t)((double)n * 0.99)] / 1e3);
        free(v);
    } else {
        long depth = argc > 4 ? atol(argv[4]) : 256;
        unsigned long long t0 = now_ns();
        long done = 0;
        while (done < n) {
            long k = n - done < depth ? n - done : depth;
            for (long i = 0; i < k; i++) {
                gearman_return_t r;
                gearman_client_add_task(c, NULL, NULL, "noop", NULL, "x", 1, &r);
                if (r != GEARMAN_SUCCESS) {
                    printf("throughput failed: %s\n", gearman_client_error(c));
                    return 1;
                }
            }
            if (gearman_client_run_tasks(c) != GEARMAN_SUCCESS) {
                printf("throughput failed: %s\n", gearman_client_error(c));
                return 1;
            }
            gearman_client_task_free_all(c);
            done += k;
        }
        printf("throughput %.0f\n", (double)n * 1e9 / (double)(now_ns() - t0));
    }
    gearman_client_free(c);
    return 0;
}

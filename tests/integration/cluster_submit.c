/*
 * cluster_submit: submits N tasks to a cluster queue through one
 * libaioclient connection (aioc_submit_queue) and prints their ids, one per
 * line, in order. test_cluster.py uses it for the thousands of tasks that
 * one aioctl process per task would take minutes to submit.
 *
 * Usage: cluster_submit [--detach] SOCKET QUEUE N FUNC [ARG...]
 *
 * Each ARG is JSON (`0.02`, `"text"`, `[1,2]`); the word `@i` stands for
 * the task's index (0 .. N-1) as an int, so that every task's result can be
 * told apart. Exits 0 after N submits, 1 at the first failure (the error
 * and libaioclient's message on stderr, the ids submitted so far on
 * stdout), 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aioc.h>

/* The call of task `index`: FUNC with the ARGs, `@i` as the index. NULL
 * after a message on stderr. The caller owns the call. */
static aioc_call *make_call(const char *func, char **args, int n_args, long index) {
    aioc_call *call = aioc_call_new(func);
    if (!call) {
        fprintf(stderr, "aioc_call_new(%s) failed\n", func);
        return NULL;
    }
    for (int a = 0; a < n_args; a++) {
        aioc_value *v = NULL;
        int r;
        if (strcmp(args[a], "@i") == 0) {
            v = aioc_value_int(index);
            r = v ? 0 : -ENOMEM;
        } else {
            r = aioc_value_from_json(args[a], &v);
        }
        if (r < 0 || (r = aioc_call_arg(call, v)) < 0) {
            fprintf(stderr, "argument %d (%s): %s\n", a + 1, args[a], strerror(-r));
            aioc_call_free(call);
            return NULL;
        }
    }
    return call;
}

int main(int argc, char **argv) {
    unsigned flags = AIOC_SUBMIT_SUBMITTED;
    aioc_client *c = NULL;
    char *end;
    int r;

    if (argc > 1 && strcmp(argv[1], "--detach") == 0) {
        flags = AIOC_SUBMIT_DETACHED;
        argv++;
        argc--;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: cluster_submit [--detach] SOCKET QUEUE N FUNC [ARG...]\n");
        return 2;
    }
    const char *socket_path = argv[1], *queue = argv[2], *func = argv[4];
    long n = strtol(argv[3], &end, 10);
    if (*end || n < 0) {
        fprintf(stderr, "cluster_submit: N must be a count, got %s\n", argv[3]);
        return 2;
    }

    r = aioc_connect(socket_path, &c);
    if (r < 0) {
        fprintf(stderr, "aioc_connect(%s): %s\n", socket_path, strerror(-r));
        return 1;
    }
    for (long i = 0; i < n; i++) {
        uint64_t id = 0;
        aioc_call *call = make_call(func, argv + 5, argc - 5, i);
        if (!call) {
            aioc_close(c);
            return 1;
        }
        r = aioc_submit_queue(c, queue, call, flags, &id);
        aioc_call_free(call);
        if (r < 0) {
            fprintf(stderr, "aioc_submit_queue #%ld to %s: %s (%s)\n", i, queue, strerror(-r),
                    aioc_last_error(c));
            aioc_close(c);
            return 1;
        }
        if (!aioc_is_cluster_id(id)) {
            fprintf(stderr, "aioc_submit_queue #%ld returned %" PRIu64 ", not a cluster id\n", i,
                    id);
            aioc_close(c);
            return 1;
        }
        printf("%" PRIu64 "\n", id);
    }
    aioc_close(c);
    if (fflush(stdout) != 0) {
        perror("cluster_submit: stdout");
        return 1;
    }
    return 0;
}

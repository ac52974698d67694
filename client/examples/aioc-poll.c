/*
 * aioc-poll: libaioclient's non-blocking API in a program with its own
 * poll() loop (docs/libaioclient.md walks through it).
 *
 *   aioc-poll-example [-s SOCKET] [CALL...]
 *
 * Without CALLs it starts three gathers at once, each of demo.hello NAME and
 * demo.sleep 1 NAME with their output followed, so the three greetings show
 * at once and all three results after about one second, not three. Each
 * CALL given instead ("demo.main_gather", "demo.sleep 2 x": a function and
 * its arguments separated by spaces) is started as a run (asyncio.run).
 *
 * Every output line is printed as it arrives, prefixed with the number of
 * the request it belongs to, then each result as JSON when its request
 * completes, in the order the daemon answers. Exit status 0 when every task
 * succeeded, 1 otherwise, 3 when the daemon cannot be reached.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <aioc.h>

#define MAX_REQUESTS 64

struct job {
    int n;                /* 1, 2, ...: the prefix of its lines */
    aioc_request *req;    /* owned; freed at the end */
    struct program *prog; /* to count what is left */
};

struct program {
    struct timespec start;
    int left;   /* requests still in flight */
    int failed; /* requests or tasks that did not succeed */
};

static double elapsed(const struct program *p) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
}

/* Output lines of one request's tasks (aioc_request_set_output_callback). */
static void on_output(uint64_t task_id, int stream, const char *line, void *userdata) {
    const struct job *job = userdata;
    printf("[%d] %5.2f s  task %llu%s: %s\n", job->n, elapsed(job->prog),
           (unsigned long long)task_id, stream == 2 ? " (stderr)" : "", line);
    fflush(stdout);
}

static void print_outcome(const struct job *job, const aioc_outcome *o) {
    if (aioc_outcome_state(o) == AIOC_STATE_DONE) {
        char *json = aioc_value_to_json(aioc_outcome_result(o));
        printf("%s", json ? json : "?");
        free(json);
    } else {
        printf("{\"error\":\"%s\"}", aioc_outcome_error_kind(o));
        job->prog->failed++;
    }
}

/* Completion of a gather or a run. Runs from aioc_process(). */
static void on_done(aioc_request *req, int error, void *userdata) {
    struct job *job = userdata;
    job->prog->left--;
    printf("[%d] %5.2f s  ", job->n, elapsed(job->prog));
    if (error < 0) {
        const char *why = aioc_request_error_message(req);
        printf("failed: %s\n", *why ? why : strerror(-error));
        job->prog->failed++;
    } else {
        printf("result: ");
        size_t n = aioc_request_n_outcomes(req);
        if (n > 1)
            printf("[");
        for (size_t i = 0; i < n; i++) {
            printf("%s", i ? "," : "");
            print_outcome(job, aioc_request_outcome(req, i));
        }
        printf("%s\n", n > 1 ? "]" : "");
    }
    fflush(stdout);
}

/* A call from "function arg arg ..." (words split at spaces). */
static aioc_call *parse_call(const char *text) {
    char *copy = strdup(text), *save = NULL;
    aioc_call *call = NULL;
    if (!copy)
        return NULL;
    char *word = strtok_r(copy, " ", &save);
    if (word)
        call = aioc_call_new(word);
    while (call && (word = strtok_r(NULL, " ", &save)))
        if (aioc_call_arg_text(call, word) < 0) {
            aioc_call_free(call);
            call = NULL;
        }
    free(copy);
    return call;
}

/* Starts a gather of demo.hello NAME and demo.sleep 1 NAME. */
static int start_greeting(aioc_client *c, struct job *job, const char *name) {
    char hello[64], sleep[64];
    snprintf(hello, sizeof(hello), "demo.hello %s", name);
    snprintf(sleep, sizeof(sleep), "demo.sleep 1 %s", name);
    aioc_call *items[2] = {parse_call(hello), parse_call(sleep)};
    int r = -ENOMEM;
    if (items[0] && items[1])
        r = aioc_start_gather(c, (const aioc_call *const *)items, 2, AIOC_GATHER_FOLLOW, 0, on_done,
                              job, &job->req);
    /* The request is packed at once: the calls are not needed any more. */
    aioc_call_free(items[0]);
    aioc_call_free(items[1]);
    return r;
}

static int start_run(aioc_client *c, struct job *job, const char *text) {
    aioc_call *call = parse_call(text);
    if (!call)
        return -EINVAL;
    int r = aioc_start_run(c, call, 0, on_done, job, &job->req);
    aioc_call_free(call);
    return r;
}

int main(int argc, char **argv) {
    static const char *const names[] = {"alice", "bob", "carol"};
    const char *socket_path = NULL;
    struct job jobs[MAX_REQUESTS];
    struct program prog = {0};
    aioc_client *c;
    int first = 1, n, r;

    if (argc > 2 && strcmp(argv[1], "-s") == 0) {
        socket_path = argv[2];
        first = 3;
    }
    n = argc - first > 0 ? argc - first : 3;
    if (n > MAX_REQUESTS) {
        fprintf(stderr, "aioc-poll: at most %d CALLs\n", MAX_REQUESTS);
        return 2;
    }
    r = aioc_connect(socket_path, &c);
    if (r < 0) {
        fprintf(stderr, "aioc-poll: cannot connect: %s\n", strerror(-r));
        return 3;
    }

    /* Start everything at once: the requests are pipelined. */
    clock_gettime(CLOCK_MONOTONIC, &prog.start);
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct job){.n = i + 1, .prog = &prog};
        if (argc - first > 0)
            r = start_run(c, &jobs[i], argv[first + i]);
        else
            r = start_greeting(c, &jobs[i], names[i]);
        if (r < 0) {
            fprintf(stderr, "aioc-poll: cannot start request %d: %s\n", i + 1, strerror(-r));
            n = i;
            prog.failed++;
            break;
        }
        aioc_request_set_output_callback(jobs[i].req, on_output, &jobs[i]);
        prog.left++;
    }

    /* The program's own loop. A real one would poll its other fds too. */
    while (prog.left > 0) {
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("aioc-poll: poll");
            break;
        }
        r = aioc_process(c); /* never blocks; runs on_output and on_done */
        if (r < 0) {
            /* The connection died; every request in flight completed with
             * the error, so prog.left is 0 now. */
            fprintf(stderr, "aioc-poll: %s\n", strerror(-r));
            prog.failed++;
            break;
        }
    }
    printf("all %d requests done in %.2f s\n", n, elapsed(&prog));

    for (int i = 0; i < n; i++)
        aioc_request_free(jobs[i].req);
    aioc_close(c);
    return prog.failed ? 1 : 0;
}

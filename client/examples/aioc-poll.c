/*
 * aioc-poll: libaioclient's non-blocking API in a program with its own
 * poll() loop (docs/libaioclient.md walks through it).
 *
 *   aioc-poll-example [-s SOCKET] [-t SECONDS] [-c] [CALL...]
 *
 * Without CALLs it starts three gathers at once, each of demo.hello NAME and
 * demo.sleep 1 NAME with their output followed, so the three greetings show
 * at once and all three results after about one second, not three. Each
 * CALL given instead ("demo.main_gather", "demo.sleep 2 x": a function and
 * its arguments separated by spaces) is started as a run (asyncio.run).
 *
 * Every output line is printed as it arrives, prefixed with the number of
 * the request it belongs to, then each result as JSON when its request
 * completes, in the order the daemon answers. The ids of a request's tasks
 * are printed as soon as the daemon names them ("started: tasks 11 12"),
 * and the end of each task's output ("end of task 11's output"). With -c,
 * the last task of each request is cancelled as soon as its id is known.
 *
 * It connects without blocking (aioc_connect_start) and gives up after
 * SECONDS (-t, default 30) when the daemon does not answer, its own poll()
 * keeping the time. It asks for one final callback per request
 * (AIOC_FLAG_FINAL_CALLBACKS), so counting callbacks is all its books.
 * Exit status 0 when every task succeeded, 1 otherwise, 3 when the daemon
 * cannot be reached.
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
    aioc_request *cancel; /* -c: the cancel of its last task (owned), or NULL */
    struct program *prog; /* to count what is left */
};

struct program {
    struct timespec start;
    aioc_client *client;
    int cancel_last; /* -c */
    int connected;   /* 1 once the hello was answered, -errno if it failed */
    int left;        /* requests still in flight */
    int failed;      /* requests or tasks that did not succeed */
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

/* Events: the tasks' ids as soon as the daemon names them, and the end of
 * each followed task's output. */
static void on_event(aioc_request *req, int event, uint64_t task_id, int state, void *userdata) {
    struct job *job = userdata;
    printf("[%d] %5.2f s  ", job->n, elapsed(job->prog));
    if (event == AIOC_EVENT_STARTED) {
        size_t n = 0;
        const uint64_t *ids = aioc_request_task_ids(req, &n);
        printf("started: tasks");
        for (size_t i = 0; i < n; i++)
            printf(" %llu", (unsigned long long)ids[i]);
        printf("\n");
        if (job->prog->cancel_last && n > 0 && !job->cancel)
            (void)aioc_start_cancel(job->prog->client, &ids[n - 1], 1, NULL, NULL, &job->cancel);
    } else if (event == AIOC_EVENT_OUTPUT_END) {
        printf("end of task %llu's output (%s)\n", (unsigned long long)task_id,
               aioc_state_name(state));
    }
    fflush(stdout);
}

static void on_connected(aioc_client *c, int error, void *userdata) {
    struct program *prog = userdata;
    prog->connected = error < 0 ? error : 1;
    if (error < 0)
        fprintf(stderr, "aioc-poll: cannot connect: %s%s%s\n", strerror(-error),
                *aioc_last_error(c) ? ": " : "", aioc_last_error(c));
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

/* Waits for the hello's answer, at most `timeout` seconds. */
static int wait_connected(struct program *prog, const char *socket_path, double timeout) {
    aioc_client *c = prog->client;
    while (prog->connected == 0) {
        int left = (int)((timeout - elapsed(prog)) * 1000);
        if (left <= 0) {
            fprintf(stderr, "aioc-poll: aiod at %s did not answer within %g s\n",
                    socket_path ? socket_path : "the default socket", timeout);
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = aioc_fd(c), .events = (short)aioc_events(c)};
        if (poll(&p, 1, left) < 0 && errno != EINTR)
            return -errno;
        int r = aioc_process(c); /* runs on_connected once the answer came */
        if (r < 0 && r != -EBUSY)
            return r;
    }
    return prog->connected < 0 ? prog->connected : 0;
}

int main(int argc, char **argv) {
    static const char *const names[] = {"alice", "bob", "carol"};
    const char *socket_path = NULL;
    double timeout = 30;
    struct job jobs[MAX_REQUESTS];
    struct program prog = {0};
    aioc_client *c;
    int first = 1, n, r;

    for (;;) {
        if (argc > first + 1 && strcmp(argv[first], "-s") == 0) {
            socket_path = argv[first + 1];
            first += 2;
        } else if (argc > first + 1 && strcmp(argv[first], "-t") == 0) {
            timeout = atof(argv[first + 1]);
            first += 2;
        } else if (argc > first && strcmp(argv[first], "-c") == 0) {
            prog.cancel_last = 1;
            first++;
        } else {
            break;
        }
    }
    n = argc - first > 0 ? argc - first : 3;
    if (n > MAX_REQUESTS) {
        fprintf(stderr, "aioc-poll: at most %d CALLs\n", MAX_REQUESTS);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &prog.start);
    r = aioc_connect_start(socket_path, on_connected, &prog, &c);
    if (r < 0) {
        fprintf(stderr, "aioc-poll: cannot connect: %s\n", strerror(-r));
        return 3;
    }
    prog.client = c;
    aioc_set_flags(c, AIOC_FLAG_FINAL_CALLBACKS);
    r = wait_connected(&prog, socket_path, timeout);
    if (r < 0) {
        aioc_close(c);
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
        aioc_request_set_event_callback(jobs[i].req, on_event, &jobs[i]);
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
        r = aioc_process(c);        /* never blocks; runs on_output and on_done */
        if (r < 0 && r != -EBUSY) { /* -EBUSY only says "called from a callback" */
            /* The connection died; every request in flight completed with
             * the error, so prog.left is 0 now. */
            fprintf(stderr, "aioc-poll: %s\n", strerror(-r));
            prog.failed++;
            break;
        }
    }
    printf("all %d requests done in %.2f s\n", n, elapsed(&prog));

    for (int i = 0; i < n; i++) {
        aioc_request_free(jobs[i].req);
        aioc_request_free(jobs[i].cancel);
    }
    aioc_close(c);
    return prog.failed ? 1 : 0;
}

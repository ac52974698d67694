/*
 * Test plugin "threads": api->to_thread under test (test_threads.py).
 *
 *   threads.block(seconds, tag)     nanosleep on a pool thread; returns the ms
 *                                   slept. Its argument's release logs
 *                                   "threads: released TAG (work ran: yes|no)".
 *   threads.block_on_loop(seconds)  the same sleep on the loop (the wrong way;
 *                                   the negative control of the latency test)
 *   threads.responsiveness(block, tick, on_loop)
 *                                   runs one of the two above as a child and
 *                                   measures how late `tick`-second sleeps
 *                                   wake meanwhile
 *   threads.result(value)           work returns `value`; to_thread must too
 *   threads.stack_arg()             to_thread with a pointer into the task's
 *                                   stack: must be refused with -EINVAL
 *
 * Built against the installed header only.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <aiod/plugin.h>

/* For release callbacks, which get only their argument. */
static const struct aiod_api *the_api;

static int init(const struct aiod_api *api) {
    if (api->struct_size < offsetof(struct aiod_api, to_thread) + sizeof(api->to_thread))
        return -ENOSYS;
    the_api = api;
    return 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Heap only: it crosses to a pool thread and back. */
struct job {
    double seconds;
    char tag[64];
    /* Set by the work function on its thread; read on the loop thread after
     * the daemon's after-work callback, which orders the two. */
    atomic_int ran;
    int value;
};

static int block_work(void *arg) {
    struct job *j = arg;
    /* On stderr (the daemon's log), written from the pool thread: a test
     * waits for it to know the work is under way. */
    fprintf(stderr, "threads: work started %s\n", j->tag);
    double start = now_ms();
    sleep_seconds(j->seconds);
    atomic_store(&j->ran, 1);
    return (int)(now_ms() - start);
}

static void block_release(void *arg) {
    struct job *j = arg;
    the_api->log(NULL, LOG_NOTICE, "threads: released %s (work ran: %s)", j->tag,
                 atomic_load(&j->ran) ? "yes" : "no");
    free(j);
}

static int fn_block(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->seconds = api->get_double(args[0]);
    strncpy(j->tag, api->get_string(args[1]), sizeof(j->tag) - 1);
    int r = api->to_thread(t, block_work, block_release, j);
    if (r < 0)
        return r; /* -ECANCELED: j belongs to block_release now */
    free(j);
    *ret = api->value_int(r);
    return *ret ? 0 : -ENOMEM;
}

static int fn_block_on_loop(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                            aiod_value **ret) {
    (void)t;
    double start = now_ms();
    sleep_seconds(api->get_double(args[0]));
    *ret = api->value_int((int64_t)(now_ms() - start));
    return *ret ? 0 : -ENOMEM;
}

static int fn_responsiveness(aiod_task *t, const struct aiod_api *api,
                             const aiod_value *const *args, aiod_value **ret) {
    double block = api->get_double(args[0]), tick = api->get_double(args[1]);
    int on_loop = api->get_bool(args[2]);
    aiod_value *cargs[2] = {api->value_double(block), api->value_string("responsiveness")};
    aiod_child *c;
    int r = api->spawn(t, on_loop ? "threads.block_on_loop" : "threads.block", cargs,
                       on_loop ? 1 : 2, &c);
    if (on_loop)
        api->value_free(cargs[1]);
    if (r < 0)
        return r;
    double max_late = 0;
    int64_t ticks = 0;
    /* The child starts at our first suspension; tick until it is done. */
    do {
        double start = now_ms();
        r = api->sleep(t, tick);
        if (r < 0)
            break;
        double late = now_ms() - start - tick * 1e3;
        if (late > max_late)
            max_late = late;
        ticks++;
    } while (api->child_state(c) <= AIOD_STATE_RUNNING);
    aiod_value *block_ms = NULL;
    if (r >= 0)
        r = api->await(t, c, &block_ms);
    api->child_release(t, c);
    if (r < 0)
        return r;
    aiod_value *m = api->value_map();
    if (!m || api->map_set(m, "max_late_ms", api->value_double(max_late)) < 0 ||
        api->map_set(m, "ticks", api->value_int(ticks)) < 0 ||
        api->map_set(m, "block_ms", block_ms) < 0) {
        api->value_free(m);
        return -ENOMEM;
    }
    *ret = m;
    return 0;
}

static int result_work(void *arg) {
    return ((struct job *)arg)->value;
}

static int fn_result(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                     aiod_value **ret) {
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->value = (int)api->get_int(args[0]);
    strcpy(j->tag, "result");
    int r = api->to_thread(t, result_work, block_release, j);
    if (r == -ECANCELED)
        return r;
    free(j);
    *ret = api->value_int(r);
    return *ret ? 0 : -ENOMEM;
}

static int noop_work(void *arg) {
    (void)arg;
    return 0;
}

static int fn_stack_arg(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    (void)args;
    char buf[16] = "on the stack";
    int r = api->to_thread(t, noop_work, NULL, buf);
    *ret = api->value_int(r);
    return *ret ? 0 : -ENOMEM;
}

static const struct aiod_param block_params[] = {
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
    {"tag", AIOD_TYPE_STRING, ""},
};
static const struct aiod_param loop_params[] = {
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
};
static const struct aiod_param resp_params[] = {
    {"block", AIOD_TYPE_DOUBLE, NULL},
    {"tick", AIOD_TYPE_DOUBLE, NULL},
    {"on_loop", AIOD_TYPE_BOOL, "false"},
};
static const struct aiod_param result_params[] = {
    {"value", AIOD_TYPE_INT, NULL},
};

#define FN(n, d, p, np, rt, f)                                                                     \
    {                                                                                              \
        .struct_size = sizeof(struct aiod_function), .name = n, .doc = d, .params = p,             \
        .n_params = np, .result_type = rt, .fn = f,                                                \
    }

static const struct aiod_function functions[] = {
    FN("block", "Sleep SECONDS on a pool thread; return the ms slept.", block_params, 2,
       AIOD_TYPE_INT, fn_block),
    FN("block_on_loop", "Sleep SECONDS on the loop thread (wrong on purpose).", loop_params, 1,
       AIOD_TYPE_INT, fn_block_on_loop),
    FN("responsiveness", "Measure sleep lateness while a child blocks.", resp_params, 3,
       AIOD_TYPE_MAP, fn_responsiveness),
    FN("result", "to_thread returns what work returned.", result_params, 1, AIOD_TYPE_INT,
       fn_result),
    FN("stack_arg", "to_thread with a stack pointer: the error code.", NULL, 0, AIOD_TYPE_INT,
       fn_stack_arg),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "threads",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
    .init = init,
};

/*
 * The "bench" plugin used by aiod-bench: the smallest possible tasks, so
 * that what the benchmark measures is the daemon around them.
 *   noop()            returns null at once (no await point)
 *   sleep1(seconds)   sleeps on a loop timer, returns null
 *   spawn_gather(n)   spawns n children of bench.noop and gathers them;
 *                     returns n (not the list, to keep the reply small)
 * and asyncio's primitives (ABI 1.4), each the workload of the same name in
 * tests/bench/asyncio_prims.py, returning the seconds it took measured
 * inside the daemon with loop_time (so that what the client's round trip
 * costs is not part of it):
 *   prim_queue(n, maxsize)     the task puts n ints into a FIFO queue of
 *                              `maxsize` (0: unbounded), one child
 *                              (spawn_call) gets them; from the child's
 *                              creation until it has got all n
 *   prim_lock(tasks, rounds)   `tasks` children in a task group each take
 *                              one lock `rounds` times, holding it across
 *                              a sleep(0) so that the others queue for it
 *   prim_event(n)              n children wait on one event; once all
 *                              wait, from sync_set until the last has woken
 *   prim_taskgroup(n)          a task group of n children (spawn_call) that
 *                              return at once, from group_new to group_wait
 * Each checks what it did (the items in order, one holder at a time, every
 * waiter woken) and fails with BenchError when something is off.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <aiod/plugin.h>

static int bench_noop(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    (void)t;
    (void)api;
    (void)args;
    (void)ret;
    return 0;
}

static int bench_sleep1(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    (void)ret;
    return api->sleep(t, api->get_double(args[0]));
}

static int bench_spawn_gather(aiod_task *t, const struct aiod_api *api,
                              const aiod_value *const *args, aiod_value **ret) {
    int64_t n = api->get_int(args[0]);
    if (n < 0)
        return api->fail(t, "ValueError", "n must be >= 0");
    aiod_child **kids = malloc((size_t)(n ? n : 1) * sizeof(*kids));
    if (!kids)
        return -ENOMEM;
    size_t made = 0;
    int r = 0;
    for (; made < (size_t)n; made++) {
        if ((r = api->spawn(t, "bench.noop", NULL, 0, &kids[made])) < 0)
            break;
    }
    int spawn_err = r;
    aiod_value *list = NULL;
    if (made > 0)
        r = api->gather(t, kids, made, 1, &list);
    api->value_free(list);
    for (size_t i = 0; i < made; i++)
        api->child_release(t, kids[i]);
    free(kids);
    if (spawn_err < 0)
        return api->fail(t, "SpawnError", "spawn %zu of %lld failed: errno %d", made + 1,
                         (long long)n, -spawn_err);
    if (r < 0)
        return r;
    *ret = api->value_int(n);
    return *ret ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- asyncio's primitives */

/* Whether the daemon has the ABI 1.4 calls (up to the last one, queues). */
static int have_prims(aiod_task *t, const struct aiod_api *api) {
    if (api->struct_size < offsetof(struct aiod_api, queue_shutdown) + sizeof(api->queue_shutdown))
        return api->fail(t, "BenchError", "the daemon lacks the ABI 1.4 calls (api %u bytes)",
                         (unsigned)api->struct_size);
    return 0;
}

static int took(aiod_task *t, const struct aiod_api *api, double t0, aiod_value **ret) {
    double s = api->loop_time() - t0;
    (void)t;
    *ret = api->value_double(s);
    return *ret ? 0 : -ENOMEM;
}

/* Spawns fn(arg) as a child of t and hands it to the group; the group keeps
 * its own reference, ours is released. */
static int group_spawn(aiod_task *t, const struct aiod_api *api, aiod_group *g,
                       int (*fn)(aiod_task *, const struct aiod_api *, void *, aiod_value **),
                       void *arg) {
    aiod_child *c = NULL;
    int r = api->spawn_call(t, fn, arg, &c);
    if (r < 0)
        return r;
    r = api->group_add(t, g, c);
    api->child_release(t, c);
    return r;
}

/* Ends the group after the block ended with `status`: the group's status
 * (a spawn error of the block is kept when the group itself was fine). */
static int group_end(aiod_task *t, const struct aiod_api *api, aiod_group *g, int status) {
    aiod_value *errors = NULL;
    int r = api->group_wait(t, g, status, &errors);
    api->value_free(errors);
    return r < 0 ? r : status;
}

static int spawn_failed(aiod_task *t, const struct aiod_api *api, const char *what, int64_t i,
                        int r) {
    if (r == -EIO || r == -ECANCELED)
        return r;
    return api->fail(t, "BenchError", "%s: child %lld: errno %d", what, (long long)i, -r);
}

typedef struct queue_ctx {
    aiod_queue *q;
    int64_t n;
} queue_ctx;

static int queue_consumer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    queue_ctx *c = arg;
    (void)ret;
    for (int64_t i = 0; i < c->n; i++) {
        aiod_value *v = NULL;
        int r = api->queue_get(t, c->q, &v);
        if (r < 0)
            return r;
        int64_t got = api->get_int(v);
        api->value_free(v);
        if (got != i)
            return api->fail(t, "BenchError", "queue: got %lld, expected %lld", (long long)got,
                             (long long)i);
    }
    return 0;
}

static int bench_prim_queue(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                            aiod_value **ret) {
    int r = have_prims(t, api);
    if (r < 0)
        return r;
    int64_t n = api->get_int(args[0]), maxsize = api->get_int(args[1]);
    if (n < 0 || maxsize < 0)
        return api->fail(t, "ValueError", "n and maxsize must be >= 0");
    queue_ctx *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->n = n;
    if ((r = api->queue_new(AIOD_QUEUE_FIFO, maxsize, &c->q)) < 0) {
        free(c);
        return api->fail(t, "BenchError", "queue_new: errno %d", -r);
    }
    double t0 = api->loop_time();
    aiod_child *consumer = NULL;
    if ((r = api->spawn_call(t, queue_consumer, c, &consumer)) < 0) {
        api->queue_free(c->q);
        free(c);
        return spawn_failed(t, api, "queue", 0, r);
    }
    for (int64_t i = 0; i < n && r >= 0; i++) {
        aiod_value *v = api->value_int(i);
        r = v ? api->queue_put(t, c->q, 0, v) : -ENOMEM;
    }
    int put_r = r;
    if (put_r < 0)
        api->cancel(t, consumer);
    r = api->await(t, consumer, NULL);
    api->child_release(t, consumer);
    if (put_r >= 0 && r >= 0)
        r = took(t, api, t0, ret);
    else if (put_r < 0 && put_r != -EIO && put_r != -ECANCELED)
        r = api->fail(t, "BenchError", "queue_put: errno %d", -put_r);
    else if (put_r < 0)
        r = put_r;
    api->queue_free(c->q);
    free(c);
    return r;
}

typedef struct lock_ctx {
    aiod_sync *lock;
    int64_t rounds;
    int held;
    int64_t count;
} lock_ctx;

static int lock_contender(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    lock_ctx *c = arg;
    (void)ret;
    for (int64_t i = 0; i < c->rounds; i++) {
        int r = api->sync_acquire(t, c->lock);
        if (r < 0)
            return r;
        if (c->held) {
            api->sync_release(c->lock);
            return api->fail(t, "BenchError", "lock: two holders");
        }
        c->held = 1;
        r = api->sleep(t, 0);
        c->held = 0;
        c->count++;
        int rr = api->sync_release(c->lock);
        if (r < 0)
            return r;
        if (rr < 0)
            return api->fail(t, "BenchError", "sync_release: errno %d", -rr);
    }
    return 0;
}

static int bench_prim_lock(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                           aiod_value **ret) {
    int r = have_prims(t, api);
    if (r < 0)
        return r;
    int64_t tasks = api->get_int(args[0]), rounds = api->get_int(args[1]);
    if (tasks < 0 || rounds < 0)
        return api->fail(t, "ValueError", "tasks and rounds must be >= 0");
    lock_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->rounds = rounds;
    if ((r = api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->lock)) < 0) {
        free(c);
        return api->fail(t, "BenchError", "sync_new: errno %d", -r);
    }
    double t0 = api->loop_time();
    aiod_group *g = NULL;
    if ((r = api->group_new(t, &g)) < 0) {
        api->sync_free(c->lock);
        free(c);
        return api->fail(t, "BenchError", "group_new: errno %d", -r);
    }
    int64_t i = 0;
    for (; i < tasks && r >= 0; i++)
        r = group_spawn(t, api, g, lock_contender, c);
    int spawn_r = r;
    r = group_end(t, api, g, spawn_r);
    if (r >= 0 && c->count != tasks * rounds)
        r = api->fail(t, "BenchError", "lock: %lld acquisitions, expected %lld",
                      (long long)c->count, (long long)(tasks * rounds));
    else if (r >= 0)
        r = took(t, api, t0, ret);
    else if (r == spawn_r)
        r = spawn_failed(t, api, "lock", i, r);
    api->sync_free(c->lock);
    free(c);
    return r;
}

typedef struct event_ctx {
    aiod_sync *ev, *all_woke;
    int64_t n, woken;
} event_ctx;

static int event_waiter(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    event_ctx *c = arg;
    (void)ret;
    int r = api->sync_wait(t, c->ev);
    if (r < 0)
        return r;
    if (++c->woken == c->n)
        api->sync_set(c->all_woke);
    return 0;
}

static int bench_prim_event(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                            aiod_value **ret) {
    int r = have_prims(t, api);
    if (r < 0)
        return r;
    int64_t n = api->get_int(args[0]);
    if (n < 1)
        return api->fail(t, "ValueError", "n must be >= 1");
    event_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->n = n;
    if ((r = api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->ev)) < 0 ||
        (r = api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->all_woke)) < 0) {
        if (c->ev)
            api->sync_free(c->ev);
        free(c);
        return api->fail(t, "BenchError", "sync_new: errno %d", -r);
    }
    aiod_group *g = NULL;
    double secs = 0;
    if ((r = api->group_new(t, &g)) < 0) {
        r = api->fail(t, "BenchError", "group_new: errno %d", -r);
        goto out;
    }
    int64_t i = 0;
    for (; i < n && r >= 0; i++)
        r = group_spawn(t, api, g, event_waiter, c);
    /* Until every waiter waits: the children start when this task
     * suspends, and each runs to its wait. */
    while (r >= 0 && api->sync_count(c->ev, AIOD_COUNT_WAITING) < n)
        r = api->sleep(t, 0);
    if (r >= 0) {
        double t0 = api->loop_time();
        api->sync_set(c->ev);
        r = api->sync_wait(t, c->all_woke);
        secs = api->loop_time() - t0;
    }
    int block_r = r;
    r = group_end(t, api, g, block_r);
    if (r >= 0 && c->woken != n)
        r = api->fail(t, "BenchError", "event: %lld woke, expected %lld", (long long)c->woken,
                      (long long)n);
    else if (r >= 0) {
        *ret = api->value_double(secs);
        r = *ret ? 0 : -ENOMEM;
    } else if (r == block_r && i < n)
        r = spawn_failed(t, api, "event", i, r);
out:
    api->sync_free(c->ev);
    api->sync_free(c->all_woke);
    free(c);
    return r;
}

static int group_child(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t;
    (void)api;
    (void)arg;
    (void)ret;
    return 0;
}

static int bench_prim_taskgroup(aiod_task *t, const struct aiod_api *api,
                                const aiod_value *const *args, aiod_value **ret) {
    int r = have_prims(t, api);
    if (r < 0)
        return r;
    int64_t n = api->get_int(args[0]);
    if (n < 0)
        return api->fail(t, "ValueError", "n must be >= 0");
    /* The children need no argument; spawn_call wants one that outlives them. */
    static char unused;
    double t0 = api->loop_time();
    aiod_group *g = NULL;
    if ((r = api->group_new(t, &g)) < 0)
        return api->fail(t, "BenchError", "group_new: errno %d", -r);
    int64_t i = 0;
    for (; i < n && r >= 0; i++)
        r = group_spawn(t, api, g, group_child, &unused);
    int spawn_r = r;
    r = group_end(t, api, g, spawn_r);
    if (r >= 0)
        return took(t, api, t0, ret);
    return r == spawn_r ? spawn_failed(t, api, "taskgroup", i, r) : r;
}

static const struct aiod_param sleep_params[] = {{"seconds", AIOD_TYPE_DOUBLE, "1"}};
static const struct aiod_param spawn_params[] = {{"n", AIOD_TYPE_INT, NULL}};
static const struct aiod_param queue_params[] = {{"n", AIOD_TYPE_INT, NULL},
                                                 {"maxsize", AIOD_TYPE_INT, "0"}};
static const struct aiod_param lock_params[] = {{"tasks", AIOD_TYPE_INT, "1000"},
                                                {"rounds", AIOD_TYPE_INT, "100"}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "noop", "Return null at once.", NULL, 0, AIOD_TYPE_NULL,
     bench_noop},
    {sizeof(struct aiod_function), 0, "sleep1", "Sleep `seconds` (default 1), return null.",
     sleep_params, 1, AIOD_TYPE_NULL, bench_sleep1},
    {sizeof(struct aiod_function), 0, "spawn_gather",
     "Spawn `n` children of bench.noop, gather them, return n.", spawn_params, 1, AIOD_TYPE_INT,
     bench_spawn_gather},
    {sizeof(struct aiod_function), 0, "prim_queue",
     "Put n ints into a queue of maxsize, a child gets them; return the seconds.", queue_params, 2,
     AIOD_TYPE_DOUBLE, bench_prim_queue},
    {sizeof(struct aiod_function), 0, "prim_lock",
     "`tasks` children take one lock `rounds` times each; return the seconds.", lock_params, 2,
     AIOD_TYPE_DOUBLE, bench_prim_lock},
    {sizeof(struct aiod_function), 0, "prim_event",
     "n children wait on an event; return the seconds from set to the last wake-up.", spawn_params,
     1, AIOD_TYPE_DOUBLE, bench_prim_event},
    {sizeof(struct aiod_function), 0, "prim_taskgroup",
     "A task group of n children that return at once; return the seconds.", spawn_params, 1,
     AIOD_TYPE_DOUBLE, bench_prim_taskgroup},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "bench",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

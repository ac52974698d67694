/*
 * asyncio_queues: CPython's Lib/test/test_asyncio/test_queues.py (3.13) ported to the plugin API
 * (ABI 1.4). Each function is one test case, named after the CPython test it mirrors
 * (QueueGetTests.test_get_cancelled_race is queue_get_test_get_cancelled_race) and run as a task
 * by tests/unit/test-asyncio-queues.c, which expects it to end done. A failed check ends the task
 * failed with an AssertionError naming the CPython test and the check. The mixin tests (join,
 * shutdown) run once per kind: Queue, LifoQueue, PriorityQueue. Items are ints; asyncio's string
 * items ('a', 'data') become small numbers.
 *
 * State shared with the helper tasks lives on the heap (struct ctx): a task's stack is saved away
 * while it is suspended, so no pointer into it may be handed to another task.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <aiod/plugin.h>

#define MAX_ACTORS 16

typedef struct ctx ctx;

/* One helper task and what it saw. */
typedef struct actor {
    ctx *c;
    /* The item it puts, or the number of items it puts or gets. */
    int64_t arg;
    /* What its queue call returned (0 or an error), and the item it got. */
    int status;
    int64_t item;
    aiod_child *child;
} actor;

struct ctx {
    const struct aiod_api *api;
    /* The test case's own task. */
    aiod_task *t;
    /* The CPython test this case mirrors, for failure messages. */
    const char *test;
    /* The queue kind a mixin test runs with. */
    uint32_t kind;
    aiod_queue *q;
    aiod_sync *ev;
    /* asyncio's lists of results: one character per entry. */
    char log[128];
    size_t n_log;
    int64_t sum;
    int flag, running;
    actor a[MAX_ACTORS];
    size_t n_actors;
};

static const char *const kind_names[] = {"", "Queue", "LifoQueue", "PriorityQueue"};

static void log_add(ctx *c, char tag) {
    if (c->n_log + 1 < sizeof(c->log))
        c->log[c->n_log++] = tag;
}

typedef int (*co_fn)(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret);

/* asyncio.create_task(fn()): the helper starts when the case next suspends. */
static actor *spawn(ctx *c, co_fn fn, int64_t arg) {
    if (c->n_actors == MAX_ACTORS)
        return NULL;
    actor *a = &c->a[c->n_actors];
    a->c = c;
    a->arg = arg;
    a->item = -1;
    if (c->api->spawn_call(c->t, fn, a, &a->child) < 0)
        return NULL;
    c->n_actors++;
    return a;
}

static uint32_t state(const actor *a) {
    return a->c->api->child_state(a->child);
}

static bool is_done(const actor *a) {
    uint32_t s = state(a);
    return s == AIOD_STATE_DONE || s == AIOD_STATE_FAILED || s == AIOD_STATE_CANCELLED;
}

static bool ended_ok(const actor *a) {
    return state(a) == AIOD_STATE_DONE;
}

/* asyncio.gather of every helper, bounded so that a wrong port fails instead of hanging. */
static bool join_all(ctx *c) {
    aiod_child *ch[MAX_ACTORS];
    for (size_t i = 0; i < c->n_actors; i++)
        ch[i] = c->a[i].child;
    if (c->n_actors == 0)
        return true;
    return c->api->wait(c->t, ch, c->n_actors, 10.0, AIOD_ALL_COMPLETED) == (int)c->n_actors;
}

/* Cancels and waits for the helpers still running, frees the queue; keeps rc. */
static int cleanup(ctx *c, int rc) {
    const struct aiod_api *api = c->api;
    for (size_t i = 0; i < c->n_actors; i++)
        if (!is_done(&c->a[i]))
            api->cancel(c->t, c->a[i].child);
    for (size_t i = 0; i < c->n_actors; i++) {
        if (!is_done(&c->a[i]))
            api->wait(c->t, &c->a[i].child, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED);
        api->child_release(c->t, c->a[i].child);
    }
    c->n_actors = 0;
    api->queue_free(c->q);
    c->q = NULL;
    api->sync_free(c->ev);
    c->ev = NULL;
    return rc;
}

/* await task, bounded so that a wrong port fails instead of hanging (asyncio.wait_for with
 * 10 s): the child's outcome as await gives it, or -ETIMEDOUT. */
static int await_child(actor *a) {
    return a->c->api->await_timeout(a->c->t, a->child, 10.0, 1, NULL);
}

/* await q.join(), bounded so that a wrong port fails instead of hanging (10 s): 0, or
 * -ETIMEDOUT. */
static int join_queue(ctx *c) {
    aiod_timeout *tm = NULL;
    int r = c->api->timeout_enter(c->t, 10.0, &tm);
    if (r < 0)
        return r;
    return c->api->timeout_exit(c->t, tm, c->api->queue_join(c->t, c->q));
}

static int check_failed(ctx *c, const char *what, int line) {
    if (c->kind)
        return c->api->fail(c->t, "AssertionError",
                            "%s (%s): check failed: %s (asyncio_queues.c:%d)", c->test,
                            kind_names[c->kind], what, line);
    return c->api->fail(c->t, "AssertionError", "%s: check failed: %s (asyncio_queues.c:%d)",
                        c->test, what, line);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rc = check_failed(c, #cond, __LINE__);                                                 \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* await asyncio.sleep(0) */
#define YIELD() CHECK(api->sleep(t, 0) == 0)

/* A test body: runs with c->kind set (0 for a plain Queue test). */
#define BODY(fname) static int fname(ctx *c, const struct aiod_api *api, aiod_task *t)

/* A case running one body with a plain Queue. */
#define CASE(fname, body, cpython_name)                                                            \
    static int fname(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,      \
                     aiod_value **ret) {                                                           \
        (void)args;                                                                                \
        (void)ret;                                                                                 \
        return run(t, api, cpython_name, body, false);                                             \
    }

/* A mixin case: the body once per queue kind. */
#define MIXIN_CASE(fname, body, cpython_name)                                                      \
    static int fname(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,      \
                     aiod_value **ret) {                                                           \
        (void)args;                                                                                \
        (void)ret;                                                                                 \
        return run(t, api, cpython_name, body, true);                                              \
    }

typedef int (*body_fn)(ctx *c, const struct aiod_api *api, aiod_task *t);

static int run(aiod_task *t, const struct aiod_api *api, const char *test, body_fn body,
               bool every_kind) {
    ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->api = api;
    c->t = t;
    c->test = test;
    int rc = 0;
    for (uint32_t k = every_kind ? AIOD_QUEUE_FIFO : 0; k <= AIOD_QUEUE_PRIORITY && rc == 0; k++) {
        c->kind = k;
        c->n_log = 0;
        memset(c->log, 0, sizeof(c->log));
        c->sum = 0;
        c->flag = c->running = 0;
        rc = cleanup(c, body(c, api, t));
        if (!every_kind)
            break;
    }
    free(c);
    return rc;
}

/* The queue kind of this run: a plain Queue outside the mixins. */
static uint32_t kind(const ctx *c) {
    return c->kind ? c->kind : AIOD_QUEUE_FIFO;
}

static int put_int(ctx *c, aiod_task *t, int64_t v) {
    return c->api->queue_put(t, c->q, v, c->api->value_int(v));
}

static int put_nowait_int(ctx *c, int64_t v) {
    return c->api->queue_put_nowait(c->q, v, c->api->value_int(v));
}

/* get() as an int: the item, or a negative errno in *ret_status. */
static int64_t get_int(ctx *c, aiod_task *t, int *ret_status) {
    aiod_value *v = NULL;
    int r = t ? c->api->queue_get(t, c->q, &v) : c->api->queue_get_nowait(c->q, &v);
    *ret_status = r;
    if (r < 0)
        return r;
    int64_t i = c->api->get_int(v);
    c->api->value_free(v);
    return i;
}

/* The next item from get() (t) or get_nowait() (t NULL), -1000 on any error. */
static int64_t next(ctx *c, aiod_task *t) {
    int r;
    int64_t i = get_int(c, t, &r);
    return r < 0 ? -1000 : i;
}

static bool is_full(ctx *c) {
    int64_t m = c->api->queue_maxsize(c->q);
    return m > 0 && c->api->queue_size(c->q) >= (size_t)m;
}

/* ---- helper coroutines */

/* await q.get(): the item in a->item, the status in a->status. */
static int co_get(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)api;
    (void)ret;
    actor *a = arg;
    a->item = get_int(a->c, self, &a->status);
    return a->status;
}

/* await q.put(a->arg) */
static int co_put(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)api;
    (void)ret;
    actor *a = arg;
    a->status = put_int(a->c, self, a->arg);
    return a->status;
}

/* loop.call_later(..., q.put_nowait, 1) */
static void put_nowait_cb(void *data) {
    put_nowait_int(data, 1);
}

/* loop.call_later(..., q.get_nowait) */
static void get_nowait_cb(void *data) {
    ctx *c = data;
    aiod_value *v = NULL;
    if (c->api->queue_get_nowait(c->q, &v) == 0)
        c->api->value_free(v);
}

/* ---- QueueBasicTests */

/* QueueBasicTests.test_empty */
BODY(basic_empty) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(api->queue_size(c->q) == 0);
    CHECK(put_int(c, t, 1) == 0);
    CHECK(api->queue_size(c->q) == 1);
    CHECK(next(c, t) == 1);
    CHECK(api->queue_size(c->q) == 0);
out:
    return rc;
}
CASE(queue_basic_test_empty, basic_empty, "QueueBasicTests.test_empty")

/* QueueBasicTests.test_full: maxsize 0 is never full. */
BODY(basic_full) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(!is_full(c));
    CHECK(api->queue_maxsize(c->q) == 0);
    CHECK(api->queue_free(c->q) == 0);
    c->q = NULL;
    /* queues.py keeps maxsize as given (Queue(maxsize=-1).maxsize is -1);
     * aiod reads it back as 0, but it is never full either. */
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, -1, &c->q) == 0);
    CHECK(api->queue_maxsize(c->q) == 0);
    CHECK(put_int(c, t, 1) == 0);
    CHECK(!is_full(c));
    CHECK(api->queue_free(c->q) == 0);
    c->q = NULL;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(put_int(c, t, 1) == 0);
    CHECK(is_full(c));
out:
    return rc;
}
CASE(queue_basic_test_full, basic_full, "QueueBasicTests.test_full")

/* The three kinds' test_order: put 1, 3, 2 and get them back as `want`. */
static int order(ctx *c, aiod_task *t, uint32_t k, const int64_t want[3]) {
    const struct aiod_api *api = c->api;
    int rc = 0;
    CHECK(api->queue_new(k, 0, &c->q) == 0);
    const int64_t in[3] = {1, 3, 2};
    for (int i = 0; i < 3; i++)
        CHECK(put_int(c, t, in[i]) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(next(c, t) == want[i]);
out:
    return rc;
}

/* QueueBasicTests.test_order: FIFO. */
BODY(basic_order) {
    return order(c, t, AIOD_QUEUE_FIFO, (const int64_t[]){1, 3, 2});
}
CASE(queue_basic_test_order, basic_order, "QueueBasicTests.test_order")

/* for i in range(3): await q.put(i); have_been_put.append(i) */
static int co_putter3(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)api;
    (void)ret;
    actor *a = arg;
    for (int i = 0; i < 3; i++) {
        a->status = put_int(a->c, self, i);
        if (a->status < 0)
            return a->status;
        log_add(a->c, (char)('0' + i));
    }
    return 0;
}

/* QueueBasicTests.test_maxsize: the putter blocks after two items, goes on after a get. */
BODY(basic_maxsize) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 2, &c->q) == 0);
    CHECK(api->queue_maxsize(c->q) == 2);
    actor *p = spawn(c, co_putter3, 0);
    CHECK(p);
    YIELD();
    YIELD();
    CHECK(strcmp(c->log, "01") == 0);
    CHECK(next(c, t) == 0);
    YIELD();
    CHECK(strcmp(c->log, "012") == 0);
    CHECK(next(c, t) == 1);
    CHECK(next(c, t) == 2);
    CHECK(ended_ok(p));
out:
    return rc;
}
CASE(queue_basic_test_maxsize, basic_maxsize, "QueueBasicTests.test_maxsize")

/* ---- QueueGetTests */

/* QueueGetTests.test_blocking_get and test_nonblocking_get */
BODY(get_blocking) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(next(c, t) == 1);
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(next(c, NULL) == 1);
out:
    return rc;
}
CASE(queue_get_test_blocking_get, get_blocking, "QueueGetTests.test_blocking_get")

/* started.set(); res = await q.get(); finished = True */
static int co_started_get(aiod_task *self, const struct aiod_api *api, void *arg,
                          aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    api->sync_set(a->c->ev);
    a->item = get_int(a->c, self, &a->status);
    if (a->status == 0)
        a->c->flag = 1;
    return a->status;
}

/* QueueGetTests.test_blocking_get_wait: a get woken by put_nowait from call_later. */
BODY(get_blocking_wait) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->ev) == 0);
    actor *g = spawn(c, co_started_get, 0);
    CHECK(g);
    CHECK(api->sync_wait(t, c->ev) == 0);
    CHECK(!c->flag);
    CHECK(api->call_later(0.01, put_nowait_cb, c, NULL) == 0);
    CHECK(await_child(g) == 0);
    CHECK(c->flag);
    CHECK(g->item == 1);
out:
    return rc;
}
CASE(queue_get_test_blocking_get_wait, get_blocking_wait, "QueueGetTests.test_blocking_get_wait")

/* QueueGetTests.test_nonblocking_get_exception: QueueEmpty is -EAGAIN. */
BODY(get_nonblocking_exception) {
    int rc = 0;
    aiod_value *v = NULL;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(api->queue_get_nowait(c->q, &v) == -EAGAIN);
out:
    return rc;
}
CASE(queue_get_test_nonblocking_get_exception, get_nonblocking_exception,
     "QueueGetTests.test_nonblocking_get_exception")

/* QueueGetTests.test_get_cancelled_race: a cancelled getter does not take the next item. */
BODY(get_cancelled_race) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    actor *t1 = spawn(c, co_get, 0);
    actor *t2 = spawn(c, co_get, 0);
    CHECK(t1 && t2);
    YIELD();
    api->cancel(t, t1->child);
    YIELD();
    CHECK(is_done(t1));
    CHECK(put_int(c, t, 'a') == 0);
    YIELD();
    CHECK(await_child(t2) == 0);
    CHECK(t2->item == 'a');
out:
    return rc;
}
CASE(queue_get_test_get_cancelled_race, get_cancelled_race, "QueueGetTests.test_get_cancelled_race")

/* QueueGetTests.test_get_with_waiting_putters */
BODY(get_with_waiting_putters) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(spawn(c, co_put, 'a'));
    CHECK(spawn(c, co_put, 'b'));
    CHECK(next(c, t) == 'a');
    CHECK(next(c, t) == 'b');
out:
    return rc;
}
CASE(queue_get_test_get_with_waiting_putters, get_with_waiting_putters,
     "QueueGetTests.test_get_with_waiting_putters")

/* for i in range(a->arg): await queue.put(i) */
static int co_producer(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)api;
    (void)ret;
    actor *a = arg;
    for (int64_t i = 0; i < a->arg; i++)
        if ((a->status = put_int(a->c, self, i)) < 0)
            return a->status;
    return 0;
}

/* for _ in range(a->arg): await queue.get() */
static int co_consumer(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)api;
    (void)ret;
    actor *a = arg;
    for (int64_t i = 0; i < a->arg; i++) {
        a->item = get_int(a->c, self, &a->status);
        if (a->status < 0)
            return a->status;
    }
    return 0;
}

/* QueueGetTests.test_why_are_getters_waiting: producer and consumer on a queue of one. */
BODY(get_why_are_getters_waiting) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    actor *p = spawn(c, co_producer, 5);
    actor *k = spawn(c, co_consumer, 5);
    CHECK(p && k);
    CHECK(join_all(c));
    CHECK(ended_ok(p) && ended_ok(k));
    CHECK(k->item == 4);
out:
    return rc;
}
CASE(queue_get_test_why_are_getters_waiting, get_why_are_getters_waiting,
     "QueueGetTests.test_why_are_getters_waiting")

/* QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters: wait_for(q.get(), 0.1)
 * times out and leaves no getter (0.02 s here; no getter left is checked by queue_free, which
 * refuses a queue with waiters). */
BODY(get_cancelled_getters_not_held) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 5, &c->q) == 0);
    aiod_timeout *tm = NULL;
    CHECK(api->timeout_enter(t, 0.02, &tm) == 0);
    aiod_value *v = NULL;
    int r = api->queue_get(t, c->q, &v);
    CHECK(api->timeout_exit(t, tm, r) == -ETIMEDOUT);
    CHECK(api->queue_free(c->q) == 0);
    c->q = NULL;
out:
    return rc;
}
CASE(queue_get_test_cancelled_getters_not_being_held_in_self_getters,
     get_cancelled_getters_not_held,
     "QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters")

/* ---- QueuePutTests */

/* QueuePutTests.test_blocking_put and test_nonblocking_put */
BODY(put_blocking) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    CHECK(put_int(c, t, 1) == 0);
    CHECK(next(c, t) == 1);
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(next(c, NULL) == 1);
out:
    return rc;
}
CASE(queue_put_test_blocking_put, put_blocking, "QueuePutTests.test_blocking_put")

/* started.set(); await q.put(1); await q.put(2); finished = True */
static int co_started_put2(aiod_task *self, const struct aiod_api *api, void *arg,
                           aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    api->sync_set(a->c->ev);
    if ((a->status = put_int(a->c, self, 1)) < 0 || (a->status = put_int(a->c, self, 2)) < 0)
        return a->status;
    a->c->flag = 1;
    return 0;
}

/* QueuePutTests.test_blocking_put_wait: a put woken by get_nowait from call_later. */
BODY(put_blocking_wait) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->ev) == 0);
    CHECK(api->call_later(0.01, get_nowait_cb, c, NULL) == 0);
    actor *p = spawn(c, co_started_put2, 0);
    CHECK(p);
    CHECK(api->sync_wait(t, c->ev) == 0);
    CHECK(!c->flag);
    CHECK(await_child(p) == 0);
    CHECK(c->flag);
out:
    return rc;
}
CASE(queue_put_test_blocking_put_wait, put_blocking_wait, "QueuePutTests.test_blocking_put_wait")

/* QueuePutTests.test_get_cancel_drop_one_pending_reader: a reader woken for item 1 and then
 * cancelled leaves item 1 in the queue. */
BODY(put_get_cancel_drop_one) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    actor *reader = spawn(c, co_get, 0);
    CHECK(reader);
    YIELD();
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(put_nowait_int(c, 2) == 0);
    api->cancel(t, reader->child);
    int r = await_child(reader);
    if (r == -ECANCELED) {
        reader = spawn(c, co_get, 0);
        CHECK(reader);
        CHECK(await_child(reader) == 0);
    }
    CHECK(reader->item == 1); /* 2 would mean 1 got dropped */
out:
    return rc;
}
CASE(queue_put_test_get_cancel_drop_one_pending_reader, put_get_cancel_drop_one,
     "QueuePutTests.test_get_cancel_drop_one_pending_reader")

/* QueuePutTests.test_get_cancel_drop_many_pending_readers: the woken reader that is cancelled
 * passes its wake-up on, so both items reach the other readers. */
BODY(put_get_cancel_drop_many) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    actor *r1 = spawn(c, co_get, 0);
    actor *r2 = spawn(c, co_get, 0);
    actor *r3 = spawn(c, co_get, 0);
    CHECK(r1 && r2 && r3);
    YIELD();
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(put_nowait_int(c, 2) == 0);
    api->cancel(t, r1->child);
    CHECK(await_child(r1) == -ECANCELED);
    CHECK(await_child(r3) == 0);
    CHECK(join_all(c));
    CHECK(ended_ok(r2));
    CHECK((r2->item == 1 && r3->item == 2) || (r2->item == 2 && r3->item == 1));
out:
    return rc;
}
CASE(queue_put_test_get_cancel_drop_many_pending_readers, put_get_cancel_drop_many,
     "QueuePutTests.test_get_cancel_drop_many_pending_readers")

/* QueuePutTests.test_put_cancel_drop: a writer woken and then cancelled put nothing. */
BODY(put_cancel_drop) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(put_nowait_int(c, 1) == 0);
    actor *writer = spawn(c, co_put, 2);
    CHECK(writer);
    YIELD();
    CHECK(next(c, NULL) == 1);
    api->cancel(t, writer->child);
    int r = await_child(writer);
    if (r == -ECANCELED) {
        writer = spawn(c, co_put, 2);
        CHECK(writer);
        CHECK(await_child(writer) == 0);
    }
    CHECK(next(c, NULL) == 2);
    CHECK(api->queue_size(c->q) == 0);
out:
    return rc;
}
CASE(queue_put_test_put_cancel_drop, put_cancel_drop, "QueuePutTests.test_put_cancel_drop")

/* QueuePutTests.test_nonblocking_put_exception: QueueFull is -EAGAIN (the item is taken). */
BODY(put_nonblocking_exception) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(put_nowait_int(c, 2) == -EAGAIN);
    CHECK(api->queue_size(c->q) == 1);
out:
    return rc;
}
CASE(queue_put_test_nonblocking_put_exception, put_nonblocking_exception,
     "QueuePutTests.test_nonblocking_put_exception")

/* QueuePutTests.test_put_cancelled: a put into an unbounded queue completes at once. */
BODY(put_cancelled) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    actor *p = spawn(c, co_put, 1);
    CHECK(p);
    CHECK(next(c, t) == 1);
    CHECK(ended_ok(p));
out:
    return rc;
}
CASE(queue_put_test_put_cancelled, put_cancelled, "QueuePutTests.test_put_cancelled")

/* QueuePutTests.test_put_cancelled_race: cancelling a waiting putter lets the next one in. */
BODY(put_cancelled_race) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    actor *put_a = spawn(c, co_put, 'a');
    actor *put_b = spawn(c, co_put, 'b');
    actor *put_c = spawn(c, co_put, 'X');
    CHECK(put_a && put_b && put_c);
    YIELD();
    CHECK(is_done(put_a));
    CHECK(!is_done(put_b));
    api->cancel(t, put_c->child);
    YIELD();
    CHECK(is_done(put_c));
    CHECK(next(c, NULL) == 'a');
    YIELD();
    CHECK(next(c, NULL) == 'b');
    CHECK(await_child(put_b) == 0);
out:
    return rc;
}
CASE(queue_put_test_put_cancelled_race, put_cancelled_race, "QueuePutTests.test_put_cancelled_race")

/* QueuePutTests.test_put_with_waiting_getters */
BODY(put_with_waiting_getters) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, &c->q) == 0);
    actor *g = spawn(c, co_get, 0);
    CHECK(g);
    YIELD();
    CHECK(put_int(c, t, 'a') == 0);
    CHECK(await_child(g) == 0);
    CHECK(g->item == 'a');
out:
    return rc;
}
CASE(queue_put_test_put_with_waiting_getters, put_with_waiting_getters,
     "QueuePutTests.test_put_with_waiting_getters")

/* await asyncio.sleep(0); then get_nowait() as many items as there are. */
static int co_drain(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sleep(self, 0);
    if (r < 0)
        return r;
    size_t n = api->queue_size(a->c->q);
    for (size_t i = 0; i < n; i++)
        if (next(a->c, NULL) < 0)
            return -EIO;
    return 0;
}

/* QueuePutTests.test_why_are_putters_waiting: every get_nowait wakes one waiting putter. */
BODY(put_why_are_putters_waiting) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 2, &c->q) == 0);
    CHECK(spawn(c, co_drain, 0));
    for (int i = 0; i < 4; i++)
        CHECK(spawn(c, co_put, i));
    CHECK(join_all(c));
    for (size_t i = 0; i < c->n_actors; i++)
        CHECK(ended_ok(&c->a[i]));
    CHECK(api->queue_size(c->q) == 2);
out:
    return rc;
}
CASE(queue_put_test_why_are_putters_waiting, put_why_are_putters_waiting,
     "QueuePutTests.test_why_are_putters_waiting")

/* QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters: (len(_putters) is seen
 * through queue_free, which refuses a queue with a putter). */
BODY(put_cancelled_not_held) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(put_nowait_int(c, 1) == 0);
    actor *p = spawn(c, co_put, 1);
    CHECK(p);
    YIELD();
    CHECK(api->queue_free(c->q) == -EBUSY); /* one putter */
    api->cancel(t, p->child);
    CHECK(await_child(p) == -ECANCELED);
    CHECK(api->queue_size(c->q) == 1);
    CHECK(api->queue_free(c->q) == 0); /* no putter */
    c->q = NULL;
out:
    return rc;
}
CASE(queue_put_test_cancelled_puts_not_being_held_in_self_putters, put_cancelled_not_held,
     "QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters")

/* QueuePutTests.test_cancelled_put_silence_value_error_exception: a putter popped by
 * get_nowait and then cancelled ends cancelled, nothing else. */
BODY(put_cancelled_after_pop) {
    int rc = 0;
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 1, &c->q) == 0);
    CHECK(put_nowait_int(c, 1) == 0);
    actor *p = spawn(c, co_put, 1);
    CHECK(p);
    YIELD();
    CHECK(next(c, NULL) == 1);
    api->cancel(t, p->child);
    CHECK(await_child(p) == -ECANCELED);
    CHECK(api->queue_size(c->q) == 0);
out:
    return rc;
}
CASE(queue_put_test_cancelled_put_silence_value_error_exception, put_cancelled_after_pop,
     "QueuePutTests.test_cancelled_put_silence_value_error_exception")

/* ---- LifoQueueTests, PriorityQueueTests */

/* LifoQueueTests.test_order */
BODY(lifo_order) {
    return order(c, t, AIOD_QUEUE_LIFO, (const int64_t[]){2, 3, 1});
}
CASE(lifo_queue_test_order, lifo_order, "LifoQueueTests.test_order")

/* PriorityQueueTests.test_order, and (aiod's key) FIFO among equal priorities. */
BODY(priority_order) {
    int rc = order(c, t, AIOD_QUEUE_PRIORITY, (const int64_t[]){1, 2, 3});
    if (rc < 0)
        return rc;
    const int64_t prio[] = {5, 1, 5, 1, 0, 5};
    for (int i = 0; i < 6; i++)
        CHECK(api->queue_put_nowait(c->q, prio[i], api->value_int(i)) == 0);
    const int64_t want[] = {4, 1, 3, 0, 2, 5};
    for (int i = 0; i < 6; i++)
        CHECK(next(c, NULL) == want[i]);
out:
    return rc;
}
CASE(priority_queue_test_order, priority_order, "PriorityQueueTests.test_order")

/* ---- _QueueJoinTestMixin (Queue, LifoQueue, PriorityQueue) */

/* _QueueJoinTestMixin.test_task_done_underflow: ValueError is -EINVAL. */
BODY(join_task_done_underflow) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    CHECK(api->queue_task_done(c->q) == -EINVAL);
out:
    return rc;
}
MIXIN_CASE(queue_join_test_task_done_underflow, join_task_done_underflow,
           "_QueueJoinTestMixin.test_task_done_underflow")

/* while running: item = await q.get(); accumulator += item; q.task_done() */
static int co_worker(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    while (a->c->running) {
        int64_t i = get_int(a->c, self, &a->status);
        if (a->status < 0)
            return a->status;
        a->c->sum += i;
        api->queue_task_done(a->c->q);
    }
    return 0;
}

/* _QueueJoinTestMixin.test_task_done: join returns once two workers marked all 100 done. */
BODY(join_task_done) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    for (int i = 0; i < 100; i++)
        CHECK(put_nowait_int(c, i) == 0);
    c->running = 1;
    CHECK(spawn(c, co_worker, 0));
    CHECK(spawn(c, co_worker, 0));
    CHECK(join_queue(c) == 0);
    CHECK(c->sum == 4950);
    c->running = 0;
    CHECK(put_nowait_int(c, 0) == 0);
    CHECK(put_nowait_int(c, 0) == 0);
    CHECK(join_all(c));
    CHECK(ended_ok(&c->a[0]) && ended_ok(&c->a[1]));
out:
    return rc;
}
MIXIN_CASE(queue_join_test_task_done, join_task_done, "_QueueJoinTestMixin.test_task_done")

/* _QueueJoinTestMixin.test_join_empty_queue */
BODY(join_empty_queue) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    CHECK(join_queue(c) == 0);
    CHECK(join_queue(c) == 0);
out:
    return rc;
}
MIXIN_CASE(queue_join_test_join_empty_queue, join_empty_queue,
           "_QueueJoinTestMixin.test_join_empty_queue")

/* ---- _QueueShutdownTestMixin (Queue, LifoQueue, PriorityQueue) */

/* await q.join() */
static int co_join(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    a->status = api->queue_join(self, a->c->q);
    return a->status;
}

/* put, put_nowait, get and get_nowait all raise QueueShutDown (-EPIPE). */
static bool all_shut_down(ctx *c, aiod_task *t) {
    int r1 = put_int(c, t, 9), r2 = put_nowait_int(c, 9), r3, r4;
    get_int(c, t, &r3);
    get_int(c, NULL, &r4);
    return r1 == -EPIPE && r2 == -EPIPE && r3 == -EPIPE && r4 == -EPIPE;
}

/* _QueueShutdownTestMixin.test_shutdown_empty: a waiting get raises QueueShutDown; join does
 * not wait. */
BODY(shutdown_empty) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    actor *g = spawn(c, co_get, 0);
    CHECK(g);
    YIELD(); /* the get is pending before the shut-down */
    CHECK(api->queue_shutdown(c->q, 0) == 0);
    CHECK(api->queue_size(c->q) == 0);
    CHECK(join_queue(c) == 0);
    YIELD();
    CHECK(is_done(g));
    CHECK(g->status == -EPIPE);
    CHECK(all_shut_down(c, t));
out:
    return rc;
}
MIXIN_CASE(queue_shutdown_test_shutdown_empty, shutdown_empty,
           "_QueueShutdownTestMixin.test_shutdown_empty")

/* _QueueShutdownTestMixin.test_shutdown_nonempty: a waiting put fails, the item left can
 * still be got, join waits for its task_done. */
BODY(shutdown_nonempty) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 1, &c->q) == 0);
    CHECK(put_nowait_int(c, 7) == 0);
    actor *j = spawn(c, co_join, 0);
    actor *p = spawn(c, co_put, 8);
    CHECK(j && p);
    YIELD();
    CHECK(!is_done(p));
    CHECK(api->queue_shutdown(c->q, 0) == 0);
    CHECK(api->queue_size(c->q) == 1);
    YIELD();
    CHECK(is_done(p));
    CHECK(p->status == -EPIPE);
    CHECK(next(c, t) == 7);
    YIELD();
    CHECK(!is_done(j));
    CHECK(all_shut_down(c, t));
    CHECK(api->queue_task_done(c->q) == 0);
    YIELD();
    CHECK(is_done(j));
    CHECK(await_child(j) == 0);
    CHECK(api->queue_task_done(c->q) == -EINVAL);
out:
    return rc;
}
MIXIN_CASE(queue_shutdown_test_shutdown_nonempty, shutdown_nonempty,
           "_QueueShutdownTestMixin.test_shutdown_nonempty")

/* _QueueShutdownTestMixin.test_shutdown_immediate: the items are dropped and counted done. */
BODY(shutdown_immediate) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    CHECK(put_nowait_int(c, 7) == 0);
    actor *j = spawn(c, co_join, 0);
    CHECK(j);
    CHECK(api->queue_shutdown(c->q, 1) == 0);
    CHECK(api->queue_size(c->q) == 0);
    YIELD();
    CHECK(is_done(j));
    CHECK(await_child(j) == 0);
    CHECK(all_shut_down(c, t));
    CHECK(api->queue_task_done(c->q) == -EINVAL);
out:
    return rc;
}
MIXIN_CASE(queue_shutdown_test_shutdown_immediate, shutdown_immediate,
           "_QueueShutdownTestMixin.test_shutdown_immediate")

/* _QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished: an item got before the
 * shut-down still needs its task_done. */
BODY(shutdown_immediate_unfinished) {
    int rc = 0;
    CHECK(api->queue_new(kind(c), 0, &c->q) == 0);
    CHECK(put_nowait_int(c, 7) == 0);
    CHECK(put_nowait_int(c, 7) == 0);
    actor *j = spawn(c, co_join, 0);
    CHECK(j);
    CHECK(next(c, t) == 7);
    CHECK(api->queue_shutdown(c->q, 1) == 0);
    CHECK(api->queue_size(c->q) == 0);
    YIELD();
    CHECK(!is_done(j));
    CHECK(all_shut_down(c, t));
    CHECK(api->queue_task_done(c->q) == 0);
    CHECK(api->queue_task_done(c->q) == -EINVAL);
    YIELD();
    CHECK(is_done(j));
    CHECK(await_child(j) == 0);
out:
    return rc;
}
MIXIN_CASE(queue_shutdown_test_shutdown_immediate_with_unfinished, shutdown_immediate_unfinished,
           "_QueueShutdownTestMixin.test_shutdown_immediate_with_unfinished")

/* Not a CPython test: calls the api must refuse without a crash; items given to a failing
 * put are freed (ASan's leak check sees it). */
BODY(queue_misuse_body) {
    int rc = 0;
    aiod_value *v = NULL;
    CHECK(api->queue_new(0, 0, &c->q) == -EINVAL);
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, 0, NULL) == -EINVAL);
    CHECK(api->queue_new(AIOD_QUEUE_FIFO, -3, &c->q) == 0);
    CHECK(api->queue_maxsize(c->q) == 0);
    CHECK(api->queue_put(NULL, c->q, 0, api->value_int(1)) == -EINVAL);
    CHECK(api->queue_put_nowait(NULL, 0, api->value_int(1)) == -EINVAL);
    CHECK(api->queue_get(NULL, c->q, &v) == -EINVAL);
    CHECK(api->queue_get_nowait(c->q, NULL) == -EINVAL);
    CHECK(api->queue_join(NULL, c->q) == -EINVAL);
    CHECK(api->queue_shutdown(NULL, 0) == -EINVAL);
    /* A null item is a valid item. */
    CHECK(api->queue_put_nowait(c->q, 0, NULL) == 0);
    CHECK(api->queue_get_nowait(c->q, &v) == 0 && v == NULL);
    /* Items left in a freed queue are freed with it. */
    CHECK(put_nowait_int(c, 1) == 0);
    CHECK(api->queue_put_nowait(c->q, 0, api->value_string("left")) == 0);
out:
    return rc;
}
CASE(queue_misuse, queue_misuse_body, "aiod: queue misuse")

#define ENTRY(fn)                                                                                  \
    {                                                                                              \
        sizeof(struct aiod_function), AIOD_FN_INTERNAL, #fn, "test case", NULL, 0, AIOD_TYPE_NULL, \
            fn                                                                                     \
    }

static const struct aiod_function functions[] = {
    ENTRY(queue_basic_test_empty),
    ENTRY(queue_basic_test_full),
    ENTRY(queue_basic_test_order),
    ENTRY(queue_basic_test_maxsize),
    ENTRY(queue_get_test_blocking_get),
    ENTRY(queue_get_test_blocking_get_wait),
    ENTRY(queue_get_test_nonblocking_get_exception),
    ENTRY(queue_get_test_get_cancelled_race),
    ENTRY(queue_get_test_get_with_waiting_putters),
    ENTRY(queue_get_test_why_are_getters_waiting),
    ENTRY(queue_get_test_cancelled_getters_not_being_held_in_self_getters),
    ENTRY(queue_put_test_blocking_put),
    ENTRY(queue_put_test_blocking_put_wait),
    ENTRY(queue_put_test_get_cancel_drop_one_pending_reader),
    ENTRY(queue_put_test_get_cancel_drop_many_pending_readers),
    ENTRY(queue_put_test_put_cancel_drop),
    ENTRY(queue_put_test_nonblocking_put_exception),
    ENTRY(queue_put_test_put_cancelled),
    ENTRY(queue_put_test_put_cancelled_race),
    ENTRY(queue_put_test_put_with_waiting_getters),
    ENTRY(queue_put_test_why_are_putters_waiting),
    ENTRY(queue_put_test_cancelled_puts_not_being_held_in_self_putters),
    ENTRY(queue_put_test_cancelled_put_silence_value_error_exception),
    ENTRY(lifo_queue_test_order),
    ENTRY(priority_queue_test_order),
    ENTRY(queue_join_test_task_done_underflow),
    ENTRY(queue_join_test_task_done),
    ENTRY(queue_join_test_join_empty_queue),
    ENTRY(queue_shutdown_test_shutdown_empty),
    ENTRY(queue_shutdown_test_shutdown_nonempty),
    ENTRY(queue_shutdown_test_shutdown_immediate),
    ENTRY(queue_shutdown_test_shutdown_immediate_with_unfinished),
    ENTRY(queue_misuse),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "asyncio_queues",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

/*
 * Cases mirroring CPython's gather tests (test_tasks.py, GatherTestsBase and
 * its subclasses), futures (test_futures.py), plain callbacks
 * (test_base_events.py, test_events.py), and the deep cancel of issue 15.
 * Written in C against the plugin API; see asyncio_common.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asyncio_common.h"

/* ---- gather: a gatherer child gathers children that await futures G.f */
static struct {
    aiod_future *f[6];
    size_t n;
    int return_exceptions;
    int r, done;
    uint32_t cancelling;
    aiod_value *list;
} G;

static void gather_reset(void) {
    memset(&G, 0, sizeof(G));
}

static int gatherer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *c[6] = {0};
    for (size_t i = 0; i < G.n; i++)
        if (!(c[i] = asyncio_spawn(t, api, asyncio_h_await_future, G.f[i])))
            return -ENOMEM;
    G.r = api->gather(t, c, G.n, G.return_exceptions, &G.list);
    G.cancelling = api->cancelling(t);
    G.done = 1;
    for (size_t i = 0; i < G.n; i++)
        api->child_release(t, c[i]);
    return G.r == -EIO ? G.r : 0;
}

/* n new futures in G.f and a gatherer over them, started. */
static aiod_child *start_gather(aiod_task *t, const struct aiod_api *api, size_t n, int rexc) {
    gather_reset();
    G.n = n;
    G.return_exceptions = rexc;
    for (size_t i = 0; i < n; i++)
        if (api->future_new(t, &G.f[i]) < 0)
            return NULL;
    aiod_child *g = asyncio_spawn(t, api, gatherer, NULL);
    if (g && asyncio_yield(t, api, 2) < 0)
        return NULL;
    return g;
}

static void gather_cleanup(aiod_task *t, const struct aiod_api *api, aiod_child *g) {
    for (size_t i = 0; i < G.n; i++) {
        if (api->future_state(G.f[i]) == AIOD_STATE_PENDING)
            api->future_cancel(G.f[i], NULL);
        api->future_release(G.f[i]);
    }
    api->value_free(G.list);
    G.list = NULL;
    api->child_release(t, g);
}

static int64_t item_int(const struct aiod_api *api, size_t i) {
    const aiod_value *v = api->list_get(G.list, i);
    return v && api->value_type(v) == AIOD_TYPE_INT ? api->get_int(v) : INT64_MIN;
}
static const char *item_error(const struct aiod_api *api, size_t i) {
    const aiod_value *v = api->list_get(G.list, i);
    const aiod_value *e = v ? api->map_get(v, "error") : NULL;
    return e ? api->get_string(e) : NULL;
}

/* GatherTestsBase._check_success */
static int check_success(aiod_task *t, const struct aiod_api *api, int rexc) {
    NEED(future_new);
    aiod_child *g = start_gather(t, api, 3, rexc);
    CHECK(g);
    CHECK_OK(api->future_set_result(G.f[1], api->value_int(1)));
    CHECK_OK(api->future_set_result(G.f[0], api->value_int(2)));
    CHECK_OK(asyncio_yield(t, api, 3));
    CHECK_EQ(G.done, 0);
    CHECK_OK(api->future_set_result(G.f[2], api->value_int(3)));
    CHECK_OK(api->await(t, g, NULL));
    CHECK_EQ(G.r, 0);
    CHECK_EQ(api->length(G.list), 3);
    CHECK_EQ(item_int(api, 0), 2);
    CHECK_EQ(item_int(api, 1), 1);
    CHECK_EQ(item_int(api, 2), 3);
    gather_cleanup(t, api, g);
    return 0;
}
/* GatherTestsBase.test_success */
ASYNCIO_CASE(tasks_gather_test_success) {
    return check_success(t, api, 0);
}
/* GatherTestsBase.test_result_exception_success */
ASYNCIO_CASE(tasks_gather_test_result_exception_success) {
    return check_success(t, api, 1);
}

/* GatherTestsBase.test_one_exception: the first error is the gather's. */
ASYNCIO_CASE(tasks_gather_test_one_exception) {
    NEED(future_new);
    aiod_child *g = start_gather(t, api, 5, 0);
    CHECK(g);
    CHECK_OK(api->future_set_result(G.f[0], api->value_int(1)));
    CHECK_OK(api->future_set_error(G.f[1], "ZeroDivisionError", "division by zero"));
    CHECK_EQ(api->await(t, g, NULL), -EIO);
    CHECK_EQ(G.r, -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(g, &kind, &msg), 1);
    CHECK_STR(kind, "ZeroDivisionError");
    /* does nothing */
    CHECK_OK(api->future_set_result(G.f[2], api->value_int(3)));
    CHECK_EQ(api->future_cancel(G.f[3], NULL), 1);
    CHECK_OK(api->future_set_error(G.f[4], "RuntimeError", "x"));
    CHECK_OK(asyncio_yield(t, api, 2));
    gather_cleanup(t, api, g);
    return 0;
}

/* GatherTestsBase.test_return_exceptions */
ASYNCIO_CASE(tasks_gather_test_return_exceptions) {
    NEED(future_new);
    aiod_child *g = start_gather(t, api, 4, 1);
    CHECK(g);
    CHECK_OK(api->future_set_result(G.f[1], api->value_int(1)));
    CHECK_OK(api->future_set_error(G.f[2], "ZeroDivisionError", "zde"));
    CHECK_OK(api->future_set_result(G.f[0], api->value_int(3)));
    CHECK_OK(asyncio_yield(t, api, 3));
    CHECK_EQ(G.done, 0);
    CHECK_OK(api->future_set_error(G.f[3], "RuntimeError", "rte"));
    CHECK_OK(api->await(t, g, NULL));
    CHECK_EQ(G.r, 0);
    CHECK_EQ(api->length(G.list), 4);
    CHECK_EQ(item_int(api, 0), 3);
    CHECK_EQ(item_int(api, 1), 1);
    CHECK_STR(item_error(api, 2), "ZeroDivisionError");
    CHECK_STR(item_error(api, 3), "RuntimeError");
    gather_cleanup(t, api, g);
    return 0;
}

/* FutureGatherTests.test_one_cancellation: a cancelled child makes the
 * gather raise CancelledError, without the gathering task being cancelled. */
ASYNCIO_CASE(tasks_gather_test_one_cancellation) {
    NEED(future_new);
    NEED(cancelling);
    aiod_child *g = start_gather(t, api, 5, 0);
    CHECK(g);
    CHECK_OK(api->future_set_result(G.f[0], api->value_int(1)));
    CHECK_EQ(api->future_cancel(G.f[1], NULL), 1);
    CHECK_OK(api->await(t, g, NULL));
    CHECK_EQ(G.r, -ECANCELED);
    CHECK_EQ(G.cancelling, 0);
    CHECK_OK(api->future_set_result(G.f[2], api->value_int(3)));
    CHECK_EQ(api->future_cancel(G.f[3], NULL), 1);
    CHECK_OK(api->future_set_error(G.f[4], "RuntimeError", "x"));
    gather_cleanup(t, api, g);
    return 0;
}

/* FutureGatherTests.test_result_exception_one_cancellation: with
 * return_exceptions a cancelled child's place holds CancelledError. */
ASYNCIO_CASE(tasks_gather_test_result_exception_one_cancellation) {
    NEED(future_new);
    aiod_child *g = start_gather(t, api, 6, 1);
    CHECK(g);
    CHECK_OK(api->future_set_result(G.f[0], api->value_int(1)));
    CHECK_OK(api->future_set_error(G.f[1], "ZeroDivisionError", "zde"));
    CHECK_EQ(api->future_cancel(G.f[2], NULL), 1);
    CHECK_OK(asyncio_yield(t, api, 3));
    CHECK_EQ(G.done, 0);
    CHECK_OK(api->future_set_result(G.f[3], api->value_int(3)));
    CHECK_EQ(api->future_cancel(G.f[4], NULL), 1);
    CHECK_OK(api->future_set_error(G.f[5], "RuntimeError", "rte"));
    CHECK_OK(api->await(t, g, NULL));
    CHECK_EQ(G.r, 0);
    CHECK_EQ(api->length(G.list), 6);
    CHECK_EQ(item_int(api, 0), 1);
    CHECK_STR(item_error(api, 1), "ZeroDivisionError");
    CHECK_STR(item_error(api, 2), "CancelledError");
    CHECK_EQ(item_int(api, 3), 3);
    CHECK_STR(item_error(api, 4), "CancelledError");
    CHECK_STR(item_error(api, 5), "RuntimeError");
    gather_cleanup(t, api, g);
    return 0;
}

/* CoroutineGatherTests.test_cancellation_broadcast: cancelling the task
 * that gathers cancels every child, and the future they wait on. */
static struct {
    aiod_future *waiter;
    int proof;
    uint32_t state[2];
} B;
static int broadcast_inner(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->future_await(t, B.waiter, NULL);
    if (r < 0)
        return r;
    B.proof += 1;
    return 0;
}
static int broadcast_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *c[2] = {asyncio_spawn(t, api, broadcast_inner, NULL),
                        asyncio_spawn(t, api, broadcast_inner, NULL)};
    if (!c[0] || !c[1])
        return -ENOMEM;
    aiod_value *list = NULL;
    int r = api->gather(t, c, 2, 0, &list);
    api->value_free(list);
    B.state[0] = api->child_state(c[0]);
    B.state[1] = api->child_state(c[1]);
    api->child_release(t, c[0]);
    api->child_release(t, c[1]);
    if (r < 0)
        return r;
    B.proof += 100;
    return 0;
}
ASYNCIO_CASE(tasks_gather_test_cancellation_broadcast) {
    NEED(future_new);
    memset(&B, 0, sizeof(B));
    CHECK_OK(api->future_new(t, &B.waiter));
    aiod_child *f = asyncio_spawn(t, api, broadcast_outer, NULL);
    CHECK(f);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(api->cancel_msg(t, f, NULL), 1);
    CHECK_EQ(api->await(t, f, NULL), -ECANCELED);
    CHECK_EQ(api->future_state(B.waiter), AIOD_STATE_CANCELLED);
    CHECK_EQ(B.state[0], AIOD_STATE_CANCELLED);
    CHECK_EQ(B.state[1], AIOD_STATE_CANCELLED);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(B.proof, 0);
    api->child_release(t, f);
    api->future_release(B.waiter);
    return 0;
}

/* CoroutineGatherTests.test_exception_marking */
static int marking_inner(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->future_await(t, arg, NULL);
    if (r < 0)
        return r;
    return api->fail(t, "RuntimeError", "should not be ignored");
}
static int marking_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_future **f = arg;
    aiod_child *c[2] = {asyncio_spawn(t, api, marking_inner, f[0]),
                        asyncio_spawn(t, api, marking_inner, f[1])};
    if (!c[0] || !c[1])
        return -ENOMEM;
    int r = api->gather(t, c, 2, 0, ret);
    api->child_release(t, c[0]);
    api->child_release(t, c[1]);
    return r;
}
ASYNCIO_CASE(tasks_gather_test_exception_marking) {
    NEED(future_new);
    static aiod_future *f[2];
    CHECK_OK(api->future_new(t, &f[0]));
    CHECK_OK(api->future_new(t, &f[1]));
    aiod_child *o = asyncio_spawn(t, api, marking_outer, f);
    CHECK(o);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_OK(api->future_set_result(f[0], NULL));
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_OK(api->future_set_result(f[1], NULL));
    CHECK_EQ(api->wait(t, &o, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(o, &kind, &msg), 1);
    CHECK_STR(kind, "RuntimeError");
    api->child_release(t, o);
    api->future_release(f[0]);
    api->future_release(f[1]);
    return 0;
}

/* ---- futures (test_futures.py, BaseFutureTests) */
/* BaseFutureTests.test_initial_state */
ASYNCIO_CASE(futures_test_initial_state) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_EQ(api->future_state(f), AIOD_STATE_PENDING);
    CHECK_EQ(api->future_cancel(f, NULL), 1);
    CHECK_EQ(api->future_state(f), AIOD_STATE_CANCELLED);
    api->future_release(f);
    return 0;
}

/* BaseFutureTests.test_cancel */
ASYNCIO_CASE(futures_test_cancel) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_EQ(api->future_cancel(f, NULL), 1);
    CHECK_EQ(api->future_state(f), AIOD_STATE_CANCELLED);
    aiod_value *v = NULL;
    CHECK_EQ(api->future_result(t, f, &v), -ECANCELED);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->future_error(f, &kind, &msg), -ECANCELED);
    CHECK_EQ(api->future_set_result(f, NULL), -EBUSY);
    CHECK_EQ(api->future_set_error(f, "RuntimeError", "x"), -EBUSY);
    CHECK_EQ(api->future_cancel(f, NULL), 0);
    api->future_release(f);
    return 0;
}

/* BaseFutureTests.test_result */
ASYNCIO_CASE(futures_test_result) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_value *v = NULL;
    CHECK_EQ(api->future_result(t, f, &v), -EAGAIN);
    CHECK_OK(api->future_set_result(f, api->value_int(42)));
    CHECK_EQ(api->future_state(f), AIOD_STATE_DONE);
    CHECK_OK(api->future_result(t, f, &v));
    CHECK_EQ(api->get_int(v), 42);
    api->value_free(v);
    const char *kind = "x", *msg = "x";
    CHECK_EQ(api->future_error(f, &kind, &msg), 0); /* exception() is None */
    CHECK_EQ(api->future_set_result(f, NULL), -EBUSY);
    CHECK_EQ(api->future_set_error(f, "RuntimeError", "x"), -EBUSY);
    CHECK_EQ(api->future_cancel(f, NULL), 0);
    api->future_release(f);
    return 0;
}

/* BaseFutureTests.test_exception */
ASYNCIO_CASE(futures_test_exception) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->future_error(f, &kind, &msg), -EAGAIN);
    CHECK_OK(api->future_set_error(f, "RuntimeError", "boom"));
    CHECK_EQ(api->future_state(f), AIOD_STATE_FAILED);
    int r = api->future_error(f, &kind, &msg);
    CHECK(r == -EIO || r == 1);
    CHECK_STR(kind, "RuntimeError");
    CHECK_STR(msg, "boom");
    aiod_value *v = NULL;
    CHECK_EQ(api->future_result(t, f, &v), -EIO);
    CHECK_EQ(api->future_set_result(f, NULL), -EBUSY);
    CHECK_EQ(api->future_cancel(f, NULL), 0);
    api->future_release(f);
    return 0;
}

/* BaseFutureTests.test_future_cancel_message_getter */
ASYNCIO_CASE(futures_test_future_cancel_message_getter) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_EQ(api->future_cancel(f, "my message"), 1);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->future_error(f, &kind, &msg), -ECANCELED);
    CHECK_STR(msg, "my message");
    CHECK_EQ(api->future_await(t, f, NULL), -ECANCELED);
    api->future_release(f);
    return 0;
}

/* BaseFutureTests.test_yield_from_twice, and one future awaited by several
 * tasks at once. */
ASYNCIO_CASE(futures_test_yield_from_twice) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c[3];
    for (int i = 0; i < 3; i++)
        CHECK(c[i] = asyncio_spawn(t, api, asyncio_h_await_future, f));
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->future_set_result(f, api->value_int(7)));
    aiod_value *v = NULL;
    CHECK_OK(api->future_await(t, f, &v));
    CHECK_EQ(api->get_int(v), 7);
    api->value_free(v);
    v = NULL;
    CHECK_OK(api->future_await(t, f, &v));
    CHECK_EQ(api->get_int(v), 7);
    api->value_free(v);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(api->await(t, c[i], NULL));
        CHECK_EQ(asyncio_child_int(t, api, c[i]), 7);
        api->child_release(t, c[i]);
    }
    api->future_release(f);
    return 0;
}

/* Done callbacks append their data to the bag. */
static struct {
    int bag[8];
    int n;
    aiod_future *seen;
} CB;
static void bag_appender(aiod_future *f, void *data) {
    CB.seen = f;
    if (CB.n < 8)
        CB.bag[CB.n++] = (int)(intptr_t)data;
}
static void bag_appender2(aiod_future *f, void *data) {
    bag_appender(f, data);
}

static int order_seen[4], n_order_seen;
static void order_cb(aiod_future *f, void *data) {
    (void)f;
    (void)data;
    order_seen[n_order_seen++] = 1;
}
static int order_awaiter(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    int r = api->future_await(t, arg, NULL);
    order_seen[n_order_seen++] = 2;
    return r;
}

/* A task's wake-up is one of the future's done-callbacks in asyncio: a
 * callback added before the task awaited runs before the task resumes. */
ASYNCIO_CASE(futures_test_callbacks_and_awaiting_tasks_in_order) {
    n_order_seen = 0;
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_OK(api->future_add_done_callback(f, order_cb, NULL));
    aiod_child *c = asyncio_spawn(t, api, order_awaiter, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->future_set_result(f, NULL));
    CHECK_OK(api->await(t, c, NULL));
    CHECK_EQ(n_order_seen, 2);
    CHECK_EQ(order_seen[0], 1);
    CHECK_EQ(order_seen[1], 2);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_result: run
 * soon after set_result, in order, not during it. */
ASYNCIO_CASE(futures_test_callbacks_invoked_on_set_result) {
    NEED(future_add_done_callback);
    memset(&CB, 0, sizeof(CB));
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)42));
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)17));
    CHECK_EQ(CB.n, 0);
    CHECK_OK(api->future_set_result(f, api->value_string("foo")));
    CHECK_EQ(CB.n, 0);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(CB.n, 2);
    CHECK_EQ(CB.bag[0], 42);
    CHECK_EQ(CB.bag[1], 17);
    CHECK(CB.seen == f);
    aiod_value *v = NULL;
    CHECK_OK(api->future_result(t, f, &v));
    CHECK_STR(api->get_string(v), "foo");
    api->value_free(v);
    /* Added once done: scheduled at once. */
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)5));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(CB.n, 3);
    CHECK_EQ(CB.bag[2], 5);
    api->future_release(f);
    return 0;
}

/* BaseFutureDoneCallbackTests.test_callbacks_invoked_on_set_exception */
ASYNCIO_CASE(futures_test_callbacks_invoked_on_set_exception) {
    NEED(future_add_done_callback);
    memset(&CB, 0, sizeof(CB));
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)100));
    CHECK_EQ(CB.n, 0);
    CHECK_OK(api->future_set_error(f, "RuntimeError", "exc"));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(CB.n, 1);
    CHECK_EQ(CB.bag[0], 100);
    const char *kind = NULL, *msg = NULL;
    int r = api->future_error(f, &kind, &msg);
    CHECK(r == -EIO || r == 1);
    CHECK_STR(kind, "RuntimeError");
    api->future_release(f);
    return 0;
}

/* BaseFutureDoneCallbackTests.test_callbacks_remove_third_callback: a
 * callback is its (function, data) pair. */
ASYNCIO_CASE(futures_test_callbacks_remove_third_callback) {
    NEED(future_remove_done_callback);
    memset(&CB, 0, sizeof(CB));
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)42));
    CHECK_OK(api->future_add_done_callback(f, bag_appender2, (void *)17));
    CHECK_OK(api->future_add_done_callback(f, bag_appender, (void *)100));
    CHECK_EQ(api->future_remove_done_callback(f, bag_appender, (void *)100), 1);
    CHECK_EQ(api->future_remove_done_callback(f, bag_appender, (void *)100), 0);
    CHECK_EQ(CB.n, 0);
    CHECK_OK(api->future_set_result(f, api->value_string("foo")));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(CB.n, 2);
    CHECK_EQ(CB.bag[0], 42);
    CHECK_EQ(CB.bag[1], 17);
    api->future_release(f);
    return 0;
}

/* ---- plain callbacks */
static struct {
    char calls[8];
    int n;
    int want;
    aiod_future *done;
    const struct aiod_api *api;
} EV;
static void ev_cb(void *data) {
    if (EV.n < 8)
        EV.calls[EV.n++] = (char)(intptr_t)data;
    if (EV.done && EV.n == EV.want)
        EV.api->future_set_result(EV.done, NULL);
}
static int ev_setup(aiod_task *t, const struct aiod_api *api, int want) {
    memset(&EV, 0, sizeof(EV));
    EV.api = api;
    EV.want = want;
    return api->future_new(t, &EV.done);
}

/* BaseEventLoopTests.test_call_soon / EventLoopTestsMixin.test_call_soon:
 * callbacks run soon, in the order they were scheduled. */
ASYNCIO_CASE(events_test_call_soon) {
    NEED(call_soon);
    CHECK_OK(ev_setup(t, api, 3));
    CHECK_OK(api->call_soon(ev_cb, (void *)'a', NULL));
    CHECK_OK(api->call_soon(ev_cb, (void *)'b', NULL));
    CHECK_OK(api->call_soon(ev_cb, (void *)'c', NULL));
    CHECK_EQ(EV.n, 0);
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK_EQ(EV.n, 3);
    CHECK(memcmp(EV.calls, "abc", 3) == 0);
    api->future_release(EV.done);
    return 0;
}

/* EventLoopTestsMixin.test_call_later: runs after the delay. */
ASYNCIO_CASE(events_test_call_later) {
    NEED(call_later);
    CHECK_OK(ev_setup(t, api, 1));
    double t0 = api->loop_time();
    CHECK_OK(api->call_later(0.1, ev_cb, (void *)'x', NULL));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(EV.n, 0);
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK(api->loop_time() - t0 >= 0.09);
    CHECK_EQ(EV.calls[0], 'x');
    api->future_release(EV.done);
    return 0;
}

/* BaseEventLoopTests.test_call_later_negative_delays: ordered by when. */
ASYNCIO_CASE(events_test_call_later_negative_delays) {
    NEED(call_later);
    CHECK_OK(ev_setup(t, api, 2));
    CHECK_OK(api->call_later(-1, ev_cb, (void *)'a', NULL));
    CHECK_OK(api->call_later(-2, ev_cb, (void *)'b', NULL));
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK(memcmp(EV.calls, "ba", 2) == 0);
    api->future_release(EV.done);
    return 0;
}

/* asyncio accepts loop.call_later(1e300, cb) (and call_at that far off):
 * a call that never comes, whose handle cancels like any other. It was
 * -EINVAL from 1e9 s on. */
ASYNCIO_CASE(events_test_call_later_far_future) {
    NEED(call_later);
    CHECK_OK(ev_setup(t, api, 1));
    aiod_handle *h1 = NULL, *h2 = NULL;
    CHECK_OK(api->call_later(1e300, ev_cb, (void *)'f', &h1));
    CHECK_OK(api->call_later(INFINITY, ev_cb, (void *)'g', NULL));
    CHECK_OK(api->call_at(api->loop_time() + 1.8e16, ev_cb, (void *)'h', &h2));
    CHECK_EQ(api->call_later(NAN, ev_cb, NULL, NULL), -EINVAL);
    CHECK_OK(api->call_later(0.01, ev_cb, (void *)'x', NULL));
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK_EQ(EV.n, 1);
    CHECK_EQ(EV.calls[0], 'x');
    CHECK_EQ(api->handle_cancel(h1), 1);
    CHECK_EQ(api->handle_cancel(h1), 0);
    api->handle_release(h1);
    api->handle_release(h2); /* never cancelled: released all the same */
    api->future_release(EV.done);
    return 0;
}

/* BaseEventLoopTests.test_time_and_call_at */
ASYNCIO_CASE(events_test_time_and_call_at) {
    NEED(call_at);
    CHECK_OK(ev_setup(t, api, 1));
    double t0 = api->loop_time();
    CHECK_OK(api->call_at(t0 + 0.1, ev_cb, (void *)'x', NULL));
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK(api->loop_time() - t0 >= 0.09);
    api->future_release(EV.done);
    return 0;
}

/* Busy for `seconds` of the loop's clock without yielding. */
static void busy(const struct aiod_api *api, double seconds) {
    double end = api->loop_time() + seconds;
    while (api->loop_time() < end) {
    }
}

/* BaseEventLoopTests.test_time_and_call_at, armed late in a step: a timer
 * never fires before loop.time() reaches its time (BaseEventLoop._run_once
 * runs a timer only once it is due), however long the step ran before it
 * was armed. aiod armed its timers from libuv's clock, read at the start of
 * the loop iteration: after 60 ms of work, sleep(0.1) returned after 40. */
ASYNCIO_CASE(events_test_timers_armed_late_in_a_step) {
    NEED(call_at);
    CHECK_OK(ev_setup(t, api, 1));
    busy(api, 0.06);
    double t0 = api->loop_time();
    CHECK_OK(api->call_at(t0 + 0.1, ev_cb, (void *)'x', NULL));
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK(api->loop_time() - t0 >= 0.1);
    api->future_release(EV.done);

    busy(api, 0.06);
    t0 = api->loop_time();
    CHECK_OK(api->sleep(t, 0.1));
    CHECK(api->loop_time() - t0 >= 0.1);
    return 0;
}

/* HandleTests.test_handle: a cancelled handle's callback never runs; after
 * it ran, cancel() reports 0. */
ASYNCIO_CASE(events_test_handle) {
    NEED(handle_cancel);
    CHECK_OK(ev_setup(t, api, 1));
    aiod_handle *h1 = NULL, *h2 = NULL, *h3 = NULL;
    CHECK_OK(api->call_soon(ev_cb, (void *)'s', &h1));
    CHECK_OK(api->call_later(0.01, ev_cb, (void *)'l', &h2));
    CHECK_OK(api->call_later(0.05, ev_cb, (void *)'z', &h3));
    CHECK_EQ(api->handle_cancel(h1), 1);
    CHECK_EQ(api->handle_cancel(h2), 1);
    CHECK_OK(api->future_await(t, EV.done, NULL));
    CHECK_EQ(EV.n, 1);
    CHECK_EQ(EV.calls[0], 'z');
    CHECK_EQ(api->handle_cancel(h3), 0);
    api->handle_release(h1);
    api->handle_release(h2);
    api->handle_release(h3);
    api->future_release(EV.done);
    return 0;
}

/* ---- the deep cancel of issue 15: n tasks, each awaiting the next; the
 * head is cancelled; every link must end cancelled, iteratively. */
static struct {
    size_t n;
    unsigned char *state; /* 1: saw the cancel and its child ended cancelled */
    aiod_future *bottom;
} D;
static int chain_link(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    size_t i = (size_t)(uintptr_t)arg;
    if (i + 1 == D.n) {
        api->future_set_result(D.bottom, NULL);
        int r = api->sleep(t, 1e6);
        D.state[i] = r == -ECANCELED ? 1 : 2;
        return r;
    }
    aiod_child *c = NULL;
    int r = api->spawn_call(t, chain_link, (void *)(uintptr_t)(i + 1), &c);
    if (r < 0) {
        D.state[i] = 3;
        return r;
    }
    r = api->await(t, c, NULL);
    D.state[i] = r == -ECANCELED && api->child_state(c) == AIOD_STATE_CANCELLED ? 1 : 2;
    api->child_release(t, c);
    return r;
}
ASYNCIO_CASE(asyncio_deep_cancel_chain) {
    NEED(spawn_call);
    NEED(future_new);
    int64_t n = api->get_int(args[0]);
    CHECK(n >= 2);
    D.n = (size_t)n;
    D.state = calloc(D.n, 1);
    CHECK(D.state);
    CHECK_OK(api->future_new(t, &D.bottom));
    aiod_child *head = asyncio_spawn(t, api, chain_link, (void *)0);
    CHECK(head);
    CHECK_OK(api->future_await(t, D.bottom, NULL));
    CHECK_EQ(api->cancel_msg(t, head, NULL), 1);
    CHECK_EQ(api->await(t, head, NULL), -ECANCELED);
    size_t ok = 0, first_bad = D.n;
    for (size_t i = 0; i < D.n; i++) {
        if (D.state[i] == 1)
            ok++;
        else if (first_bad == D.n)
            first_bad = i;
    }
    unsigned bad_state = first_bad < D.n ? D.state[first_bad] : 0;
    free(D.state);
    D.state = NULL;
    api->future_release(D.bottom);
    api->child_release(t, head);
    if (ok != D.n)
        return api->fail(t, "AssertionError",
                         "deep_cancel_chain: %zu of %zu links cancelled; link %zu has state %u", ok,
                         D.n, first_bad, bad_state);
    *ret = api->value_int((int64_t)ok);
    return 0;
}

/*
 * Cases mirroring CPython's Lib/test/test_asyncio/test_waitfor.py and
 * test_timeouts.py (3.12/3.13): await_timeout as asyncio.wait_for, and
 * timeout scopes. Written in C against the plugin API; see
 * asyncio_common.h. A scope is freed by timeout_exit, so what CPython reads
 * from the context manager after the block (expired(), when()) is read here
 * just before timeout_exit.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "asyncio_common.h"

static struct {
    int exited, started, running, task_done, r1, r2, expired;
    aiod_future *fut;
    aiod_timeout *tm;
    aiod_task *owner;
    aiod_child *target;
    uint32_t state;
} W;

static void reset(void) {
    memset(&W, 0, sizeof(W));
}

/* Blocks the loop (CPython's time.sleep in a coroutine). */
static void busy(double seconds) {
    struct timespec ts = {0, (long)(seconds * 1e9)};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* SlowTask.run: runs 0.2 s, ignoring cancel requests. */
static int slow_task(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    double exitat = api->loop_time() + 0.2;
    for (;;) {
        double tosleep = exitat - api->loop_time();
        if (tosleep <= 0)
            break;
        int r = api->sleep(t, tosleep);
        if (r < 0 && r != -ECANCELED)
            return r;
    }
    W.exited = 1;
    return 0;
}
/* wait_for(slow task, timeout): the timeout in *arg. */
static int wait_for_slow(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *c = asyncio_spawn(t, api, slow_task, NULL);
    if (!c)
        return -ENOMEM;
    int r = api->await_timeout(t, c, *(double *)arg, 1, ret);
    W.r1 = r;
    api->child_release(t, c);
    return r;
}

/* AsyncioWaitForTest.test_asyncio_wait_for_cancelled: cancelling the task
 * in wait_for waits for the inner task, which ignores the cancel. */
ASYNCIO_CASE(waitfor_test_asyncio_wait_for_cancelled) {
    reset();
    static double timeout = 0.4;
    aiod_child *w = asyncio_spawn(t, api, wait_for_slow, &timeout);
    CHECK(w);
    /* CPython's wait_for runs the coroutine inline; here it is a child task
     * of w, which starts one loop iteration after w: yield twice. */
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_OK(api->cancel(t, w));
    CHECK_EQ(api->wait(t, &w, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(W.exited, 1);
    api->child_release(t, w);
    return 0;
}

/* AsyncioWaitForTest.test_asyncio_wait_for_timeout: wait_for returns only
 * once the inner task (ignoring the cancel) has exited. */
ASYNCIO_CASE(waitfor_test_asyncio_wait_for_timeout) {
    reset();
    static double timeout = 0.1;
    aiod_child *w = asyncio_spawn(t, api, wait_for_slow, &timeout);
    CHECK(w);
    CHECK_EQ(api->wait(t, &w, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK(W.r1 == 0 || W.r1 == -ETIMEDOUT);
    CHECK_EQ(W.exited, 1);
    api->child_release(t, w);
    return 0;
}

/* test_wait_for_timeout_less_then_0_or_0_future_done: a done task's result
 * with timeout 0. */
ASYNCIO_CASE(waitfor_test_wait_for_timeout_less_then_0_or_0_future_done) {
    static struct job j = {.delay = -1, .value = 'd'};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    double t0 = api->loop_time();
    aiod_value *v = NULL;
    CHECK_OK(api->await_timeout(t, c, 0, 1, &v));
    CHECK_EQ(api->get_int(v), 'd');
    api->value_free(v);
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    CHECK(api->loop_time() - t0 < 0.1);
    api->child_release(t, c);
    return 0;
}

/* wait_for(task, 0) on a task that already ended cancelled: its own
 * CancelledError (`if fut.done(): return fut.result()`), not a timeout. */
ASYNCIO_CASE(waitfor_test_wait_for_timeout_0_task_already_cancelled) {
    static struct job j = {.delay = 10};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    aiod_value *v = NULL;
    CHECK_EQ(api->await_timeout(t, c, 0, 1, &v), -ECANCELED);
    api->child_release(t, c);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
 * (the name shortened: function names have at most 63 bytes) */
static int sets_started(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    W.started = 1;
    return 0;
}
ASYNCIO_CASE(waitfor_test_wait_for_timeout_0_coroutine_do_not_started) {
    reset();
    aiod_child *c = asyncio_spawn(t, api, sets_started, NULL);
    CHECK(c);
    double t0 = api->loop_time();
    CHECK_EQ(api->await_timeout(t, c, 0, 1, NULL), -ETIMEDOUT);
    CHECK(api->loop_time() - t0 < 0.1);
    CHECK_EQ(W.started, 0);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    return 0;
}

/* foo() of test_wait_for and test_wait_for_timeout_less_then_0_or_0 */
static int foo_sleeps(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    W.running = 1;
    if (W.fut)
        api->future_set_result(W.fut, NULL);
    int r = api->sleep(t, 10);
    W.running = 0; /* finally */
    if (r < 0)
        return r;
    *ret = api->value_string("done");
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_timeout_less_then_0_or_0: timeouts 0
 * and -1 expire at once, cancelling the task and waiting for it. */
ASYNCIO_CASE(waitfor_test_wait_for_timeout_less_then_0_or_0) {
    NEED(future_new);
    static const double timeouts[] = {0, -1};
    for (int i = 0; i < 2; i++) {
        reset();
        CHECK_OK(api->future_new(t, &W.fut));
        aiod_child *c = asyncio_spawn(t, api, foo_sleeps, NULL);
        CHECK(c);
        CHECK_OK(api->future_await(t, W.fut, NULL));
        double t0 = api->loop_time();
        CHECK_EQ(api->await_timeout(t, c, timeouts[i], 1, NULL), -ETIMEDOUT);
        CHECK(api->loop_time() - t0 < 0.1);
        CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
        CHECK_EQ(W.running, 0);
        api->child_release(t, c);
        api->future_release(W.fut);
    }
    return 0;
}

/* AsyncioWaitForTest.test_wait_for */
ASYNCIO_CASE(waitfor_test_wait_for) {
    reset();
    aiod_child *c = asyncio_spawn(t, api, foo_sleeps, NULL);
    CHECK(c);
    double t0 = api->loop_time();
    CHECK_EQ(api->await_timeout(t, c, 0.1, 1, NULL), -ETIMEDOUT);
    double dt = api->loop_time() - t0;
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK(dt >= 0.09 && dt < 0.2);
    CHECK_EQ(W.running, 0);
    api->child_release(t, c);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_blocking: timeout None */
ASYNCIO_CASE(waitfor_test_wait_for_blocking) {
    static struct job j = {.delay = -1, .value = 'd'};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    aiod_value *v = NULL;
    CHECK_OK(api->await_timeout(t, c, AIOD_FOREVER, 1, &v));
    CHECK_EQ(api->get_int(v), 'd');
    api->value_free(v);
    api->child_release(t, c);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_race_condition: the result comes at
 * 0.1 s, within the 0.2 s. */
static void set_ok(void *data) {
    const struct aiod_api *api = data;
    api->future_set_result(W.fut, api->value_string("ok"));
}
ASYNCIO_CASE(waitfor_test_wait_for_race_condition) {
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &W.fut));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, W.fut);
    CHECK(c);
    CHECK_OK(api->call_later(0.1, set_ok, (void *)api, NULL));
    aiod_value *v = NULL;
    CHECK_OK(api->await_timeout(t, c, 0.2, 1, &v));
    CHECK_STR(api->get_string(v), "ok");
    api->value_free(v);
    api->child_release(t, c);
    api->future_release(W.fut);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_cancellation_race_condition: the inner
 * task swallows the timeout's cancel and returns 1; wait_for returns 1. */
static int swallows_cancel(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->sleep(t, 1);
    if (r != -ECANCELED)
        return api->fail(t, "AssertionError", "inner: sleep returned %d, not -ECANCELED", r);
    *ret = api->value_int(1);
    return 0;
}
ASYNCIO_CASE(waitfor_test_wait_for_cancellation_race_condition) {
    aiod_child *c = asyncio_spawn(t, api, swallows_cancel, NULL);
    CHECK(c);
    aiod_value *v = NULL;
    CHECK_EQ(api->await_timeout(t, c, 0.01, 1, &v), 0);
    CHECK(v != NULL);
    CHECK_EQ(api->get_int(v), 1);
    api->value_free(v);
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    api->child_release(t, c);
    return 0;
}

/* inner() of test_wait_for_waits_for_task_cancellation: on cancel it
 * sleeps a little before re-raising. */
static int slow_to_cancel(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->sleep(t, 10);
    if (r == -ECANCELED) {
        int r2 = api->sleep(t, 0.0001);
        if (r2 < 0 && r2 != -ECANCELED)
            r = r2;
    }
    W.task_done = 1; /* finally */
    return r;
}

/* AsyncioWaitForTest.test_wait_for_waits_for_task_cancellation */
ASYNCIO_CASE(waitfor_test_wait_for_waits_for_task_cancellation) {
    reset();
    aiod_child *c = asyncio_spawn(t, api, slow_to_cancel, NULL);
    CHECK(c);
    CHECK_EQ(api->await_timeout(t, c, 0.0001, 1, NULL), -ETIMEDOUT);
    CHECK_EQ(W.task_done, 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_waits_for_task_cancellation_w_timeout_0 */
ASYNCIO_CASE(waitfor_test_wait_for_waits_for_task_cancellation_w_timeout_0) {
    reset();
    aiod_child *c = asyncio_spawn(t, api, slow_to_cancel, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0.0001));
    CHECK_EQ(api->await_timeout(t, c, 0, 1, NULL), -ETIMEDOUT);
    CHECK_EQ(W.task_done, 1);
    api->child_release(t, c);
    return 0;
}

/* AsyncioWaitForTest.test_wait_for_reraises_exception_during_cancellation:
 * an error raised by the inner task while cancelled replaces the
 * TimeoutError. */
static int raises_in_finally(aiod_task *t, const struct aiod_api *api, void *arg,
                             aiod_value **ret) {
    api->sleep(t, 0.2);
    return api->fail(t, "FooException", "raised in finally");
}
static int foo_wait_for(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *c = asyncio_spawn(t, api, raises_in_finally, NULL);
    if (!c)
        return -ENOMEM;
    int r = api->await_timeout(t, c, 0.0001, 1, ret);
    W.r1 = r;
    api->child_release(t, c);
    return r;
}
ASYNCIO_CASE(waitfor_test_wait_for_reraises_exception_during_cancellation) {
    reset();
    aiod_child *c = asyncio_spawn(t, api, foo_wait_for, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -EIO);
    CHECK_EQ(W.r1, -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), 1);
    CHECK_STR(kind, "FooException");
    api->child_release(t, c);
    return 0;
}

/* _test_cancel_wait_for: cancelling the task in wait_for also cancels the
 * task it waits for (Python issue #23219). */
static int blocking_coroutine(aiod_task *t, const struct aiod_api *api, void *arg,
                              aiod_value **ret) {
    aiod_future *f = NULL;
    int r = api->future_new(t, &f);
    if (r < 0)
        return r;
    r = api->future_await(t, f, NULL);
    api->future_release(f);
    return r;
}
static int wait_for_blocking(aiod_task *t, const struct aiod_api *api, void *arg,
                             aiod_value **ret) {
    aiod_child *c = asyncio_spawn(t, api, blocking_coroutine, NULL);
    if (!c)
        return -ENOMEM;
    int r = api->await_timeout(t, c, *(double *)arg, 1, NULL);
    W.state = api->child_state(c);
    api->child_release(t, c);
    return r;
}
static void cancel_target_cb(void *data) {
    const struct aiod_api *api = data;
    W.r2 = api->cancel_msg(W.owner, W.target, NULL);
}
static int cancel_wait_for(aiod_task *t, const struct aiod_api *api, double *timeout) {
    NEED(call_soon);
    NEED(cancel_msg);
    reset();
    aiod_child *w = asyncio_spawn(t, api, wait_for_blocking, timeout);
    CHECK(w);
    W.owner = t;
    W.target = w;
    CHECK_OK(api->call_soon(cancel_target_cb, (void *)api, NULL));
    CHECK_EQ(api->await(t, w, NULL), -ECANCELED);
    CHECK_EQ(W.r2, 1);
    CHECK_EQ(W.state, AIOD_STATE_CANCELLED);
    api->child_release(t, w);
    return 0;
}
/* AsyncioWaitForTest.test_cancel_blocking_wait_for */
ASYNCIO_CASE(waitfor_test_cancel_blocking_wait_for) {
    static double timeout = AIOD_FOREVER;
    return cancel_wait_for(t, api, &timeout);
}
/* AsyncioWaitForTest.test_cancel_wait_for */
ASYNCIO_CASE(waitfor_test_cancel_wait_for) {
    static double timeout = 60;
    return cancel_wait_for(t, api, &timeout);
}

/* ---- timeout scopes (test_timeouts.py, TimeoutTests) */

/* A scope of `delay` (or at `when`) around one sleep of `sleep_s`:
 * returns timeout_exit's status; *expired and *when as read before exit. */
static int scoped_sleep(aiod_task *t, const struct aiod_api *api, int at, double d, double sleep_s,
                        int *expired, double *when) {
    aiod_timeout *tm = NULL;
    int r = at ? api->timeout_enter_at(t, d, &tm) : api->timeout_enter(t, d, &tm);
    if (r < 0)
        return api->fail(t, "AssertionError", "timeout_enter failed: %d", r);
    r = api->sleep(t, sleep_s);
    *expired = api->timeout_expired(tm);
    *when = api->timeout_when(tm);
    return api->timeout_exit(t, tm, r);
}

/* TimeoutTests.test_timeout_basic */
ASYNCIO_CASE(timeouts_test_timeout_basic) {
    NEED(timeout_enter);
    int expired;
    double when;
    CHECK_EQ(scoped_sleep(t, api, 0, 0.01, 10, &expired, &when), -ETIMEDOUT);
    CHECK(expired);
    return 0;
}

/* TimeoutTests.test_timeout_at_basic */
ASYNCIO_CASE(timeouts_test_timeout_at_basic) {
    NEED(timeout_enter_at);
    int expired;
    double when, deadline = api->loop_time() + 0.01;
    CHECK_EQ(scoped_sleep(t, api, 1, deadline, 10, &expired, &when), -ETIMEDOUT);
    CHECK(expired);
    CHECK(when == deadline);
    return 0;
}

/* TimeoutTests.test_nested_timeouts: only the outermost raises
 * TimeoutError; the inner passes the CancelledError on. */
ASYNCIO_CASE(timeouts_test_nested_timeouts) {
    NEED(timeout_enter_at);
    double deadline = api->loop_time() + 0.01;
    aiod_timeout *tm1 = NULL, *tm2 = NULL;
    CHECK_OK(api->timeout_enter_at(t, deadline, &tm1));
    CHECK_OK(api->timeout_enter_at(t, deadline, &tm2));
    int r = api->sleep(t, 10);
    CHECK_EQ(r, -ECANCELED);
    CHECK(api->timeout_expired(tm2));
    r = api->timeout_exit(t, tm2, r);
    CHECK_EQ(r, -ECANCELED); /* cancelled = True; raise */
    CHECK(api->timeout_expired(tm1));
    CHECK_EQ(api->timeout_exit(t, tm1, r), -ETIMEDOUT);
    return 0;
}

/* TimeoutTests.test_waiter_cancelled */
ASYNCIO_CASE(timeouts_test_waiter_cancelled) {
    NEED(timeout_enter);
    aiod_timeout *tm = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &tm));
    int r = api->sleep(t, 10);
    int cancelled = r == -ECANCELED;
    CHECK_EQ(api->timeout_exit(t, tm, r), -ETIMEDOUT);
    CHECK(cancelled);
    return 0;
}

/* TimeoutTests.test_timeout_not_called */
ASYNCIO_CASE(timeouts_test_timeout_not_called) {
    NEED(timeout_enter);
    double t0 = api->loop_time();
    int expired;
    double when;
    CHECK_EQ(scoped_sleep(t, api, 0, 10, 0.01, &expired, &when), 0);
    double t1 = api->loop_time();
    CHECK(!expired);
    CHECK(t1 - t0 < 2);
    CHECK(when > t1);
    return 0;
}

/* TimeoutTests.test_timeout_disabled / test_timeout_at_disabled */
static int timeout_disabled(aiod_task *t, const struct aiod_api *api, int at) {
    double t0 = api->loop_time();
    int expired;
    double when;
    CHECK_EQ(scoped_sleep(t, api, at, AIOD_FOREVER, 0.01, &expired, &when), 0);
    CHECK(!expired);
    CHECK(when == AIOD_FOREVER);
    CHECK(api->loop_time() - t0 < 2);
    return 0;
}
ASYNCIO_CASE(timeouts_test_timeout_disabled) {
    NEED(timeout_enter);
    return timeout_disabled(t, api, 0);
}
ASYNCIO_CASE(timeouts_test_timeout_at_disabled) {
    NEED(timeout_enter_at);
    return timeout_disabled(t, api, 1);
}

/* TimeoutTests.test_timeout_zero, _zero_sleep_zero, _in_the_past_sleep_zero */
static int timeout_at_once(aiod_task *t, const struct aiod_api *api, double delay, double sleep_s) {
    NEED(timeout_enter);
    double t0 = api->loop_time();
    int expired;
    double when;
    CHECK_EQ(scoped_sleep(t, api, 0, delay, sleep_s, &expired, &when), -ETIMEDOUT);
    double t1 = api->loop_time();
    CHECK(expired);
    CHECK(t1 - t0 < 2);
    if (delay == 0)
        CHECK(t0 <= when && when <= t1);
    else
        CHECK(when <= t0);
    return 0;
}
ASYNCIO_CASE(timeouts_test_timeout_zero) {
    return timeout_at_once(t, api, 0, 10);
}
ASYNCIO_CASE(timeouts_test_timeout_zero_sleep_zero) {
    return timeout_at_once(t, api, 0, 0);
}
ASYNCIO_CASE(timeouts_test_timeout_in_the_past_sleep_zero) {
    return timeout_at_once(t, api, -11, 0);
}

/* TimeoutTests.test_foreign_exception_passed */
ASYNCIO_CASE(timeouts_test_foreign_exception_passed) {
    NEED(timeout_enter);
    aiod_timeout *tm = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &tm));
    int r = api->fail(t, "KeyError", "raised in the block");
    CHECK(!api->timeout_expired(tm));
    CHECK_EQ(api->timeout_exit(t, tm, r), -EIO);
    return 0;
}

/* TimeoutTests.test_foreign_exception_on_timeout: an error raised while
 * the timeout cancels is passed on, not turned into TimeoutError. */
ASYNCIO_CASE(timeouts_test_foreign_exception_on_timeout) {
    NEED(timeout_enter);
    aiod_timeout *tm = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &tm));
    int r = api->sleep(t, 1);
    CHECK_EQ(r, -ECANCELED);
    r = api->fail(t, "ZeroDivisionError", "in finally"); /* crash()'s finally */
    CHECK_EQ(api->timeout_exit(t, tm, r), -EIO);
    return 0;
}

/* Children of the cases that cancel their own task. */
static int foreign_cancel(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_timeout *tm = NULL;
    int r = api->timeout_enter(t, 10, &tm);
    if (r < 0)
        return r;
    W.r1 = api->cancel_self(t, NULL);
    r = api->sleep(t, 10);
    W.expired = api->timeout_expired(tm);
    r = api->timeout_exit(t, tm, r);
    W.r2 = r;
    return r;
}
/* TimeoutTests.test_foreign_cancel_doesnt_timeout_if_not_expired */
ASYNCIO_CASE(timeouts_test_foreign_cancel_doesnt_timeout_if_not_expired) {
    NEED(timeout_enter);
    NEED(cancel_self);
    reset();
    aiod_child *c = asyncio_spawn(t, api, foreign_cancel, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(W.r2, -ECANCELED);
    CHECK_EQ(W.expired, 0);
    api->child_release(t, c);
    return 0;
}

/* TimeoutTests.test_outer_task_is_not_cancelled */
static int times_out(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_timeout *tm = NULL;
    int r = api->timeout_enter(t, 0.001, &tm);
    if (r < 0)
        return r;
    r = api->timeout_exit(t, tm, api->sleep(t, 10));
    if (r != -ETIMEDOUT)
        return api->fail(t, "AssertionError", "timeout_exit returned %d, not -ETIMEDOUT", r);
    return 0;
}
ASYNCIO_CASE(timeouts_test_outer_task_is_not_cancelled) {
    NEED(timeout_enter);
    aiod_child *c = asyncio_spawn(t, api, times_out, NULL);
    CHECK(c);
    CHECK_OK(api->await(t, c, NULL));
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    api->child_release(t, c);
    return 0;
}

/* TimeoutTests.test_nested_timeouts_concurrent: the outer (0.002 s)
 * expires while the loop is blocked; the inner (0.1 s) did not. */
ASYNCIO_CASE(timeouts_test_nested_timeouts_concurrent) {
    NEED(timeout_enter);
    aiod_timeout *outer = NULL, *inner = NULL;
    CHECK_OK(api->timeout_enter(t, 0.002, &outer));
    CHECK_OK(api->timeout_enter(t, 0.1, &inner));
    busy(0.01);
    int r = api->sleep(t, 1);
    CHECK_EQ(r, -ECANCELED);
    CHECK(!api->timeout_expired(inner));
    r = api->timeout_exit(t, inner, r);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(api->timeout_exit(t, outer, r), -ETIMEDOUT);
    return 0;
}

/* TimeoutTests.test_nested_timeouts_loop_busy: whatever the inner scope
 * does, the outer one stops the block with TimeoutError well before 1 s. */
ASYNCIO_CASE(timeouts_test_nested_timeouts_loop_busy) {
    NEED(timeout_enter);
    double t0 = api->loop_time();
    aiod_timeout *outer = NULL, *inner = NULL;
    CHECK_OK(api->timeout_enter(t, 0.1, &outer));
    CHECK_OK(api->timeout_enter(t, 0.01, &inner));
    busy(0.1);
    int r = api->sleep(t, 1);
    CHECK_EQ(r, -ECANCELED);
    r = api->timeout_exit(t, inner, r);
    CHECK(r == -ETIMEDOUT || r == -ECANCELED);
    if (r == -ETIMEDOUT)
        r = api->sleep(t, 10); /* interrupted by the outer scope */
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(api->timeout_exit(t, outer, r), -ETIMEDOUT);
    double t1 = api->loop_time();
    CHECK(t0 <= t1 && t1 <= t0 + 1);
    return 0;
}

/* TimeoutTests.test_reschedule: another task reschedules the scope; a
 * cancel of the task then is not a timeout. */
static int rescheduled(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->timeout_enter_at(t, *(double *)arg, &W.tm);
    if (r < 0)
        return r;
    api->future_set_result(W.fut, NULL);
    r = api->sleep(t, 50);
    W.expired = api->timeout_expired(W.tm);
    r = api->timeout_exit(t, W.tm, r);
    W.tm = NULL;
    W.r2 = r;
    return r;
}
ASYNCIO_CASE(timeouts_test_reschedule) {
    NEED(timeout_reschedule);
    NEED(future_new);
    reset();
    static double deadline1;
    deadline1 = api->loop_time() + 10;
    double deadline2 = deadline1 + 20;
    CHECK_OK(api->future_new(t, &W.fut));
    aiod_child *c = asyncio_spawn(t, api, rescheduled, &deadline1);
    CHECK(c);
    CHECK_OK(api->future_await(t, W.fut, NULL));
    CHECK(W.tm);
    CHECK(api->timeout_when(W.tm) == deadline1);
    CHECK_OK(api->timeout_reschedule(W.tm, deadline2));
    CHECK(api->timeout_when(W.tm) == deadline2);
    CHECK_OK(api->timeout_reschedule(W.tm, AIOD_FOREVER));
    CHECK(api->timeout_when(W.tm) == AIOD_FOREVER);
    CHECK_OK(api->cancel(t, c));
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(W.r2, -ECANCELED);
    CHECK_EQ(W.expired, 0);
    api->child_release(t, c);
    api->future_release(W.fut);
    return 0;
}

/* TimeoutTests.test_nested_timeout_in_finally: after the outer scope's
 * cancel was delivered, an inner scope in the cleanup still works. */
ASYNCIO_CASE(timeouts_test_nested_timeout_in_finally) {
    NEED(timeout_enter);
    aiod_timeout *outer = NULL, *inner = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &outer));
    int r = api->sleep(t, 1);
    CHECK_EQ(r, -ECANCELED);
    /* finally: */
    CHECK_OK(api->timeout_enter(t, 0.01, &inner));
    double t0 = api->loop_time();
    int r2 = api->sleep(t, 10);
    CHECK_EQ(r2, -ECANCELED);
    CHECK(api->loop_time() - t0 >= 0.005); /* the inner scope's, not a sticky cancel */
    CHECK_EQ(api->timeout_exit(t, inner, r2), -ETIMEDOUT);
    CHECK_EQ(api->timeout_exit(t, outer, r), -ETIMEDOUT);
    return 0;
}

/* TimeoutTests.test_timeout_after_cancellation: a task that caught its
 * cancel can still use a timeout for its cleanup. */
static int timeout_after_cancel(aiod_task *t, const struct aiod_api *api, void *arg,
                                aiod_value **ret) {
    int cancel_inside = arg != NULL;
    api->cancel_self(t, NULL);
    int r = api->sleep(t, 1); /* work which will be cancelled */
    if (r != -ECANCELED)
        return api->fail(t, "AssertionError", "first sleep returned %d", r);
    aiod_timeout *tm = NULL;
    r = api->timeout_enter(t, cancel_inside ? 1.0 : 0.0, &tm);
    if (r < 0)
        return r;
    if (cancel_inside)
        api->cancel_self(t, NULL);
    r = api->sleep(t, cancel_inside ? 2 : 1); /* some cleanup */
    W.r1 = r;
    r = api->timeout_exit(t, tm, r);
    W.r2 = r;
    return 0;
}
ASYNCIO_CASE(timeouts_test_timeout_after_cancellation) {
    NEED(timeout_enter);
    NEED(cancel_self);
    reset();
    aiod_child *c = asyncio_spawn(t, api, timeout_after_cancel, NULL);
    CHECK(c);
    CHECK_OK(api->await(t, c, NULL));
    CHECK_EQ(W.r1, -ECANCELED);
    CHECK_EQ(W.r2, -ETIMEDOUT);
    api->child_release(t, c);
    return 0;
}

/* TimeoutTests.test_cancel_in_timeout_after_cancellation: a new cancel in
 * that scope stays a CancelledError. */
ASYNCIO_CASE(timeouts_test_cancel_in_timeout_after_cancellation) {
    NEED(timeout_enter);
    NEED(cancel_self);
    reset();
    aiod_child *c = asyncio_spawn(t, api, timeout_after_cancel, (void *)1);
    CHECK(c);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(W.r1, -ECANCELED);
    CHECK_EQ(W.r2, -ECANCELED);
    api->child_release(t, c);
    return 0;
}

/* base_events.py _run_once runs a timer only once `when < time() +
 * clock_resolution` (1 ns): never before loop.time() reached it. libuv
 * counts whole milliseconds of a truncated clock, so sleep(d), call_at(w)
 * and timeout_at(w) came up to a millisecond early, most often while other
 * timers woke the loop (a ticker here, as in a busy daemon). */
static int ticking;
static int h_ticker(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg, (void)ret;
    while (ticking) {
        int r = api->sleep(t, 0.0003);
        if (r < 0)
            return r;
    }
    return 0;
}
static double saw_at;
static void h_saw(void *data) {
    const struct aiod_api *api = data;
    saw_at = api->loop_time();
}
ASYNCIO_CASE(timeouts_test_timers_never_fire_early) {
    enum { TRIALS = 100 };
    ticking = 1;
    aiod_child *ticker = asyncio_spawn(t, api, h_ticker, NULL);
    CHECK(ticker);
    int early_sleep = 0, early_call_at = 0, early_timeout = 0;
    for (int i = 0; i < TRIALS; i++) {
        double d = 0.002 + (i % 20) * 0.00005 + 0.00001;
        double t0 = api->loop_time();
        CHECK_OK(api->sleep(t, d));
        early_sleep += api->loop_time() - t0 < d;

        double when = api->loop_time() + 0.0021 + (i % 10) * 0.0001;
        saw_at = 0;
        CHECK_OK(api->call_at(when, h_saw, (void *)api, NULL));
        while (saw_at == 0)
            CHECK_OK(api->sleep(t, 0.001));
        early_call_at += saw_at < when;

        aiod_timeout *tm = NULL;
        when = api->loop_time() + d;
        CHECK_OK(api->timeout_enter_at(t, when, &tm));
        CHECK_EQ(api->timeout_exit(t, tm, api->sleep(t, 1)), -ETIMEDOUT);
        early_timeout += api->loop_time() < when;
    }
    ticking = 0;
    CHECK_OK(api->await(t, ticker, NULL));
    api->child_release(t, ticker);
    CHECK_EQ(early_sleep, 0);
    CHECK_EQ(early_call_at, 0);
    CHECK_EQ(early_timeout, 0);
    return 0;
}

/* aiod: a scope is left only by its own task. Another task's timeout_exit
 * freed it under its owner, whose own exit then used freed memory. */
static aiod_timeout *others_tm;
static int others_tm_may_exit;
static int h_scope_owner(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg;
    int r = api->timeout_enter(t, 60, &others_tm);
    if (r < 0)
        return r;
    while (!others_tm_may_exit)
        if ((r = api->sleep(t, 0)) < 0)
            return r;
    r = api->timeout_exit(t, others_tm, 0);
    if (r < 0)
        return r;
    *ret = api->value_int(7);
    return *ret ? 0 : -ENOMEM;
}

ASYNCIO_CASE(timeouts_exit_refused_to_another_task) {
    NEED(timeout_exit);
    others_tm = NULL;
    others_tm_may_exit = 0;
    aiod_child *owner = asyncio_spawn(t, api, h_scope_owner, NULL);
    CHECK(owner);
    while (!others_tm)
        CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->timeout_exit(t, others_tm, 0), -EINVAL);
    CHECK_EQ(api->timeout_exit(NULL, others_tm, 0), -EINVAL);
    others_tm_may_exit = 1;
    CHECK_OK(api->await(t, owner, NULL));
    CHECK_EQ(asyncio_child_int(t, api, owner), 7);
    api->child_release(t, owner);
    return 0;
}

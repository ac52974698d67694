/*
 * Cases mirroring CPython's Lib/test/test_asyncio/test_tasks.py (3.12/3.13):
 * cancellation, wait, as_completed, shield, gather, current task, names.
 * Written in C against the plugin API; see asyncio_common.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asyncio_common.h"

/* ---- shared state of the running case (reset by each case) */
static struct {
    int stage, proof, started, cancels, exited;
    uint32_t cancelling_seen[4];
    uint32_t uncancel_left;
    aiod_future *f1, *f2, *f3, *waiter;
    aiod_task *task1, *task2, *seen1[2], *seen2[2];
    aiod_task *owner;
    aiod_child *target;
    uint32_t state1, state2;
    int r1, r2;
} S;

static void reset(void) {
    memset(&S, 0, sizeof(S));
}

/* BaseTaskTests.test_task_class: a task's result, done(). */
static int notmuch(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    *ret = api->value_string("ok");
    return 0;
}
ASYNCIO_CASE(tasks_test_task_class) {
    NEED(spawn_call);
    NEED(child_result);
    aiod_child *c = asyncio_spawn(t, api, notmuch, NULL);
    CHECK(c);
    aiod_value *v = NULL;
    CHECK_OK(api->await(t, c, &v));
    CHECK_STR(api->get_string(v), "ok");
    api->value_free(v);
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    v = NULL;
    CHECK_OK(api->child_result(t, c, &v));
    CHECK_STR(api->get_string(v), "ok");
    api->value_free(v);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel: cancel a sleeping task; cancel() after the end
 * is False. */
ASYNCIO_CASE(tasks_test_cancel) {
    NEED(cancel_msg);
    static struct job j = {.delay = 10, .value = 12};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 0);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_yield: the task is cancelled while its wake-up
 * from sleep(0) is already queued; it must still end cancelled. */
static int two_yields(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->sleep(t, 0);
    if (r < 0)
        return r;
    r = api->sleep(t, 0);
    if (r < 0)
        return r;
    *ret = api->value_int(12);
    return 0;
}
ASYNCIO_CASE(tasks_test_cancel_yield) {
    NEED(cancel_msg);
    aiod_child *c = asyncio_spawn(t, api, two_yields, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0)); /* start coro */
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 0);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_inner_future: cancelling the future a task
 * awaits cancels the task. */
ASYNCIO_CASE(tasks_test_cancel_inner_future) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->future_cancel(f, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->future_state(f), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* BaseTaskTests.test_cancel_both_task_and_inner_future */
ASYNCIO_CASE(tasks_test_cancel_both_task_and_inner_future) {
    NEED(future_new);
    NEED(cancel_msg);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->future_cancel(f, NULL), 1);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->future_state(f), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* fut1, then fut2 (a cancel there: return 42 with `catching`, else go on to
 * fut3 and return its result). */
static int three_futures(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int catching = arg != NULL;
    S.stage = 1;
    int r = api->future_await(t, S.f1, NULL);
    if (r < 0)
        return r;
    S.stage = 2;
    r = api->future_await(t, S.f2, NULL);
    if (r == -ECANCELED && catching) {
        *ret = api->value_int(42);
        return 0;
    }
    if (r < 0 && r != -ECANCELED)
        return r;
    S.stage = 3;
    return api->future_await(t, S.f3, ret);
}

/* BaseTaskTests.test_cancel_task_catching */
ASYNCIO_CASE(tasks_test_cancel_task_catching) {
    NEED(future_new);
    NEED(cancel_msg);
    reset();
    CHECK_OK(api->future_new(t, &S.f1));
    CHECK_OK(api->future_new(t, &S.f2));
    aiod_child *c = asyncio_spawn(t, api, three_futures, (void *)1);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(S.stage, 1);
    CHECK_OK(api->future_set_result(S.f1, NULL));
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(S.stage, 2);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->future_state(S.f2), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->await(t, c, NULL), 0);
    CHECK_EQ(asyncio_child_int(t, api, c), 42);
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    api->child_release(t, c);
    api->future_release(S.f1);
    api->future_release(S.f2);
    return 0;
}

/* BaseTaskTests.test_cancel_task_ignoring: after a swallowed cancel the
 * task awaits again and returns normally. */
ASYNCIO_CASE(tasks_test_cancel_task_ignoring) {
    NEED(future_new);
    NEED(cancel_msg);
    reset();
    CHECK_OK(api->future_new(t, &S.f1));
    CHECK_OK(api->future_new(t, &S.f2));
    CHECK_OK(api->future_new(t, &S.f3));
    aiod_child *c = asyncio_spawn(t, api, three_futures, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(S.stage, 1);
    CHECK_OK(api->future_set_result(S.f1, NULL));
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(S.stage, 2);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->future_state(S.f2), AIOD_STATE_CANCELLED);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(S.stage, 3);
    CHECK_OK(api->future_set_result(S.f3, api->value_int(42)));
    CHECK_EQ(api->await(t, c, NULL), 0);
    CHECK_EQ(asyncio_child_int(t, api, c), 42);
    CHECK(api->future_state(S.f3) != AIOD_STATE_CANCELLED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    api->child_release(t, c);
    api->future_release(S.f1);
    api->future_release(S.f2);
    api->future_release(S.f3);
    return 0;
}

/* The task cancels itself, then sleeps 100 s: the sleep is cancelled at
 * once. Without a sleep (arg set) it returns 12 at once: it must still end
 * cancelled (test_cancel_at_end). */
static int cancel_self_then(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    S.r1 = api->cancel_self(t, NULL);
    S.cancelling_seen[0] = api->cancelling(t);
    if (!arg) {
        double t0 = api->loop_time();
        S.r2 = api->sleep(t, 100);
        S.stage = api->loop_time() - t0 < 5 ? 1 : 2;
        if (S.r2 < 0)
            return S.r2;
    }
    *ret = api->value_int(12);
    return 0;
}

static int sibling_ran;
static int marks_sibling(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t;
    (void)api;
    (void)arg;
    (void)ret;
    sibling_ran = 1;
    return 0;
}
/* Cancels itself, then sleeps: records whether the sibling created just
 * before had run by the time the CancelledError came. */
static int cancels_itself(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    aiod_child *b = asyncio_spawn(t, api, marks_sibling, NULL);
    if (!b)
        return -ENOMEM;
    api->cancel_self(t, NULL);
    int r = api->sleep(t, 10);
    *(int *)arg = sibling_ran;
    api->child_release(t, b);
    return r;
}

/* A task that cancelled itself gets CancelledError from its next await
 * through the loop, as in asyncio (the awaited future is cancelled and the
 * task's wake-up scheduled): a task ready before it runs first. */
ASYNCIO_CASE(tasks_test_cancel_current_task_yields_first) {
    NEED(cancel_self);
    static int seen;
    seen = -1;
    sibling_ran = 0;
    aiod_child *c = asyncio_spawn(t, api, cancels_itself, &seen);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(seen, 1);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_current_task */
ASYNCIO_CASE(tasks_test_cancel_current_task) {
    NEED(cancel_self);
    reset();
    aiod_child *c = asyncio_spawn(t, api, cancel_self_then, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(S.r1, 1);
    CHECK_EQ(S.cancelling_seen[0], 1); /* _must_cancel, white box */
    CHECK_EQ(S.r2, -ECANCELED);
    CHECK_EQ(S.stage, 1); /* cancelled at once, not after 100 s */
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 0);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_at_end: the coroutine ends right after the task
 * was cancelled; the task is cancelled, its result dropped. */
ASYNCIO_CASE(tasks_test_cancel_at_end) {
    NEED(cancel_self);
    reset();
    aiod_child *c = asyncio_spawn(t, api, cancel_self_then, (void *)1);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(S.r1, 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 0);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_awaited_task: a task cancels itself, then
 * awaits a child: the child is cancelled, and the future it waits on. */
static int awaits_nested(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *nested = asyncio_spawn(t, api, asyncio_h_await_future, S.f1);
    if (!nested)
        return -ENOMEM;
    int r = api->sleep(t, 0);
    if (r < 0)
        return r;
    api->cancel_self(t, NULL);
    r = api->await(t, nested, NULL);
    S.state1 = api->child_state(nested);
    api->child_release(t, nested);
    return r;
}
ASYNCIO_CASE(tasks_test_cancel_awaited_task) {
    NEED(cancel_self);
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &S.f1));
    aiod_child *c = asyncio_spawn(t, api, awaits_nested, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(S.state1, AIOD_STATE_CANCELLED);
    CHECK_EQ(api->future_state(S.f1), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    api->future_release(S.f1);
    return 0;
}

/* Records cancelling() before and after its 10 s sleep is cancelled;
 * with arg set, uncancels and sleeps 10 s again (test_uncancel). */
static int counts_cancels(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    S.cancelling_seen[0] = api->cancelling(t);
    int r = api->sleep(t, 10);
    S.cancelling_seen[1] = api->cancelling(t);
    if (r != -ECANCELED || !arg)
        return r;
    S.uncancel_left = api->uncancel(t);
    S.cancelling_seen[2] = api->cancelling(t);
    S.stage = 1;
    return api->sleep(t, 10);
}

/* BaseTaskTests.test_cancelling: cancelling() counts the requests; a second
 * cancel() still returns True. */
ASYNCIO_CASE(tasks_test_cancelling) {
    NEED(cancelling);
    reset();
    aiod_child *c = asyncio_spawn(t, api, counts_cancels, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(S.cancelling_seen[0], 0);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(S.cancelling_seen[1], 2);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_uncancel */
ASYNCIO_CASE(tasks_test_uncancel) {
    NEED(uncancel);
    reset();
    aiod_child *c = asyncio_spawn(t, api, counts_cancels, (void *)1);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0.01));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1); /* cancel the first sleep */
    CHECK_OK(api->sleep(t, 0.01));
    CHECK_EQ(S.stage, 1);
    CHECK_EQ(S.cancelling_seen[1], 1);
    CHECK_EQ(S.uncancel_left, 0);
    CHECK_EQ(S.cancelling_seen[2], 0);        /* not " cancelling " after uncancel() */
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1); /* cancel the second sleep */
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    return 0;
}

/* test_cancel_with_message_then_future_result / _exception: a child
 * cancelled with a message; result() and exception() raise CancelledError
 * carrying it. */
static int cancel_with_message(aiod_task *t, const struct aiod_api *api, int use_result,
                               int before_start) {
    NEED(cancel_msg);
    NEED(child_error);
    static int started;
    started = 0;
    static struct job j = {.delay = 10};
    j.cancels = &started; /* counts the sleep's cancel: it ran */
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    if (!before_start)
        CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->cancel_msg(t, c, "my message"), 1);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    const char *kind = NULL, *msg = NULL;
    if (use_result) {
        aiod_value *v = NULL;
        CHECK_EQ(api->child_result(t, c, &v), -ECANCELED);
        CHECK(v == NULL);
    }
    CHECK_EQ(api->child_error(c, &kind, &msg), -ECANCELED);
    CHECK_STR(msg, "my message");
    if (before_start)
        CHECK_EQ(started, 0);
    else
        CHECK_EQ(started, 1);
    api->child_release(t, c);
    return 0;
}
/* BaseTaskTests.test_cancelling as CPython writes it: on a task that has not
 * started yet, cancel() is True twice and cancelling() counts both; the task
 * is still pending, and ends cancelled at its first step. */
ASYNCIO_CASE(tasks_test_cancelling_before_start) {
    NEED(cancelling);
    reset();
    aiod_child *c = asyncio_spawn(t, api, counts_cancels, NULL);
    CHECK(c);
    CHECK_EQ(api->cancelling((aiod_task *)c), 0);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->cancelling((aiod_task *)c), 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_PENDING);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->cancelling((aiod_task *)c), 2);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(S.cancelling_seen[0], 0); /* it never ran */
    api->child_release(t, c);
    return 0;
}

/* Task.uncancel (3.13) before the task's first step takes the request
 * back: the task runs as if never cancelled. */
ASYNCIO_CASE(tasks_test_uncancel_before_start) {
    NEED(uncancel);
    static struct job j = {.delay = -1, .value = 7};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->uncancel((aiod_task *)c), 0);
    aiod_value *v = NULL;
    CHECK_OK(api->await(t, c, &v));
    CHECK_EQ(api->get_int(v), 7);
    api->value_free(v);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_uncancel_resets_must_cancel: the awaited future is
 * done (the task's wake-up queued) when cancel() comes, and uncancel()
 * takes it back before the task resumes: the task sees the result. */
ASYNCIO_CASE(tasks_test_uncancel_resets_must_cancel) {
    NEED(uncancel);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->future_set_result(f, api->value_int(42)));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->cancelling((aiod_task *)c), 1);
    CHECK_EQ(api->uncancel((aiod_task *)c), 0);
    aiod_value *v = NULL;
    CHECK_OK(api->await(t, c, &v));
    CHECK_EQ(api->get_int(v), 42);
    api->value_free(v);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* Sleeps 10 s; cancelled, uncancels and sleeps 10 s again. */
static int uncancels_once(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg;
    (void)ret;
    int r = api->sleep(t, 10);
    if (r == -ECANCELED) {
        api->uncancel(t);
        r = api->sleep(t, 10);
    }
    return r;
}

/* cancel(msg=None) after cancel("first") (the first one uncancelled): the
 * CancelledError has no message, as the latest request gave none. */
ASYNCIO_CASE(tasks_test_cancel_message_is_the_latest_one) {
    NEED(uncancel);
    aiod_child *c = asyncio_spawn(t, api, uncancels_once, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->cancel_msg(t, c, "first"), 1);
    CHECK_OK(api->sleep(t, 0.01));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), -ECANCELED);
    CHECK(!msg || strcmp(msg, "first") != 0);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_cancel_with_message_then_future_result */
ASYNCIO_CASE(tasks_test_cancel_with_message_then_future_result) {
    return cancel_with_message(t, api, 1, 0);
}
/* coro() of test_cancel_with_message_then_future_result: cancels its own
 * child with "my message", waits for it, and takes its result, which
 * raises the child's CancelledError out of coro. */
static int h_coro_raises_childs_cancel(aiod_task *t, const struct aiod_api *api, void *arg,
                                       aiod_value **ret) {
    (void)arg, (void)ret;
    static struct job j = {.delay = 10};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    if (!c)
        return -ENOMEM;
    int r = api->sleep(t, 0);
    if (r == 0)
        r = api->cancel_msg(t, c, "my message") == 1 ? 0 : -EINVAL;
    if (r == 0)
        r = api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED) == 1 ? 0 : -EINVAL;
    aiod_value *v = NULL;
    if (r == 0)
        r = api->child_result(t, c, &v);
    api->value_free(v);
    api->child_release(t, c);
    return r;
}

/* BaseTaskTests.test_cancel_with_message_then_future_result, on the outer
 * task (its assertEqual(exc.args, expected_args)): coro ends cancelled
 * with the CancelledError it got from its child, message and all. aiod
 * gave it "awaited task was cancelled". */
ASYNCIO_CASE(tasks_test_cancel_with_message_reaches_the_outer_task) {
    NEED(cancel_msg);
    NEED(child_error);
    aiod_child *coro = asyncio_spawn(t, api, h_coro_raises_childs_cancel, NULL);
    CHECK(coro);
    CHECK_EQ(api->wait(t, &coro, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(coro), AIOD_STATE_CANCELLED);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(coro, &kind, &msg), -ECANCELED);
    CHECK_STR(msg, "my message");
    api->child_release(t, coro);
    return 0;
}

/* BaseTaskTests.test_cancel_with_message_then_future_exception */
ASYNCIO_CASE(tasks_test_cancel_with_message_then_future_exception) {
    return cancel_with_message(t, api, 0, 0);
}
/* BaseTaskTests.test_cancel_with_message_before_starting_task */
ASYNCIO_CASE(tasks_test_cancel_with_message_before_starting_task) {
    return cancel_with_message(t, api, 0, 1);
}

/* BaseTaskTests.test_cancellation_exception_context: a callback cancels the
 * inner task with a message; the outer catches it and raises ValueError. */
static void cancel_target_cb(void *data) {
    const struct aiod_api *api = data;
    S.r1 = api->cancel_msg(S.owner, S.target, "msg");
}
static int ctx_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job j = {.delay = 10};
    aiod_child *inner = asyncio_spawn(t, api, asyncio_h_job, &j);
    if (!inner)
        return -ENOMEM;
    S.owner = t;
    S.target = inner;
    int r = api->call_soon(cancel_target_cb, (void *)api, NULL);
    if (r < 0)
        return r;
    r = api->await(t, inner, NULL);
    const char *kind = NULL, *msg = NULL;
    S.r2 = api->child_error(inner, &kind, &msg);
    S.stage = msg && strcmp(msg, "msg") == 0;
    api->child_release(t, inner);
    if (r == -ECANCELED)
        return api->fail(t, "ValueError", "cancelled");
    return api->fail(t, "AssertionError", "ctx_outer: await returned %d, not -ECANCELED", r);
}
ASYNCIO_CASE(tasks_test_cancellation_exception_context) {
    NEED(call_soon);
    reset();
    aiod_child *c = asyncio_spawn(t, api, ctx_outer, NULL);
    CHECK(c);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), 1);
    CHECK_STR(kind, "ValueError");
    CHECK_STR(msg, "cancelled");
    CHECK_EQ(S.r1, 1);
    CHECK_EQ(S.r2, -ECANCELED);
    CHECK_EQ(S.stage, 1); /* the inner CancelledError carried 'msg' */
    api->child_release(t, c);
    return 0;
}

/* ---- wait */
static void release_all(aiod_task *t, const struct aiod_api *api, aiod_child **c, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (c[i])
            api->child_release(t, c[i]);
}

/* BaseTaskTests.test_wait: both done after the longer; a second wait
 * returns at once. */
ASYNCIO_CASE(tasks_test_wait) {
    static struct job ja = {.delay = 0.1}, jb = {.delay = 0.15};
    aiod_child *c[2] = {asyncio_spawn(t, api, asyncio_h_job, &jb),
                        asyncio_spawn(t, api, asyncio_h_job, &ja)};
    CHECK(c[0] && c[1]);
    double t0 = api->loop_time();
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    CHECK(api->loop_time() - t0 >= 0.14);
    CHECK_EQ(api->child_state(c[0]), AIOD_STATE_DONE);
    CHECK_EQ(api->child_state(c[1]), AIOD_STATE_DONE);
    t0 = api->loop_time();
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    CHECK(api->loop_time() - t0 < 0.05);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_wait_errors (and test_wait_invalid_args): wait() on no
 * tasks and an unknown return_when are ValueError. */
ASYNCIO_CASE(tasks_test_wait_errors) {
    static struct job j = {.delay = 10};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_EQ(api->wait(t, &c, 0, AIOD_FOREVER, AIOD_ALL_COMPLETED), -EINVAL);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, (uint32_t)-1), -EINVAL);
    CHECK_OK(api->cancel(t, c));
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_wait_first_completed */
ASYNCIO_CASE(tasks_test_wait_first_completed) {
    static struct job ja = {.delay = 10}, jb = {.delay = 0.1};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    aiod_child *b = asyncio_spawn(t, api, asyncio_h_job, &jb);
    CHECK(a && b);
    aiod_child *c[2] = {b, a};
    double t0 = api->loop_time();
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_FIRST_COMPLETED), 1);
    CHECK(api->loop_time() - t0 < 5);
    CHECK_EQ(api->child_state(b), AIOD_STATE_DONE);
    CHECK(api->child_state(a) == AIOD_STATE_RUNNING || api->child_state(a) == AIOD_STATE_PENDING);
    CHECK_OK(api->cancel(t, a));
    CHECK_EQ(api->await(t, a, NULL), -ECANCELED);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_wait_really_done: tasks that became done in the same
 * iteration are all reported done by FIRST_COMPLETED. */
static int one_yield(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    return api->sleep(t, 0);
}
ASYNCIO_CASE(tasks_test_wait_really_done) {
    aiod_child *a = asyncio_spawn(t, api, one_yield, NULL);
    aiod_child *b = asyncio_spawn(t, api, two_yields, NULL);
    CHECK(a && b);
    aiod_child *c[2] = {b, a};
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_FIRST_COMPLETED), 2);
    CHECK_EQ(api->child_state(a), AIOD_STATE_DONE);
    CHECK_EQ(api->child_state(b), AIOD_STATE_DONE);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_wait_duplicate_coroutines: asyncio.wait takes a set,
 * so a child given twice is one child in `done`. aiod counted places. */
ASYNCIO_CASE(tasks_test_wait_duplicate_children) {
    aiod_child *a = asyncio_spawn(t, api, one_yield, NULL);
    aiod_child *b = asyncio_spawn(t, api, two_yields, NULL);
    CHECK(a && b);
    aiod_child *c[4] = {a, b, a, a};
    CHECK_EQ(api->wait(t, c, 4, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    CHECK_EQ(api->wait(t, c, 3, 0, AIOD_FIRST_COMPLETED), 2);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_wait_first_exception / _in_wait */
static int wait_first_exception(aiod_task *t, const struct aiod_api *api, struct job *jb) {
    static struct job ja = {.delay = 10};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    aiod_child *b = asyncio_spawn(t, api, asyncio_h_job, jb);
    CHECK(a && b);
    aiod_child *c[2] = {b, a};
    double t0 = api->loop_time();
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_FIRST_EXCEPTION), 1);
    CHECK(api->loop_time() - t0 < 5);
    CHECK_EQ(api->child_state(b), AIOD_STATE_FAILED);
    CHECK(api->child_state(a) == AIOD_STATE_RUNNING || api->child_state(a) == AIOD_STATE_PENDING);
    CHECK_OK(api->cancel(t, a));
    CHECK_EQ(api->await(t, a, NULL), -ECANCELED);
    release_all(t, api, c, 2);
    return 0;
}
ASYNCIO_CASE(tasks_test_wait_first_exception) {
    static struct job jb = {.delay = -1, .kind = "ZeroDivisionError"};
    return wait_first_exception(t, api, &jb);
}
ASYNCIO_CASE(tasks_test_wait_first_exception_in_wait) {
    static struct job jb = {.delay = 0.01, .kind = "ZeroDivisionError"};
    return wait_first_exception(t, api, &jb);
}

/* asyncio.wait(FIRST_EXCEPTION): a cancelled child is not an exception
 * (tasks._wait's _on_completion: `not f.cancelled() and f.exception()`),
 * so the wait goes on until the other child ends. */
ASYNCIO_CASE(tasks_test_wait_first_exception_not_on_cancel) {
    static struct job ja = {.delay = 10}, jb = {.delay = 0.05, .value = 1};
    aiod_child *c[2];
    c[0] = asyncio_spawn(t, api, asyncio_h_job, &ja);
    c[1] = asyncio_spawn(t, api, asyncio_h_job, &jb);
    CHECK(c[0] && c[1]);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->cancel_msg(t, c[0], NULL), 1);
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_FIRST_EXCEPTION), 2);
    CHECK_EQ(api->child_state(c[0]), AIOD_STATE_CANCELLED);
    CHECK_EQ(api->child_state(c[1]), AIOD_STATE_DONE);
    release_all(t, api, c, 2);
    return 0;
}

static int quick_ran;
static int quick(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t;
    (void)api;
    (void)arg;
    (void)ret;
    quick_ran = 1;
    return 0;
}

/* asyncio.wait(timeout=0) awaits its waiter all the same: a task created
 * just before runs first, and is counted done. */
ASYNCIO_CASE(tasks_test_wait_timeout_0_yields_once) {
    quick_ran = 0;
    aiod_child *c = asyncio_spawn(t, api, quick, NULL);
    CHECK(c);
    CHECK_EQ(api->wait(t, &c, 1, 0, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(quick_ran, 1);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_wait_with_exception */
ASYNCIO_CASE(tasks_test_wait_with_exception) {
    NEED(child_error);
    static struct job ja = {.delay = 0.1}, jb = {.delay = 0.15, .kind = "ZeroDivisionError"};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    aiod_child *b = asyncio_spawn(t, api, asyncio_h_job, &jb);
    CHECK(a && b);
    aiod_child *c[2] = {b, a};
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    int errors = 0;
    for (int i = 0; i < 2; i++) {
        const char *kind = NULL, *msg = NULL;
        int r = api->child_error(c[i], &kind, &msg);
        CHECK(r == 0 || r == 1);
        errors += r;
    }
    CHECK_EQ(errors, 1);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_wait_with_timeout */
ASYNCIO_CASE(tasks_test_wait_with_timeout) {
    static struct job ja = {.delay = 0.1}, jb = {.delay = 0.15};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    aiod_child *b = asyncio_spawn(t, api, asyncio_h_job, &jb);
    CHECK(a && b);
    aiod_child *c[2] = {b, a};
    double t0 = api->loop_time();
    CHECK_EQ(api->wait(t, c, 2, 0.11, AIOD_ALL_COMPLETED), 1);
    CHECK(api->loop_time() - t0 >= 0.1);
    CHECK(api->loop_time() - t0 < 0.15);
    CHECK_EQ(api->child_state(a), AIOD_STATE_DONE);
    CHECK(api->child_state(b) == AIOD_STATE_RUNNING);
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    release_all(t, api, c, 2);
    return 0;
}

/* Sets the int `arg` points to, when it runs. */
static int h_mark(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t;
    *(int *)arg = 1;
    *ret = api->value_int(0);
    return 0;
}

/* tasks._wait always awaits its waiter, and gather's outer future is done
 * through call_soon'd callbacks: with every child ended already, a task
 * made just before still runs before wait or gather returns, and a
 * cancellation pending for the caller is delivered there. aiod returned at
 * once, and the cancellation came at the next await. */
ASYNCIO_CASE(tasks_test_wait_and_gather_on_ended_children_still_yield) {
    static struct job ja = {.delay = -1, .value = 1};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    CHECK(a);
    CHECK_EQ(api->wait(t, &a, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    static int ran;
    ran = 0;
    aiod_child *m = asyncio_spawn(t, api, h_mark, &ran);
    CHECK(m);
    CHECK_EQ(api->wait(t, &a, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(ran, 1);
    api->child_release(t, m);
    ran = 0;
    m = asyncio_spawn(t, api, h_mark, &ran);
    CHECK(m);
    aiod_value *list = NULL;
    CHECK_OK(api->gather(t, &a, 1, 0, &list));
    api->value_free(list);
    CHECK_EQ(ran, 1);
    api->child_release(t, m);

    CHECK_OK(api->cancel_self(t, NULL));
    CHECK_EQ(api->wait(t, &a, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), -ECANCELED);
    CHECK_EQ(api->uncancel(t), 0);
    CHECK_OK(api->cancel_self(t, NULL));
    list = NULL;
    CHECK_EQ(api->gather(t, &a, 1, 0, &list), -ECANCELED);
    CHECK_EQ(api->uncancel(t), 0);
    api->child_release(t, a);
    return 0;
}

/* ---- as_completed */
/* BaseTaskTests.test_as_completed: a and b (0.01 s) before c (0.15 s). */
ASYNCIO_CASE(tasks_test_as_completed) {
    static struct job ja = {.delay = 0.01, .value = 'a'}, jb = {.delay = 0.01, .value = 'b'},
                      jc = {.delay = 0.15, .value = 'c'};
    aiod_child *c[3] = {asyncio_spawn(t, api, asyncio_h_job, &jb),
                        asyncio_spawn(t, api, asyncio_h_job, &jc),
                        asyncio_spawn(t, api, asyncio_h_job, &ja)};
    CHECK(c[0] && c[1] && c[2]);
    static unsigned char seen[3];
    memset(seen, 0, sizeof(seen));
    int64_t got[3];
    for (int i = 0; i < 3; i++) {
        size_t idx = 99;
        CHECK_OK(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx));
        CHECK(idx < 3);
        got[i] = asyncio_child_int(t, api, c[idx]);
    }
    size_t idx = 0;
    CHECK_EQ(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx), -ENOENT);
    CHECK((got[0] == 'a' && got[1] == 'b') || (got[0] == 'b' && got[1] == 'a'));
    CHECK_EQ(got[2], 'c');
    release_all(t, api, c, 3);
    return 0;
}

/* BaseTaskTests.test_as_completed_with_timeout: the timeout (0.12 s)
 * covers the whole iteration: a (0.1 s) comes, then TimeoutError at 0.12 s
 * although b ends at 0.15 s, within 0.12 s of the second call. */
ASYNCIO_CASE(tasks_test_as_completed_with_timeout) {
    static struct job ja = {.delay = 0.1, .value = 'a'}, jb = {.delay = 0.15, .value = 'b'};
    aiod_child *c[2] = {asyncio_spawn(t, api, asyncio_h_job, &ja),
                        asyncio_spawn(t, api, asyncio_h_job, &jb)};
    CHECK(c[0] && c[1]);
    static unsigned char seen[2];
    memset(seen, 0, sizeof(seen));
    double t0 = api->loop_time();
    size_t idx = 99;
    CHECK_OK(api->as_completed(t, c, 2, seen, 0.12, &idx));
    CHECK_EQ(idx, 0);
    CHECK_EQ(asyncio_child_int(t, api, c[0]), 'a');
    CHECK_EQ(api->as_completed(t, c, 2, seen, 0.12, &idx), -ETIMEDOUT);
    double dt = api->loop_time() - t0;
    CHECK(dt >= 0.11 && dt < 0.149);
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_as_completed (its order part): results come in the
 * order the children end (CPython's queue, fed by done-callbacks), not in
 * the order they were given: here the last given ends first. aiod handed
 * out the lowest index among those already ended. */
ASYNCIO_CASE(tasks_test_as_completed_in_completion_order) {
    static struct job j3 = {.delay = 0.09, .value = 3}, j2 = {.delay = 0.06, .value = 2},
                      j1 = {.delay = 0.03, .value = 1};
    aiod_child *c[3] = {asyncio_spawn(t, api, asyncio_h_job, &j3),
                        asyncio_spawn(t, api, asyncio_h_job, &j2),
                        asyncio_spawn(t, api, asyncio_h_job, &j1)};
    CHECK(c[0] && c[1] && c[2]);
    /* All three end while this task does not look. */
    CHECK_OK(api->sleep(t, 0.2));
    static unsigned char seen[3];
    memset(seen, 0, sizeof(seen));
    int64_t got[3];
    for (int i = 0; i < 3; i++) {
        size_t idx = 99;
        CHECK_OK(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx));
        got[i] = asyncio_child_int(t, api, c[idx]);
    }
    CHECK(got[0] == 1 && got[1] == 2 && got[2] == 3);
    release_all(t, api, c, 3);
    return 0;
}

/* BaseTaskTests.test_as_completed_with_timeout, going on: once the
 * iteration's timeout has passed, every later step is a TimeoutError, also
 * for a child that ended since (CPython puts a None in the queue for each
 * child left). aiod returned that child. */
ASYNCIO_CASE(tasks_test_as_completed_after_its_timeout) {
    static struct job ja = {.delay = 0.01, .value = 'a'}, jb = {.delay = 0.15, .value = 'b'};
    aiod_child *c[2] = {asyncio_spawn(t, api, asyncio_h_job, &ja),
                        asyncio_spawn(t, api, asyncio_h_job, &jb)};
    CHECK(c[0] && c[1]);
    static unsigned char seen[2];
    memset(seen, 0, sizeof(seen));
    size_t idx = 99;
    CHECK_OK(api->as_completed(t, c, 2, seen, 0.05, &idx));
    CHECK_EQ(idx, 0);
    CHECK_EQ(api->as_completed(t, c, 2, seen, 0.05, &idx), -ETIMEDOUT);
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    CHECK_EQ(api->as_completed(t, c, 2, seen, 0.05, &idx), -ETIMEDOUT);
    release_all(t, api, c, 2);
    return 0;
}

/* BaseTaskTests.test_as_completed_duplicate_coroutines: a child given
 * twice is one step (CPython makes a set of them). */
ASYNCIO_CASE(tasks_test_as_completed_duplicates) {
    static struct job ja = {.delay = 0.01, .value = 'a'}, jb = {.delay = 0.02, .value = 'b'};
    aiod_child *a = asyncio_spawn(t, api, asyncio_h_job, &ja);
    aiod_child *b = asyncio_spawn(t, api, asyncio_h_job, &jb);
    CHECK(a && b);
    aiod_child *c[3] = {a, a, b};
    static unsigned char seen[3];
    memset(seen, 0, sizeof(seen));
    size_t idx = 99;
    CHECK_OK(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx));
    CHECK(c[idx] == a);
    CHECK_OK(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx));
    CHECK(c[idx] == b);
    CHECK_EQ(api->as_completed(t, c, 3, seen, AIOD_FOREVER, &idx), -ENOENT);
    aiod_child *both[2] = {a, b};
    release_all(t, api, both, 2);
    return 0;
}

/* BaseTaskTests.test_as_completed_with_unused_timeout */
ASYNCIO_CASE(tasks_test_as_completed_with_unused_timeout) {
    static struct job ja = {.delay = 0.01, .value = 'a'};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &ja);
    CHECK(c);
    static unsigned char seen[1];
    seen[0] = 0;
    size_t idx = 99;
    CHECK_OK(api->as_completed(t, &c, 1, seen, 1, &idx));
    CHECK_EQ(idx, 0);
    CHECK_EQ(asyncio_child_int(t, api, c), 'a');
    CHECK_EQ(api->as_completed(t, &c, 1, seen, 1, &idx), -ENOENT);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_sleep */
ASYNCIO_CASE(tasks_test_sleep) {
    double t0 = api->loop_time();
    CHECK_OK(api->sleep(t, 0.05));
    CHECK_OK(api->sleep(t, 0.05));
    CHECK(api->loop_time() - t0 >= 0.099);
    return 0;
}

/* BaseTaskTests.test_task_cancel_sleeping_task: call_later cancels a
 * sleeper; its awaiter sees CancelledError after 0.1 s. */
ASYNCIO_CASE(tasks_test_task_cancel_sleeping_task) {
    NEED(call_later);
    reset();
    static struct job j = {.delay = 5000};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    S.owner = t;
    S.target = c;
    double t0 = api->loop_time();
    CHECK_OK(api->call_later(0.1, cancel_target_cb, (void *)api, NULL));
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    double dt = api->loop_time() - t0;
    CHECK(dt >= 0.09 && dt < 5);
    CHECK_EQ(S.r1, 1);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_task_cancel_waiter_future */
ASYNCIO_CASE(tasks_test_task_cancel_waiter_future) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->cancel(t, c));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->future_state(f), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* BaseTaskTests.test_step_result_future: a task awaiting a future gets its
 * result once set. */
ASYNCIO_CASE(tasks_test_step_result_future) {
    NEED(future_new);
    aiod_future *f = NULL;
    CHECK_OK(api->future_new(t, &f));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_await_future, f);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->child_state(c), AIOD_STATE_RUNNING);
    CHECK_OK(api->future_set_result(f, api->value_string("res")));
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(api->child_state(c), AIOD_STATE_DONE);
    aiod_value *v = NULL;
    CHECK_OK(api->child_result(t, c, &v));
    CHECK_STR(api->get_string(v), "res");
    api->value_free(v);
    api->child_release(t, c);
    api->future_release(f);
    return 0;
}

/* BaseTaskTests.test_baseexception_during_cancel: a task that raises
 * another error while cancelled ends failed with it, not cancelled. */
static int raise_on_cancel(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->sleep(t, 10);
    if (r == -ECANCELED)
        return api->fail(t, "SystemExit", "raised while cancelled");
    return r;
}
ASYNCIO_CASE(tasks_test_baseexception_during_cancel) {
    aiod_child *c = asyncio_spawn(t, api, raise_on_cancel, NULL);
    CHECK(c);
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->cancel(t, c));
    CHECK(api->child_state(c) == AIOD_STATE_RUNNING);
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_FAILED);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), 1);
    CHECK_STR(kind, "SystemExit");
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_current_task: the task itself inside, nothing outside
 * a task (here: in a call_soon callback). */
static void current_task_cb(void *data) {
    const struct aiod_api *api = data;
    S.seen1[0] = api->current_task();
    S.stage = 1;
}
ASYNCIO_CASE(tasks_test_current_task) {
    NEED(current_task);
    reset();
    CHECK(api->current_task() == t);
    S.seen1[0] = t;
    CHECK_OK(api->call_soon(current_task_cb, (void *)api, NULL));
    CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(S.stage, 1);
    CHECK(S.seen1[0] == NULL);
    CHECK(api->current_task() == t);
    return 0;
}

/* BaseTaskTests.test_current_task_with_interleaving_tasks */
static int interleave1(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    S.task1 = t;
    S.seen1[0] = api->current_task();
    int r = api->future_await(t, S.f1, NULL);
    S.seen1[1] = api->current_task();
    if (r == 0)
        r = api->future_set_result(S.f2, api->value_bool(1));
    return r;
}
static int interleave2(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    S.task2 = t;
    S.seen2[0] = api->current_task();
    int r = api->future_set_result(S.f1, api->value_bool(1));
    if (r == 0)
        r = api->future_await(t, S.f2, NULL);
    S.seen2[1] = api->current_task();
    return r;
}
ASYNCIO_CASE(tasks_test_current_task_with_interleaving_tasks) {
    NEED(current_task);
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &S.f1));
    CHECK_OK(api->future_new(t, &S.f2));
    aiod_child *c[2] = {asyncio_spawn(t, api, interleave1, NULL),
                        asyncio_spawn(t, api, interleave2, NULL)};
    CHECK(c[0] && c[1]);
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    CHECK_EQ(api->child_state(c[0]), AIOD_STATE_DONE);
    CHECK_EQ(api->child_state(c[1]), AIOD_STATE_DONE);
    CHECK(S.task1 && S.task2 && S.task1 != S.task2);
    CHECK(S.seen1[0] == S.task1 && S.seen1[1] == S.task1);
    CHECK(S.seen2[0] == S.task2 && S.seen2[1] == S.task2);
    CHECK(api->current_task() == t);
    release_all(t, api, c, 2);
    api->future_release(S.f1);
    api->future_release(S.f2);
    return 0;
}

/* ---- cancellation passed through awaits */
static int proof_inner(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->future_await(t, S.waiter, NULL);
    if (r == -ECANCELED && arg) {
        S.proof += 1;
        return r;
    }
    if (r < 0)
        return r;
    if (arg)
        return api->fail(t, "AssertionError", "got past the waiter in inner()");
    S.proof += 1;
    return 0;
}
static int proof_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *inner = asyncio_spawn(t, api, proof_inner, (void *)1);
    if (!inner)
        return -ENOMEM;
    int r = api->await(t, inner, NULL);
    api->child_release(t, inner);
    if (r == -ECANCELED)
        S.proof += 100; /* expect this path */
    else
        S.proof += 10;
    return 0;
}

/* BaseTaskTests.test_yield_future_passes_cancel: cancelling outer cancels
 * inner cancels the waiter. */
ASYNCIO_CASE(tasks_test_yield_future_passes_cancel) {
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &S.waiter));
    aiod_child *f = asyncio_spawn(t, api, proof_outer, NULL);
    CHECK(f);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(api->cancel_msg(t, f, NULL), 1);
    CHECK_EQ(api->await(t, f, NULL), 0);
    CHECK_EQ(S.proof, 101);
    CHECK_EQ(api->future_state(S.waiter), AIOD_STATE_CANCELLED);
    api->child_release(t, f);
    api->future_release(S.waiter);
    return 0;
}

/* BaseTaskTests.test_yield_wait_does_not_shield_cancel: cancelling outer
 * makes wait() return early and leaves inner running. */
static int wait_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *inner = asyncio_spawn(t, api, proof_inner, NULL);
    if (!inner)
        return -ENOMEM;
    int r = api->wait(t, &inner, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED);
    api->child_release(t, inner);
    if (r < 0)
        return r;
    S.proof += 100;
    return 0;
}
ASYNCIO_CASE(tasks_test_yield_wait_does_not_shield_cancel) {
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &S.waiter));
    aiod_child *f = asyncio_spawn(t, api, wait_outer, NULL);
    CHECK(f);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(api->cancel_msg(t, f, NULL), 1);
    CHECK_EQ(api->await(t, f, NULL), -ECANCELED);
    CHECK_OK(api->future_set_result(S.waiter, NULL));
    CHECK_OK(asyncio_yield(t, api, 3));
    CHECK_EQ(S.proof, 1);
    api->child_release(t, f);
    api->future_release(S.waiter);
    return 0;
}

/* ---- shield */
/* BaseTaskTests.test_shield_result */
ASYNCIO_CASE(tasks_test_shield_result) {
    static struct job j = {.delay = -1, .value = 42};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->shield(t, c));
    CHECK_EQ(api->await(t, c, NULL), 0);
    CHECK_EQ(asyncio_child_int(t, api, c), 42);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_shield_exception */
static int await_shielded(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, arg);
    if (!c)
        return -ENOMEM;
    int r = api->shield(t, c);
    if (r == 0)
        r = api->await(t, c, ret);
    if (r == 0)
        S.proof += 100;
    if (!S.target)
        api->child_release(t, c);
    return r;
}
ASYNCIO_CASE(tasks_test_shield_exception) {
    reset();
    static struct job j = {.delay = 0, .kind = "RuntimeError"};
    aiod_child *c = asyncio_spawn(t, api, await_shielded, &j);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), 1);
    CHECK_STR(kind, "RuntimeError");
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_shield_cancel_inner: cancelling the shielded task
 * itself still cancels it. */
ASYNCIO_CASE(tasks_test_shield_cancel_inner) {
    static struct job j = {.delay = 10};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->shield(t, c));
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->cancel(t, c));
    CHECK_EQ(api->await(t, c, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_shield_effect: cancelling outer does not affect the
 * shielded inner. */
static int shield_outer(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_child *inner = asyncio_spawn(t, api, proof_inner, NULL);
    if (!inner)
        return -ENOMEM;
    int r = api->shield(t, inner);
    if (r == 0)
        r = api->await(t, inner, NULL);
    api->child_release(t, inner);
    if (r < 0)
        return r;
    S.proof += 100;
    return 0;
}
ASYNCIO_CASE(tasks_test_shield_effect) {
    NEED(future_new);
    reset();
    CHECK_OK(api->future_new(t, &S.waiter));
    aiod_child *f = asyncio_spawn(t, api, shield_outer, NULL);
    CHECK(f);
    CHECK_OK(asyncio_yield(t, api, 2));
    CHECK_EQ(api->cancel_msg(t, f, NULL), 1);
    CHECK_EQ(api->await(t, f, NULL), -ECANCELED);
    CHECK_EQ(api->future_state(S.waiter), AIOD_STATE_PENDING);
    CHECK_OK(api->future_set_result(S.waiter, NULL));
    CHECK_OK(asyncio_yield(t, api, 3));
    CHECK_EQ(S.proof, 1);
    api->child_release(t, f);
    api->future_release(S.waiter);
    return 0;
}

/* BaseTaskTests.test_cancel_gather_2: a task looping over gather(sleep,
 * return_exceptions=True) is cancelled with a message; CancelledError with
 * that message reaches its awaiter. */
static int gather_loop(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job j = {.delay = 0.05};
    for (double time = 0; time <= 1; time += 0.05) {
        aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
        if (!c)
            return -ENOMEM;
        aiod_value *list = NULL;
        int r = api->gather(t, &c, 1, 1, &list);
        api->value_free(list);
        api->child_release(t, c);
        if (r < 0)
            return r;
    }
    return 0;
}
ASYNCIO_CASE(tasks_test_cancel_gather_2) {
    NEED(cancel_msg);
    aiod_child *qwe = asyncio_spawn(t, api, gather_loop, NULL);
    CHECK(qwe);
    CHECK_OK(api->sleep(t, 0.2));
    CHECK_EQ(api->cancel_msg(t, qwe, "my message"), 1);
    CHECK_EQ(api->await(t, qwe, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(qwe), AIOD_STATE_CANCELLED);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(qwe, &kind, &msg), -ECANCELED);
    CHECK_STR(msg, "my message");
    api->child_release(t, qwe);
    return 0;
}

/* BaseTaskTests.test_exception_traceback: exception() of a failed task
 * without awaiting it. */
ASYNCIO_CASE(tasks_test_exception_traceback) {
    NEED(child_error);
    static struct job j = {.delay = -1, .kind = "ZeroDivisionError"};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(c, &kind, &msg), -EAGAIN); /* InvalidStateError */
    CHECK_OK(api->sleep(t, 0));                          /* skip one loop iteration */
    CHECK_EQ(api->child_error(c, &kind, &msg), 1);
    CHECK_STR(kind, "ZeroDivisionError");
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_bare_create_named_task (and set_name/get_name of the
 * task itself). */
ASYNCIO_CASE(tasks_test_bare_create_named_task) {
    NEED(set_name);
    static struct job j = {.delay = -1};
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->set_name(t, c, "No-op"));
    CHECK_STR(api->get_name(t, c), "No-op");
    CHECK_OK(api->await(t, c, NULL));
    CHECK_STR(api->get_name(t, c), "No-op");
    CHECK_OK(api->set_name(t, NULL, "myself"));
    CHECK_STR(api->get_name(t, NULL), "myself");
    api->child_release(t, c);
    return 0;
}

/* BaseTaskTests.test_task_repr_autogenerated: default names "Task-<n>",
 * increasing. */
ASYNCIO_CASE(tasks_test_task_repr_autogenerated) {
    NEED(get_name);
    static struct job j = {.delay = -1};
    aiod_child *c[2] = {asyncio_spawn(t, api, asyncio_h_job, &j),
                        asyncio_spawn(t, api, asyncio_h_job, &j)};
    CHECK(c[0] && c[1]);
    const char *n1 = api->get_name(t, c[0]), *n2 = api->get_name(t, c[1]);
    CHECK(n1 && strncmp(n1, "Task-", 5) == 0 && n1[5] >= '0' && n1[5] <= '9');
    CHECK(n2 && strncmp(n2, "Task-", 5) == 0 && n2[5] >= '0' && n2[5] <= '9');
    CHECK(strcmp(n1, n2) != 0);
    CHECK(strtoull(n1 + 5, NULL, 10) < strtoull(n2 + 5, NULL, 10));
    CHECK_EQ(api->wait(t, c, 2, AIOD_FOREVER, AIOD_ALL_COMPLETED), 2);
    release_all(t, api, c, 2);
    return 0;
}

/* A handled exception is gone in Python: a task that awaited a failed
 * child, went on, and then ended in a TimeoutError fails with that
 * TimeoutError. aiod kept the child's error as the task's and reported the
 * handled ValueError. */
static struct job job_value_error = {.delay = -1, .kind = "ValueError"};
static int h_handled_then_timeout(aiod_task *t, const struct aiod_api *api, void *arg,
                                  aiod_value **ret) {
    (void)arg, (void)ret;
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &job_value_error);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -EIO);
    api->child_release(t, c);
    aiod_timeout *tm = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &tm));
    return api->timeout_exit(t, tm, api->sleep(t, 1));
}
static int h_handled_then_reraised(aiod_task *t, const struct aiod_api *api, void *arg,
                                   aiod_value **ret) {
    (void)arg, (void)ret;
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &job_value_error);
    CHECK(c);
    int r = api->await(t, c, NULL);
    api->child_release(t, c);
    return r; /* re-raised: the child's ValueError */
}
ASYNCIO_CASE(tasks_test_handled_child_error_is_not_the_tasks) {
    aiod_child *c = asyncio_spawn(t, api, h_handled_then_timeout, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -EIO);
    const char *k = NULL, *m = NULL;
    CHECK_EQ(api->child_error(c, &k, &m), 1);
    CHECK_STR(k, "TimeoutError");
    api->child_release(t, c);
    c = asyncio_spawn(t, api, h_handled_then_reraised, NULL);
    CHECK(c);
    CHECK_EQ(api->await(t, c, NULL), -EIO);
    CHECK_EQ(api->child_error(c, &k, &m), 1);
    CHECK_STR(k, "ValueError");
    api->child_release(t, c);
    return 0;
}

/* as_completed's queue is fed by the children's done-callbacks, in the
 * order they end (tasks.py _on_completion): a child that ends at once
 * comes before one that yields twice first, even when both end within the
 * same millisecond. aiod ordered by the end's coarse wall-clock time and
 * took the lower index on a tie. */
static int h_yield_twice_then(aiod_task *t, const struct aiod_api *api, void *arg,
                              aiod_value **ret) {
    int r = asyncio_yield(t, api, 2);
    if (r < 0)
        return r;
    *ret = api->value_int((int64_t)(intptr_t)arg);
    return 0;
}
static int h_return_at_once(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t;
    *ret = api->value_int((int64_t)(intptr_t)arg);
    return 0;
}
ASYNCIO_CASE(tasks_test_as_completed_ends_within_one_tick) {
    for (int i = 0; i < 20; i++) {
        aiod_child *c[2] = {asyncio_spawn(t, api, h_yield_twice_then, (void *)0),
                            asyncio_spawn(t, api, h_return_at_once, (void *)1)};
        CHECK(c[0] && c[1]);
        unsigned char seen[2] = {0, 0};
        size_t first = 9, second = 9;
        CHECK_OK(api->as_completed(t, c, 2, seen, AIOD_FOREVER, &first));
        CHECK_OK(api->as_completed(t, c, 2, seen, AIOD_FOREVER, &second));
        release_all(t, api, c, 2);
        CHECK_EQ(first, 1);
        CHECK_EQ(second, 0);
    }
    return 0;
}

/* asyncio.sleep(delay) with delay <= 0 yields once (tasks.py sleep: `if
 * delay <= 0: await __sleep0()`), so sleep(deadline - loop_time()) works
 * once the deadline passed. aiod refused a negative delay (-EINVAL). */
ASYNCIO_CASE(tasks_test_sleep_negative_yields) {
    static int ran;
    ran = 0;
    aiod_child *m = asyncio_spawn(t, api, h_mark, &ran);
    CHECK(m);
    CHECK_OK(api->sleep(t, -0.001));
    CHECK_EQ(ran, 1);
    CHECK_EQ(api->sleep(t, NAN), -EINVAL);
    CHECK_OK(api->await(t, m, NULL));
    api->child_release(t, m);
    return 0;
}

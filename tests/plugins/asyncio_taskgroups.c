/*
 * Cases mirroring CPython's Lib/test/test_asyncio/test_taskgroups.py
 * (3.12/3.13) on group_new/group_add/group_wait. The `async with` block is
 * the code between group_new and group_wait; how it ended is group_wait's
 * status (-EIO with the pending error for a raised exception). The
 * ExceptionGroup's members come back as group_wait's error list.
 */
#include <stdint.h>
#include <string.h>

#include "asyncio_common.h"

static struct {
    int num, t2_cancel, runner_cancel, r, kinds_ok, n_errors;
    uint32_t state1, state2, cancelling_after, cancelling_inner;
    char kinds[8][32];
    const char *name_seen;
    char name_buf[64];
} TG;

static void reset(void) {
    memset(&TG, 0, sizeof(TG));
}

/* Keeps the kinds of group_wait's error list in TG.kinds; frees it. */
static void keep_kinds(const struct aiod_api *api, aiod_value *errors) {
    size_t n = errors ? api->length(errors) : 0;
    TG.n_errors = (int)n;
    for (size_t i = 0; i < n && i < 8; i++) {
        const aiod_value *e = api->map_get(api->list_get(errors, i), "error");
        const char *k = e ? api->get_string(e) : NULL;
        strncpy(TG.kinds[i], k ? k : "(none)", sizeof(TG.kinds[i]) - 1);
    }
    api->value_free(errors);
}
/* Every kept kind is one of `a` or `b`, and each of them occurs. */
static int kinds_are(const char *a, const char *b) {
    int seen_a = 0, seen_b = b == NULL;
    for (int i = 0; i < TG.n_errors && i < 8; i++) {
        if (strcmp(TG.kinds[i], a) == 0)
            seen_a = 1;
        else if (b && strcmp(TG.kinds[i], b) == 0)
            seen_b = 1;
        else
            return 0;
    }
    return TG.n_errors > 0 && seen_a && seen_b;
}

/* Releases a child handle that may be NULL. */
static void drop(aiod_task *t, const struct aiod_api *api, aiod_child *c) {
    if (c)
        api->child_release(t, c);
}

/* Spawns fn(arg) and adds it to g; NULL on failure. */
static aiod_child *tg_create(aiod_task *t, const struct aiod_api *api, aiod_group *g,
                             int (*fn)(aiod_task *, const struct aiod_api *, void *, aiod_value **),
                             void *arg) {
    aiod_child *c = asyncio_spawn(t, api, fn, arg);
    if (c && api->group_add(t, g, c) < 0) {
        api->child_release(t, c);
        return NULL;
    }
    return c;
}

static struct job foo1_42 = {.delay = 0.1, .value = 42}, foo2_11 = {.delay = 0.2, .value = 11};

/* TestTaskGroup.test_taskgroup_01: the group waits for its children. */
ASYNCIO_CASE(tg_test_taskgroup_01) {
    NEED(group_new);
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *t1 = tg_create(t, api, g, asyncio_h_job, &foo1_42);
    aiod_child *t2 = tg_create(t, api, g, asyncio_h_job, &foo2_11);
    CHECK(t1 && t2);
    CHECK_OK(api->group_wait(t, g, 0, NULL));
    CHECK_EQ(asyncio_child_int(t, api, t1), 42);
    CHECK_EQ(asyncio_child_int(t, api, t2), 11);
    api->child_release(t, t1);
    api->child_release(t, t2);
    return 0;
}

/* TestTaskGroup.test_taskgroup_02: a child added after an await. */
ASYNCIO_CASE(tg_test_taskgroup_02) {
    NEED(group_new);
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *t1 = tg_create(t, api, g, asyncio_h_job, &foo1_42);
    CHECK(t1);
    CHECK_OK(api->sleep(t, 0.15));
    aiod_child *t2 = tg_create(t, api, g, asyncio_h_job, &foo2_11);
    CHECK(t2);
    CHECK_OK(api->group_wait(t, g, 0, NULL));
    CHECK_EQ(asyncio_child_int(t, api, t1), 42);
    CHECK_EQ(asyncio_child_int(t, api, t2), 11);
    api->child_release(t, t1);
    api->child_release(t, t2);
    return 0;
}

/* TestTaskGroup.test_taskgroup_03: a child cancelled explicitly is no
 * error of the group. */
ASYNCIO_CASE(tg_test_taskgroup_03) {
    NEED(group_new);
    static struct job foo1 = {.delay = 1, .value = 42};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *t1 = tg_create(t, api, g, asyncio_h_job, &foo1);
    CHECK(t1);
    CHECK_OK(api->sleep(t, 0.15));
    CHECK_OK(api->cancel(t, t1));
    aiod_child *t2 = tg_create(t, api, g, asyncio_h_job, &foo2_11);
    CHECK(t2);
    CHECK_OK(api->group_wait(t, g, 0, NULL));
    CHECK_EQ(api->child_state(t1), AIOD_STATE_CANCELLED);
    CHECK_EQ(asyncio_child_int(t, api, t2), 11);
    api->child_release(t, t1);
    api->child_release(t, t2);
    return 0;
}

static struct job crash_01 = {.delay = 0.1, .kind = "ZeroDivisionError"};
/* foo2 of test_taskgroup_04: sleeps `delay`, notes its cancel. */
static int foo2_notes_cancel(aiod_task *t, const struct aiod_api *api, void *arg,
                             aiod_value **ret) {
    int r = api->sleep(t, *(double *)arg);
    if (r == -ECANCELED) {
        TG.t2_cancel = 1;
        return r;
    }
    if (r < 0)
        return r;
    TG.num += 1;
    return 0;
}

/* runner of test_taskgroup_04 (arg NULL) and
 * test_cancel_children_on_child_error (arg set: 3 crashing children and a
 * body that sleeps 10 s). */
static int runner_04(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static double long_sleep = 1;
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    for (int i = 0; i < (arg ? 3 : 1); i++) {
        aiod_child *c = tg_create(t, api, g, asyncio_h_job, &crash_01);
        drop(t, api, c);
    }
    aiod_child *t2 = tg_create(t, api, g, foo2_notes_cancel, &long_sleep);
    int status = 0;
    if (arg) {
        status = api->sleep(t, 10);
        if (status == -ECANCELED)
            TG.runner_cancel = 1;
    }
    aiod_value *errors = NULL;
    r = api->group_wait(t, g, status, &errors);
    TG.r = r;
    keep_kinds(api, errors);
    if (t2) {
        TG.state2 = api->child_state(t2);
        api->child_release(t, t2);
    }
    if (r < 0)
        return r;
    TG.num += 10;
    return 0;
}

/* TestTaskGroup.test_taskgroup_04 */
ASYNCIO_CASE(tg_test_taskgroup_04) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_04, NULL);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(r, &kind, &msg), 1);
    CHECK_STR(kind, "ExceptionGroup");
    CHECK(kinds_are("ZeroDivisionError", NULL));
    CHECK_EQ(TG.num, 0);
    CHECK_EQ(TG.t2_cancel, 1);
    CHECK_EQ(TG.state2, AIOD_STATE_CANCELLED);
    api->child_release(t, r);
    return 0;
}

/* TestTaskGroup.test_cancel_children_on_child_error: the failing children
 * cancel the others and the body; the errors come back together. */
ASYNCIO_CASE(tg_test_cancel_children_on_child_error) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_04, (void *)1);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(r, &kind, &msg), 1);
    CHECK_STR(kind, "ExceptionGroup");
    CHECK(kinds_are("ZeroDivisionError", NULL));
    CHECK_EQ(TG.num, 0);
    CHECK_EQ(TG.t2_cancel, 1);
    CHECK_EQ(TG.runner_cancel, 1);
    api->child_release(t, r);
    return 0;
}

/* foo of test_cancellation: counts its cancel in TG.num. */
static int counts_cancel(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    int r = api->sleep(t, 5);
    if (r == -ECANCELED)
        TG.num += 1;
    return r;
}
/* runner: 5 counting children; arg & 1: the body sleeps 10 s (+10 on its
 * cancel); arg & 2: children crash after 0.5 s instead. */
static int runner_5(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job crash_05 = {.delay = 0.5, .kind = "ZeroDivisionError"};
    uintptr_t mode = (uintptr_t)arg;
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    for (int i = 0; i < 5; i++) {
        aiod_child *c = mode & 2 ? tg_create(t, api, g, asyncio_h_job, &crash_05)
                                 : tg_create(t, api, g, counts_cancel, NULL);
        drop(t, api, c);
    }
    int status = 0;
    if (mode & 1) {
        status = api->sleep(t, 10);
        if (status == -ECANCELED)
            TG.num += 10;
    }
    r = api->group_wait(t, g, status, NULL);
    TG.r = r;
    return r;
}
static int cancel_runner(aiod_task *t, const struct aiod_api *api,
                         int (*fn)(aiod_task *, const struct aiod_api *, void *, aiod_value **),
                         uintptr_t mode, double after) {
    aiod_child *r = asyncio_spawn(t, api, fn, (void *)mode);
    CHECK(r);
    CHECK_OK(api->sleep(t, after));
    CHECK(api->child_state(r) == AIOD_STATE_RUNNING);
    CHECK_OK(api->cancel(t, r));
    CHECK_EQ(api->await(t, r, NULL), -ECANCELED);
    CHECK_EQ(api->child_state(r), AIOD_STATE_CANCELLED);
    api->child_release(t, r);
    return 0;
}

/* TestTaskGroup.test_cancellation: cancelling the task in the group's end
 * cancels every child. */
ASYNCIO_CASE(tg_test_cancellation) {
    NEED(group_new);
    reset();
    int r = cancel_runner(t, api, runner_5, 0, 0.1);
    if (r < 0)
        return r;
    CHECK_EQ(TG.num, 5);
    return 0;
}

/* TestTaskGroup.test_taskgroup_07: the body's await is cancelled too. */
ASYNCIO_CASE(tg_test_taskgroup_07) {
    NEED(group_new);
    reset();
    int r = cancel_runner(t, api, runner_5, 1, 0.1);
    if (r < 0)
        return r;
    CHECK_EQ(TG.num, 15);
    return 0;
}

/* TestTaskGroup.test_cancellation_in_body (the children crash after 0.5 s
 * here rather than with the 0.1 s cancel, so the outcome does not race). */
ASYNCIO_CASE(tg_test_cancellation_in_body) {
    NEED(group_new);
    reset();
    return cancel_runner(t, api, runner_5, 3, 0.1);
}

/* runner of test_taskgroup_09/10: two long children, then the body raises
 * ZeroDivisionError (after 0.1 s with arg set). */
static int runner_body_raises(aiod_task *t, const struct aiod_api *api, void *arg,
                              aiod_value **ret) {
    static struct job foo1 = {.delay = 1, .value = 42}, foo2 = {.delay = 2, .value = 11};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    aiod_child *t1 = tg_create(t, api, g, asyncio_h_job, &foo1);
    aiod_child *t2 = tg_create(t, api, g, asyncio_h_job, &foo2);
    int status = arg ? api->sleep(t, 0.1) : 0;
    if (status == 0)
        status = api->fail(t, "ZeroDivisionError", "division by zero");
    aiod_value *errors = NULL;
    r = api->group_wait(t, g, status, &errors);
    keep_kinds(api, errors);
    TG.state1 = t1 ? api->child_state(t1) : 0;
    TG.state2 = t2 ? api->child_state(t2) : 0;
    drop(t, api, t1);
    drop(t, api, t2);
    return r;
}
static int body_raises(aiod_task *t, const struct aiod_api *api, void *arg) {
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_body_raises, arg);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(r, &kind, &msg), 1);
    CHECK_STR(kind, "ExceptionGroup");
    CHECK(kinds_are("ZeroDivisionError", NULL));
    CHECK_EQ(TG.state1, AIOD_STATE_CANCELLED);
    CHECK_EQ(TG.state2, AIOD_STATE_CANCELLED);
    api->child_release(t, r);
    return 0;
}
/* TestTaskGroup.test_taskgroup_09: the body's error joins the group's. */
ASYNCIO_CASE(tg_test_taskgroup_09) {
    NEED(group_new);
    return body_raises(t, api, (void *)1);
}
/* TestTaskGroup.test_taskgroup_10 */
ASYNCIO_CASE(tg_test_taskgroup_10) {
    NEED(group_new);
    return body_raises(t, api, NULL);
}

/* runner of test_taskgroup_11/12: an outer group (with a 10 s child for 12)
 * around an inner one with 5 crashing children and a 10 s body. */
static int runner_nested(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job crash_05 = {.delay = 0.5, .kind = "ZeroDivisionError"},
                      sleep10 = {.delay = 10};
    aiod_group *g1 = NULL, *g2 = NULL;
    int r = api->group_new(t, &g1);
    if (r < 0)
        return r;
    if (arg) {
        drop(t, api, tg_create(t, api, g1, asyncio_h_job, &sleep10));
    }
    r = api->group_new(t, &g2);
    if (r < 0)
        return r;
    for (int i = 0; i < 5; i++) {
        drop(t, api, tg_create(t, api, g2, asyncio_h_job, &crash_05));
    }
    r = api->group_wait(t, g2, api->sleep(t, 10), NULL);
    return api->group_wait(t, g1, r, NULL);
}
/* TestTaskGroup.test_taskgroup_11 (children crash after 0.5 s, see
 * test_cancellation_in_body) */
ASYNCIO_CASE(tg_test_taskgroup_11) {
    NEED(group_new);
    return cancel_runner(t, api, runner_nested, 0, 0.1);
}
/* TestTaskGroup.test_taskgroup_12 */
ASYNCIO_CASE(tg_test_taskgroup_12) {
    NEED(group_new);
    return cancel_runner(t, api, runner_nested, 1, 0.1);
}

/* runner of test_taskgroup_13/14: g1 with crash_after(a), around g2 with
 * crash_after(b). */
static int runner_13(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job fast = {.delay = 0.1, .kind = "ValueError"},
                      slow = {.delay = 10, .kind = "ValueError"};
    int outer_fast = arg == NULL;
    aiod_group *g1 = NULL, *g2 = NULL;
    int r = api->group_new(t, &g1);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g1, asyncio_h_job, outer_fast ? &fast : &slow));
    r = api->group_new(t, &g2);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g2, asyncio_h_job, outer_fast ? &slow : &fast));
    aiod_value *errors = NULL;
    r = api->group_wait(t, g2, 0, &errors);
    TG.r = r;
    if (errors) {
        const aiod_value *e = api->map_get(api->list_get(errors, 0), "error");
        TG.kinds_ok = api->length(errors) == 1 && e && api->get_string(e) &&
                      strcmp(api->get_string(e), "ValueError") == 0;
    }
    api->value_free(errors);
    errors = NULL;
    r = api->group_wait(t, g1, r, &errors);
    keep_kinds(api, errors);
    return r;
}
/* TestTaskGroup.test_taskgroup_13 */
ASYNCIO_CASE(tg_test_taskgroup_13) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_13, NULL);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    CHECK_EQ(TG.r, -ECANCELED);
    CHECK(kinds_are("ValueError", NULL));
    api->child_release(t, r);
    return 0;
}
/* TestTaskGroup.test_taskgroup_14: the inner group's ExceptionGroup is the
 * outer group's one error. */
ASYNCIO_CASE(tg_test_taskgroup_14) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_13, (void *)1);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    CHECK_EQ(TG.r, -EIO);
    CHECK_EQ(TG.kinds_ok, 1);
    CHECK(kinds_are("ExceptionGroup", NULL));
    CHECK_EQ(TG.n_errors, 1);
    api->child_release(t, r);
    return 0;
}

/* runner of test_taskgroup_15: the body, cancelled, sleeps 0.5 s before
 * re-raising; meanwhile the child crashes. */
static int runner_15(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job crash_03 = {.delay = 0.3, .kind = "ZeroDivisionError"};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &crash_03));
    int status = api->sleep(t, 10);
    if (status == -ECANCELED) {
        int r2 = api->sleep(t, 0.5);
        TG.runner_cancel = r2 == 0 ? 1 : 2;
    }
    aiod_value *errors = NULL;
    r = api->group_wait(t, g, status, &errors);
    keep_kinds(api, errors);
    return r;
}
/* TestTaskGroup.test_taskgroup_15 (3.12+: the child's error has priority
 * over the propagated cancellation). */
ASYNCIO_CASE(tg_test_taskgroup_15) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_15, NULL);
    CHECK(r);
    CHECK_OK(api->sleep(t, 0.1));
    CHECK(api->child_state(r) == AIOD_STATE_RUNNING);
    CHECK_OK(api->cancel(t, r));
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(r, &kind, &msg), 1);
    CHECK_STR(kind, "ExceptionGroup");
    CHECK(kinds_are("ZeroDivisionError", NULL));
    api->child_release(t, r);
    return 0;
}

/* runner of test_taskgroup_17/18: an empty group whose body sleeps 10 s;
 * on cancel +10, and with arg set raise MyExc instead. */
static int runner_17(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    int status = api->sleep(t, 10);
    if (status == -ECANCELED) {
        TG.num += 10;
        if (arg)
            status = api->fail(t, "MyExc", "raised on cancel");
    }
    aiod_value *errors = NULL;
    r = api->group_wait(t, g, status, &errors);
    keep_kinds(api, errors);
    return r;
}
/* TestTaskGroup.test_taskgroup_17 */
ASYNCIO_CASE(tg_test_taskgroup_17) {
    NEED(group_new);
    reset();
    int r = cancel_runner(t, api, runner_17, 0, 0.1);
    if (r < 0)
        return r;
    CHECK_EQ(TG.num, 10);
    return 0;
}
/* TestTaskGroup.test_taskgroup_18 */
ASYNCIO_CASE(tg_test_taskgroup_18) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_17, (void *)1);
    CHECK(r);
    CHECK_OK(api->sleep(t, 0.1));
    CHECK(api->child_state(r) == AIOD_STATE_RUNNING);
    CHECK_OK(api->cancel(t, r));
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    const char *kind = NULL, *msg = NULL;
    CHECK_EQ(api->child_error(r, &kind, &msg), 1);
    CHECK_STR(kind, "ExceptionGroup");
    CHECK(kinds_are("MyExc", NULL));
    CHECK_EQ(TG.num, 10);
    api->child_release(t, r);
    return 0;
}

/* TestTaskGroup.test_taskgroup_19: the body's error raised while the group
 * cancels it joins the child's error. */
static int runner_19(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job crash = {.delay = 0.1, .kind = "ZeroDivisionError"};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &crash));
    api->sleep(t, 10);
    int status = api->fail(t, "MyExc", "raised in finally"); /* nested()'s finally */
    aiod_value *errors = NULL;
    r = api->group_wait(t, g, status, &errors);
    keep_kinds(api, errors);
    return r;
}
ASYNCIO_CASE(tg_test_taskgroup_19) {
    NEED(group_new);
    reset();
    aiod_child *r = asyncio_spawn(t, api, runner_19, NULL);
    CHECK(r);
    CHECK_EQ(api->await(t, r, NULL), -EIO);
    CHECK(kinds_are("MyExc", "ZeroDivisionError"));
    api->child_release(t, r);
    return 0;
}

/* TestTaskGroup.test_taskgroup_22: cancelled while its group waits. */
static int runner_22(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    static struct job foo1 = {.delay = 1, .value = 42}, foo2 = {.delay = 2, .value = 11};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &foo1));
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &foo2));
    return api->group_wait(t, g, 0, NULL);
}
ASYNCIO_CASE(tg_test_taskgroup_22) {
    NEED(group_new);
    return cancel_runner(t, api, runner_22, 0, 0.05);
}

/* TestTaskGroup.test_taskgroup_task_name */
ASYNCIO_CASE(tg_test_taskgroup_task_name) {
    NEED(group_new);
    NEED(set_name);
    static struct job j = {.delay = 0};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *c = tg_create(t, api, g, asyncio_h_job, &j);
    CHECK(c);
    CHECK_OK(api->set_name(t, c, "yolo"));
    CHECK_STR(api->get_name(t, c), "yolo");
    CHECK_OK(api->group_wait(t, g, 0, NULL));
    api->child_release(t, c);
    return 0;
}

/* TestTaskGroup.test_taskgroup_no_create_task_after_failure: once a child
 * failed, adding to the group is a RuntimeError (here from the body, whose
 * await the failure cancelled; the new child is cancelled). */
ASYNCIO_CASE(tg_test_taskgroup_no_create_task_after_failure) {
    NEED(group_new);
    static struct job crash = {.delay = 0.001, .kind = "ZeroDivisionError"}, late = {.delay = 0};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &crash));
    int status = api->sleep(t, 1);
    CHECK_EQ(status, -ECANCELED);
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &late);
    CHECK(c);
    CHECK_EQ(api->group_add(t, g, c), -EINVAL);
    aiod_value *errors = NULL;
    CHECK_EQ(api->group_wait(t, g, status, &errors), -EIO);
    reset();
    keep_kinds(api, errors);
    CHECK(kinds_are("ZeroDivisionError", NULL));
    CHECK_EQ(api->wait(t, &c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    api->child_release(t, c);
    return 0;
}

/* TestTaskGroup.test_taskgroup_finished: a group that is ending takes no
 * new task. In C a finished group is freed by group_wait, so the add comes
 * from a callback while group_wait waits, after a child failed. */
static struct {
    aiod_task *owner;
    aiod_group *g;
    aiod_child *c;
    int r_spawn, r_add;
    const struct aiod_api *api;
} FIN;
static void add_late(void *data) {
    static struct job late = {.delay = 0};
    const struct aiod_api *api = FIN.api;
    FIN.r_spawn = api->spawn_call(FIN.owner, asyncio_h_job, &late, &FIN.c);
    FIN.r_add = FIN.r_spawn < 0 ? FIN.r_spawn : api->group_add(FIN.owner, FIN.g, FIN.c);
}
/* Cancelled, it cleans up for 0.2 s before it ends cancelled. */
static int slow_cleanup(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg;
    (void)ret;
    int r = api->sleep(t, 10);
    if (r == -ECANCELED)
        api->sleep(t, 0.2);
    return r;
}
ASYNCIO_CASE(tg_test_taskgroup_finished) {
    NEED(group_new);
    NEED(call_later);
    static struct job crash = {.delay = 0, .kind = "ZeroDivisionError"};
    memset(&FIN, 0, sizeof(FIN));
    FIN.api = api;
    FIN.owner = t;
    CHECK_OK(api->group_new(t, &FIN.g));
    drop(t, api, tg_create(t, api, FIN.g, asyncio_h_job, &crash));
    /* a child that takes 0.2 s to end once cancelled keeps the group
     * ending while the callback runs */
    aiod_child *slow = tg_create(t, api, FIN.g, slow_cleanup, NULL);
    CHECK(slow);
    CHECK_OK(api->call_later(0.05, add_late, NULL, NULL));
    aiod_value *errors = NULL;
    CHECK_EQ(api->group_wait(t, FIN.g, 0, &errors), -EIO);
    api->value_free(errors);
    CHECK_OK(FIN.r_spawn);
    CHECK_EQ(FIN.r_add, -EINVAL);
    CHECK_EQ(api->wait(t, &FIN.c, 1, AIOD_FOREVER, AIOD_ALL_COMPLETED), 1);
    CHECK_EQ(api->child_state(FIN.c), AIOD_STATE_CANCELLED);
    api->child_release(t, FIN.c);
    api->child_release(t, slow);
    return 0;
}

/* TestTaskGroup.test_cancelling_level_preserved: after a group that failed
 * the task's cancelling() is back to 0. */
ASYNCIO_CASE(tg_test_cancelling_level_preserved) {
    NEED(group_new);
    static struct job raise = {.delay = 0, .kind = "RuntimeError"};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &raise));
    CHECK_EQ(api->group_wait(t, g, 0, NULL), -EIO);
    CHECK_EQ(api->cancelling(t), 0);
    return 0;
}

/* TestTaskGroup.test_nested_groups_both_cancelled */
ASYNCIO_CASE(tg_test_nested_groups_both_cancelled) {
    NEED(group_new);
    static struct job rte = {.delay = 0, .kind = "RuntimeError"},
                      ve = {.delay = 0, .kind = "ValueError"};
    aiod_group *outer = NULL, *inner = NULL;
    CHECK_OK(api->group_new(t, &outer));
    CHECK_OK(api->group_new(t, &inner));
    drop(t, api, tg_create(t, api, inner, asyncio_h_job, &rte));
    drop(t, api, tg_create(t, api, outer, asyncio_h_job, &ve));
    aiod_value *errors = NULL;
    int r = api->group_wait(t, inner, 0, &errors);
    CHECK_EQ(r, -EIO); /* except* RuntimeError: pass */
    reset();
    keep_kinds(api, errors);
    CHECK(kinds_are("RuntimeError", NULL));
    CHECK_EQ(api->cancelling(t), 1);
    errors = NULL;
    CHECK_EQ(api->group_wait(t, outer, 0, &errors), -EIO);
    reset();
    keep_kinds(api, errors);
    CHECK(kinds_are("ValueError", NULL));
    CHECK_EQ(api->cancelling(t), 0);
    return 0;
}

/* TestTaskGroup.test_error_and_cancel: the group's own cancel of its task
 * is absorbed; an outside cancel that came meanwhile still counts. */
static int error_and_cancel_inner(aiod_task *t, const struct aiod_api *api, void *arg,
                                  aiod_value **ret) {
    static struct job raise = {.delay = 0, .kind = "RuntimeError"};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &raise));
    api->future_set_result(arg, NULL); /* event.set() */
    r = api->sleep(t, 1);
    if (r != -ECANCELED)
        return api->fail(t, "AssertionError", "sleep in group should have been cancelled");
    r = api->group_wait(t, g, r, NULL);
    TG.r = r;
    TG.cancelling_inner = api->cancelling(t);
    r = api->sleep(t, 1);
    if (r != -ECANCELED)
        return api->fail(t, "AssertionError", "sleep after group should have been cancelled");
    return r;
}
ASYNCIO_CASE(tg_test_error_and_cancel) {
    NEED(group_new);
    reset();
    static aiod_future *event;
    CHECK_OK(api->future_new(t, &event));
    aiod_child *c = asyncio_spawn(t, api, error_and_cancel_inner, event);
    CHECK(c);
    CHECK_OK(api->future_await(t, event, NULL));
    CHECK_EQ(api->cancel_msg(t, c, NULL), 1);
    int r = api->await(t, c, NULL);
    if (r == -EIO)
        return r; /* the inner task's failed check, as the case's error */
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(api->child_state(c), AIOD_STATE_CANCELLED);
    CHECK_EQ(TG.r, -EIO);
    CHECK_EQ(TG.cancelling_inner, 1);
    api->child_release(t, c);
    api->future_release(event);
    return 0;
}

/* TestTaskGroup.test_name: a child sees its own name. */
static int reads_own_name(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    const char *n = api->get_name(api->current_task(), NULL);
    if (n)
        strncpy(TG.name_buf, n, sizeof(TG.name_buf) - 1);
    return 0;
}
ASYNCIO_CASE(tg_test_name) {
    NEED(group_new);
    NEED(set_name);
    reset();
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *c = tg_create(t, api, g, reads_own_name, NULL);
    CHECK(c);
    CHECK_OK(api->set_name(t, c, "example name"));
    CHECK_OK(api->group_wait(t, g, 0, NULL));
    CHECK_STR(TG.name_buf, "example name");
    api->child_release(t, c);
    return 0;
}

/* TestTaskGroup.test_cancellation_does_not_leak_out_of_tg */
ASYNCIO_CASE(tg_test_cancellation_does_not_leak_out_of_tg) {
    NEED(group_new);
    static struct job raise = {.delay = -1, .kind = "MyError"};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    drop(t, api, tg_create(t, api, g, asyncio_h_job, &raise));
    CHECK_EQ(api->group_wait(t, g, 0, NULL), -EIO);
    CHECK_OK(api->sleep(t, 0));
    CHECK_OK(api->sleep(t, 0));
    return 0;
}

/* taskgroups.py __aexit__ appends the body's exception as it is: a body
 * ending in a TimeoutError gives ExceptionGroup([TimeoutError]). aiod named
 * it OSError ("Connection timed out"). */
ASYNCIO_CASE(tg_test_body_error_keeps_its_kind) {
    static struct job quick = {.delay = 0, .value = 1};
    aiod_group *g = NULL;
    CHECK_OK(api->group_new(t, &g));
    aiod_child *c = asyncio_spawn(t, api, asyncio_h_job, &quick);
    CHECK(c);
    CHECK_OK(api->group_add(t, g, c));
    aiod_timeout *tm = NULL;
    CHECK_OK(api->timeout_enter(t, 0.01, &tm));
    int r = api->timeout_exit(t, tm, api->sleep(t, 1));
    CHECK_EQ(r, -ETIMEDOUT);
    aiod_value *errs = NULL;
    CHECK_EQ(api->group_wait(t, g, r, &errs), -EIO);
    api->child_release(t, c);
    CHECK_EQ(api->length(errs), 1);
    const aiod_value *e = api->list_get(errs, 0);
    int same = strcmp(api->get_string(api->map_get(e, "error")), "TimeoutError") == 0;
    api->value_free(errs);
    CHECK(same);
    return 0;
}

/* aiod: only its own task waits for a group. Another task's group_wait
 * suspended the owner from the wrong coroutine (an assertion in the
 * scheduler killed the daemon), or freed an empty group under it. */
static aiod_group *others_group;
static int others_group_may_wait;
static int h_group_owner(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg;
    static struct job nap = {.delay = 0.05, .value = 1};
    aiod_group *g = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    aiod_child *c = tg_create(t, api, g, asyncio_h_job, &nap);
    if (!c)
        return -ENOMEM;
    others_group = g;
    while (!others_group_may_wait)
        if ((r = api->sleep(t, 0)) < 0)
            return r;
    r = api->group_wait(t, g, 0, NULL);
    api->child_release(t, c);
    if (r < 0)
        return r;
    *ret = api->value_int(9);
    return *ret ? 0 : -ENOMEM;
}

ASYNCIO_CASE(tg_wait_refused_to_another_task) {
    NEED(group_new);
    others_group = NULL;
    others_group_may_wait = 0;
    aiod_child *owner = asyncio_spawn(t, api, h_group_owner, NULL);
    CHECK(owner);
    while (!others_group)
        CHECK_OK(api->sleep(t, 0));
    CHECK_EQ(api->group_wait(t, others_group, 0, NULL), -EINVAL);
    others_group_may_wait = 1;
    CHECK_OK(api->await(t, owner, NULL));
    CHECK_EQ(asyncio_child_int(t, api, owner), 9);
    api->child_release(t, owner);
    return 0;
}

/* A C plugin can do what `async with` forbids: return inside a task group
 * it never waited for and a timeout scope it never left. The daemon closes
 * both at the return (a warning names the task): the group's unfinished
 * task is cancelled, as the group's end would have waited for it, and
 * nothing is leaked (the sanitizer builds check the scope's memory). */
static int returned_member_cancels;
static struct job returned_member = {.delay = 30, .value = 1, .cancels = &returned_member_cancels};
static int h_returns_inside(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)arg;
    aiod_group *g = NULL;
    aiod_timeout *tm = NULL;
    int r = api->group_new(t, &g);
    if (r < 0)
        return r;
    aiod_child *c = tg_create(t, api, g, asyncio_h_job, &returned_member);
    if (!c)
        return -ENOMEM;
    api->child_release(t, c);
    /* The member starts (it is asleep when this task returns). */
    if ((r = asyncio_yield(t, api, 2)) < 0)
        return r;
    if ((r = api->timeout_enter(t, 0.05, &tm)) < 0)
        return r;
    *ret = api->value_int(5);
    return *ret ? 0 : -ENOMEM;
}

ASYNCIO_CASE(tg_return_inside_group_and_scope_closes_them) {
    NEED(group_new);
    NEED(timeout_enter);
    returned_member_cancels = 0;
    aiod_child *h = asyncio_spawn(t, api, h_returns_inside, NULL);
    CHECK(h);
    CHECK_OK(api->await(t, h, NULL));
    CHECK_EQ(asyncio_child_int(t, api, h), 5);
    api->child_release(t, h);
    /* The member sees its cancellation at its next step; the scope's
     * deadline, had it been left armed, passes meanwhile. */
    for (int i = 0; i < 100 && !returned_member_cancels; i++)
        CHECK_OK(api->sleep(t, 0.001));
    CHECK_EQ(returned_member_cancels, 1);
    CHECK_OK(api->sleep(t, 0.06));
    return 0;
}

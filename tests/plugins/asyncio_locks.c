/*
 * asyncio_locks: CPython's Lib/test/test_asyncio/test_locks.py ported to the plugin API (ABI 1.4).
 * Each function is one test case, named after the CPython test it mirrors (LockTests.test_acquire
 * is lock_test_acquire) and run as a task by tests/unit/test-asyncio-locks.c, which expects it to
 * end done. A failed check ends the task failed with an AssertionError naming the CPython test and
 * the check. Helper coroutines are C functions started with spawn_call; api->sleep(t, 0) is
 * asyncio.sleep(0). Checks on asyncio internals (len(lock._waiters)) use sync_count.
 *
 * State shared with the helpers lives on the heap (struct ctx): a task's stack is saved away
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
    /* Appended to c->log when its call succeeds (0: nothing). */
    char tag;
    /* Helper-specific options (OPT_*). */
    unsigned opt;
    /* What the last primitive call returned (a barrier's index, an error). */
    int status;
    aiod_child *child;
} actor;

/* Options of the condition helpers. */
#define OPT_ACQUIRE 0x1u /* acquire before waiting */
#define OPT_RELEASE 0x2u /* release after a successful wait */

struct ctx {
    const struct aiod_api *api;
    /* The test case's own task. */
    aiod_task *t;
    /* The CPython test this case mirrors, for failure messages. */
    const char *test;
    aiod_sync *s, *s2;
    aiod_future *f;
    /* asyncio's `result` lists: one character per entry. */
    char log[128];
    size_t n_log;
    /* Test-specific counters and flags. */
    int n1, n2, n3, flag;
    actor a[MAX_ACTORS];
    size_t n_actors;
};

static ctx *ctx_new(aiod_task *t, const struct aiod_api *api, const char *test) {
    ctx *c = calloc(1, sizeof(*c));
    if (c) {
        c->api = api;
        c->t = t;
        c->test = test;
    }
    return c;
}

static void log_add(ctx *c, char tag) {
    if (tag && c->n_log + 1 < sizeof(c->log))
        c->log[c->n_log++] = tag;
}

static size_t log_count(const ctx *c, char tag) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_log; i++)
        n += c->log[i] == tag;
    return n;
}

typedef int (*co_fn)(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret);

/* asyncio.create_task(fn()): the helper starts when the case next suspends. */
static actor *spawn(ctx *c, co_fn fn, char tag, unsigned opt) {
    if (c->n_actors == MAX_ACTORS)
        return NULL;
    actor *a = &c->a[c->n_actors];
    a->c = c;
    a->tag = tag;
    a->opt = opt;
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

static bool cancelled(const actor *a) {
    return state(a) == AIOD_STATE_CANCELLED;
}

/* asyncio.gather of every helper from `from` on, bounded by `timeout` seconds: true if all
 * ended in time. */
static bool join_bounded(ctx *c, size_t from, double timeout) {
    aiod_child *ch[MAX_ACTORS];
    size_t n = 0;
    for (size_t i = from; i < c->n_actors; i++)
        if (!is_done(&c->a[i]))
            ch[n++] = c->a[i].child;
    if (n == 0)
        return true;
    return c->api->wait(c->t, ch, n, timeout, AIOD_ALL_COMPLETED) == (int)n;
}

static bool join_all_bounded(ctx *c, double timeout) {
    return join_bounded(c, 0, timeout);
}

/* The same with 10 s, so that a wrong port fails instead of hanging. */
static bool join_from(ctx *c, size_t from) {
    return join_bounded(c, from, 10.0);
}

static bool join_all(ctx *c) {
    return join_from(c, 0);
}

/* Every helper still running is cancelled and waited for, then the objects are freed. Keeps
 * `rc` (the case's outcome). */
static int finish(ctx *c, int rc) {
    const struct aiod_api *api = c->api;
    for (size_t i = 0; i < c->n_actors; i++)
        if (!is_done(&c->a[i]))
            api->cancel(c->t, c->a[i].child);
    /* After a failed check a helper may wait for a lock the case still holds: release what
     * may be held until every helper has ended (a few rounds at most). */
    for (int round = 0; round < 20 && !join_all_bounded(c, 0.5); round++) {
        if (api->sync_locked(c->s) == 1)
            api->sync_release(c->s);
        if (api->sync_locked(c->s2) == 1)
            api->sync_release(c->s2);
    }
    for (size_t i = 0; i < c->n_actors; i++)
        if (!is_done(&c->a[i]))
            return rc; /* still running: ctx stays theirs (leaked, the case failed anyway) */
    for (size_t i = 0; i < c->n_actors; i++)
        api->child_release(c->t, c->a[i].child);
    api->sync_free(c->s);
    api->sync_free(c->s2);
    api->future_release(c->f);
    free(c);
    return rc;
}

/* await task, bounded so that a wrong port fails instead of hanging (asyncio.wait_for with
 * 10 s): the child's outcome as await gives it, or -ETIMEDOUT. */
static int await_child(actor *a) {
    return a->c->api->await_timeout(a->c->t, a->child, 10.0, 1, NULL);
}

static int check_failed(ctx *c, const char *what, int line) {
    return c->api->fail(c->t, "AssertionError", "%s: check failed: %s (asyncio_locks.c:%d)",
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

#define CASE(fname)                                                                                \
    static int fname(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,      \
                     aiod_value **ret)

#define BEGIN(cpython_name)                                                                        \
    (void)args;                                                                                    \
    (void)ret;                                                                                     \
    int rc = 0;                                                                                    \
    ctx *c = ctx_new(t, api, cpython_name);                                                        \
    if (!c)                                                                                        \
        return -ENOMEM;

#define END                                                                                        \
    out:                                                                                           \
    return finish(c, rc);

/* loop.call_soon(task.cancel) */
static void cancel_cb(void *data) {
    actor *a = data;
    a->c->api->cancel(a->c->t, a->child);
}

/* loop.call_soon(lock.release) */
static void release_cb(void *data) {
    ctx *c = data;
    c->api->sync_release(c->s);
}

/* ---- helper coroutines */

/* await s.acquire(), then result.append(tag). */
static int co_acquire(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    a->status = api->sync_acquire(self, a->c->s);
    if (a->status == 0)
        log_add(a->c, a->tag);
    return a->status;
}

/* await ev.wait() (or barrier.wait()), then result.append(tag). */
static int co_wait(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    a->status = api->sync_wait(self, a->c->s);
    if (a->status >= 0)
        log_add(a->c, a->tag);
    return a->status < 0 ? a->status : 0;
}

/* await cond.acquire(); await cond.wait(); result.append(tag); cond.release() */
static int co_cond_wait(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = 0;
    if (a->opt & OPT_ACQUIRE)
        r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    a->status = r = api->sync_wait(self, a->c->s);
    if (r == 0) {
        log_add(a->c, a->tag);
        if (a->opt & OPT_RELEASE)
            api->sync_release(a->c->s);
    }
    return r;
}

/* ---- LockTests */

/* LockTests.test_acquire: waiters take the lock in FIFO order, one per release. */
CASE(lock_test_acquire) {
    BEGIN("LockTests.test_acquire");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    actor *t1 = spawn(c, co_acquire, '1', 0);
    actor *t2 = spawn(c, co_acquire, '2', 0);
    CHECK(t1 && t2);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    actor *t3 = spawn(c, co_acquire, '3', 0);
    CHECK(t3);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "12") == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "123") == 0);
    CHECK(ended_ok(t1) && ended_ok(t2) && ended_ok(t3));
    END
}

/* LockTests.test_acquire_cancel: a waiter cancelled by call_soon leaves no waiter behind. */
CASE(lock_test_acquire_cancel) {
    BEGIN("LockTests.test_acquire_cancel");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    actor *a = spawn(c, co_acquire, 0, 0);
    CHECK(a);
    CHECK(api->call_soon(cancel_cb, a, NULL) == 0);
    CHECK(await_child(a) == -ECANCELED);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

/* await lock.acquire(); await blocker (when opt is set); lock.release() */
static int co_lockit(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    if (a->opt)
        r = api->future_await(self, a->c->f, NULL);
    api->sync_release(a->c->s);
    return r;
}

/* LockTests.test_cancel_race: A holds the lock, B and C wait; B is cancelled as A releases:
 * the lock must go to C, not be lost on B's cancelled waiter. */
CASE(lock_test_cancel_race) {
    BEGIN("LockTests.test_cancel_race");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->future_new(t, &c->f) == 0);
    actor *ta = spawn(c, co_lockit, 0, 1);
    CHECK(ta);
    YIELD();
    CHECK(api->sync_locked(c->s) == 1);
    actor *tb = spawn(c, co_lockit, 0, 0);
    CHECK(tb);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    actor *tc = spawn(c, co_lockit, 0, 0);
    CHECK(tc);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    CHECK(api->future_set_result(c->f, NULL) == 0);
    api->cancel(t, tb->child);
    /* lock._waiters[0].cancelled(): B's waiter is still queued, cancelled. */
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    YIELD();
    CHECK(api->sync_locked(c->s) == 0);
    CHECK(ended_ok(ta));
    CHECK(cancelled(tb));
    CHECK(await_child(tc) == 0);
    END
}

/* call_count += 1; await lock.acquire(); lock_count += 1 */
static int co_count_acquire(aiod_task *self, const struct aiod_api *api, void *arg,
                            aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    a->c->n2++;
    int r = api->sync_acquire(self, a->c->s);
    if (r == 0)
        a->c->n1++;
    return r;
}

/* t1.cancel(); lock.release() from one callback. */
static void cancel_release_cb(void *data) {
    ctx *c = data;
    c->api->cancel(c->t, c->a[0].child);
    c->api->sync_release(c->s);
}

/* LockTests.test_cancel_release_race (bpo-32734): cancelling the first of three waiters as
 * the lock is released hands the lock to exactly one task. */
CASE(lock_test_cancel_release_race) {
    BEGIN("LockTests.test_cancel_release_race");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    actor *t1 = spawn(c, co_count_acquire, 0, 0);
    actor *t2 = spawn(c, co_count_acquire, 0, 0);
    actor *t3 = spawn(c, co_count_acquire, 0, 0);
    CHECK(t1 && t2 && t3);
    YIELD();
    CHECK(api->call_soon(cancel_release_cb, c, NULL) == 0);
    CHECK(await_child(t1) == -ECANCELED);
    CHECK(c->n1 == 1); /* lock_count */
    CHECK(c->n2 == 3); /* call_count */
    CHECK(cancelled(t1) && ended_ok(t2));
    api->cancel(t, t3->child);
    YIELD();
    CHECK(cancelled(t3));
    END
}

/* LockTests.test_finished_waiter_cancelled: a woken waiter that is cancelled does not keep
 * the next one from getting the lock. */
CASE(lock_test_finished_waiter_cancelled) {
    BEGIN("LockTests.test_finished_waiter_cancelled");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    actor *tb = spawn(c, co_acquire, 0, 0);
    CHECK(tb);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    actor *tc = spawn(c, co_acquire, 0, 0);
    CHECK(tc);
    api->cancel(t, tb->child);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(cancelled(tb));
    CHECK(await_child(tc) == 0);
    END
}

/* LockTests.test_release_not_acquired: RuntimeError is -EPERM. */
CASE(lock_test_release_not_acquired) {
    BEGIN("LockTests.test_release_not_acquired");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_release(c->s) == -EPERM);
    END
}

/* LockTests.test_release_no_waiters (and test_context_manager: acquire/release). */
CASE(lock_test_release_no_waiters) {
    BEGIN("LockTests.test_release_no_waiters");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s) == 0);
    CHECK(api->sync_locked(c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_locked(c->s) == 0);
    END
}

/* ---- EventTests */

/* EventTests.test_wait: set() wakes every waiter; a task created before set() runs first. */
CASE(event_test_wait) {
    BEGIN("EventTests.test_wait");
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    CHECK(api->sync_is_set(c->s) == 0);
    actor *t1 = spawn(c, co_wait, '1', 0);
    actor *t2 = spawn(c, co_wait, '2', 0);
    CHECK(t1 && t2);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    actor *t3 = spawn(c, co_wait, '3', 0);
    CHECK(t3);
    CHECK(api->sync_set(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "312") == 0);
    CHECK(ended_ok(t1) && ended_ok(t2) && ended_ok(t3));
    END
}

/* EventTests.test_wait_on_set */
CASE(event_test_wait_on_set) {
    BEGIN("EventTests.test_wait_on_set");
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(api->sync_wait(t, c->s) == 0);
    END
}

/* EventTests.test_wait_cancel */
CASE(event_test_wait_cancel) {
    BEGIN("EventTests.test_wait_cancel");
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_wait, 0, 0);
    CHECK(w);
    CHECK(api->call_soon(cancel_cb, w, NULL) == 0);
    CHECK(await_child(w) == -ECANCELED);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

/* EventTests.test_clear */
CASE(event_test_clear) {
    BEGIN("EventTests.test_clear");
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    CHECK(api->sync_is_set(c->s) == 0);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(api->sync_is_set(c->s) == 1);
    CHECK(api->sync_clear(c->s) == 0);
    CHECK(api->sync_is_set(c->s) == 0);
    END
}

/* EventTests.test_clear_with_waiters: a waiter woken by set() returns even if clear() follows
 * at once. */
CASE(event_test_clear_with_waiters) {
    BEGIN("EventTests.test_clear_with_waiters");
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_wait, '1', 0);
    CHECK(w);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(api->sync_clear(c->s) == 0);
    CHECK(api->sync_is_set(c->s) == 0);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(ended_ok(w));
    END
}

/* ---- ConditionTests */

/* ConditionTests.test_wait: notified waiters return one by one as the lock is released. */
CASE(condition_test_wait) {
    BEGIN("ConditionTests.test_wait");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_cond_wait, '1', OPT_ACQUIRE);
    actor *t2 = spawn(c, co_cond_wait, '2', OPT_ACQUIRE);
    actor *t3 = spawn(c, co_cond_wait, '3', OPT_ACQUIRE);
    CHECK(t1 && t2 && t3);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_locked(c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_notify(c->s, 2) == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "12") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "123") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(ended_ok(t1) && ended_ok(t2) && ended_ok(t3));
    END
}

/* ConditionTests.test_wait_cancel: a cancelled wait leaves no waiter and holds the lock. */
CASE(condition_test_wait_cancel) {
    BEGIN("ConditionTests.test_wait_cancel");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    actor *w = spawn(c, co_cond_wait, 0, 0);
    CHECK(w);
    CHECK(api->call_soon(cancel_cb, w, NULL) == 0);
    CHECK(await_child(w) == -ECANCELED);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    END
}

/* ConditionTests.test_wait_cancel_contested: notified, then cancelled while the lock is
 * contested: the wait still ends holding the lock. */
CASE(condition_test_wait_cancel_contested) {
    BEGIN("ConditionTests.test_wait_cancel_contested");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    actor *w = spawn(c, co_cond_wait, 0, 0);
    CHECK(w);
    YIELD();
    CHECK(api->sync_locked(c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_notify(c->s, 1) == 0);
    CHECK(api->call_soon(cancel_cb, w, NULL) == 0);
    CHECK(api->call_soon(release_cb, c, NULL) == 0);
    int r = await_child(w);
    CHECK(r == 0 || r == -ECANCELED);
    CHECK(api->sync_locked(c->s) == 1);
    END
}

/* async with cond: waited = True; await cond.wait() */
static int co_cond_waited(aiod_task *self, const struct aiod_api *api, void *arg,
                          aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    a->c->flag = 1;
    r = api->sync_wait(self, a->c->s);
    api->sync_release(a->c->s);
    return r;
}

/* ConditionTests.test_wait_cancel_after_notify (bpo-32841): cancelled while it takes the lock
 * back after a notify, the waiter ends cancelled once it has the lock. */
CASE(condition_test_wait_cancel_after_notify) {
    BEGIN("ConditionTests.test_wait_cancel_after_notify");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_cond_waited, 0, 0);
    CHECK(w);
    YIELD(); /* start waiting */
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    YIELD(); /* get to acquire() */
    api->cancel(t, w->child);
    YIELD(); /* activate cancellation */
    CHECK(api->sync_release(c->s) == 0);
    YIELD(); /* cancellation should occur */
    CHECK(cancelled(w));
    CHECK(c->flag == 1);
    END
}

/* ConditionTests.test_wait_unacquired */
CASE(condition_test_wait_unacquired) {
    BEGIN("ConditionTests.test_wait_unacquired");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_wait(t, c->s) == -EPERM);
    END
}

static int pred_flag(void *data) {
    return ((ctx *)data)->flag;
}

static int pred_true(void *data) {
    (void)data;
    return 1;
}

static int pred_false(void *data) {
    (void)data;
    return 0;
}

/* await cond.acquire(); if await cond.wait_for(predicate): result.append(1); cond.release() */
static int co_cond_wait_for(aiod_task *self, const struct aiod_api *api, void *arg,
                            aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    r = api->sync_wait_for(self, a->c->s, pred_flag, a->c);
    if (r == 0) {
        log_add(a->c, a->tag);
        api->sync_release(a->c->s);
    }
    return r;
}

/* ConditionTests.test_wait_for: a notify while the predicate is false does not return. */
CASE(condition_test_wait_for) {
    BEGIN("ConditionTests.test_wait_for");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_cond_wait_for, '1', 0);
    CHECK(w);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    c->flag = 1;
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(ended_ok(w));
    END
}

/* ConditionTests.test_wait_for_unacquired: a true predicate needs no lock; a false one does. */
CASE(condition_test_wait_for_unacquired) {
    BEGIN("ConditionTests.test_wait_for_unacquired");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_wait_for(t, c->s, pred_true, NULL) == 0);
    CHECK(api->sync_wait_for(t, c->s, pred_false, NULL) == -EPERM);
    END
}

/* ConditionTests.test_notify: notify(1) wakes one; notify(1) then notify(2048) the rest. */
CASE(condition_test_notify) {
    BEGIN("ConditionTests.test_notify");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_cond_wait, '1', OPT_ACQUIRE | OPT_RELEASE);
    actor *t2 = spawn(c, co_cond_wait, '2', OPT_ACQUIRE | OPT_RELEASE);
    actor *t3 = spawn(c, co_cond_wait, '3', OPT_ACQUIRE | OPT_RELEASE);
    CHECK(t1 && t2 && t3);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == 0);
    CHECK(api->sync_notify(c->s, 2048) == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "123") == 0);
    CHECK(ended_ok(t1) && ended_ok(t2) && ended_ok(t3));
    END
}

/* ConditionTests.test_notify_all */
CASE(condition_test_notify_all) {
    BEGIN("ConditionTests.test_notify_all");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_cond_wait, '1', OPT_ACQUIRE | OPT_RELEASE);
    actor *t2 = spawn(c, co_cond_wait, '2', OPT_ACQUIRE | OPT_RELEASE);
    CHECK(t1 && t2);
    YIELD();
    CHECK(strcmp(c->log, "") == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_notify(c->s, SIZE_MAX) == 0);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    CHECK(strcmp(c->log, "12") == 0);
    CHECK(ended_ok(t1) && ended_ok(t2));
    END
}

/* ConditionTests.test_notify_unacquired and test_notify_all_unacquired */
CASE(condition_test_notify_unacquired) {
    BEGIN("ConditionTests.test_notify_unacquired");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_notify(c->s, 1) == -EPERM);
    CHECK(api->sync_notify(c->s, SIZE_MAX) == -EPERM);
    END
}

/* ConditionTests.test_explicit_lock: a condition on a given lock shares its state both ways. */
CASE(condition_test_explicit_lock) {
    BEGIN("ConditionTests.test_explicit_lock");
    CHECK(api->sync_new(AIOD_SYNC_LOCK, 0, NULL, &c->s2) == 0);
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, c->s2, &c->s) == 0);
    CHECK(api->sync_locked(c->s2) == 0 && api->sync_locked(c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s2) == 1 && api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_locked(c->s2) == 0 && api->sync_locked(c->s) == 0);
    CHECK(api->sync_acquire(t, c->s2) == 0);
    CHECK(api->sync_locked(c->s2) == 1 && api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s2) == 0);
    CHECK(api->sync_locked(c->s2) == 0 && api->sync_locked(c->s) == 0);
    /* The lock outlives its condition: freeing it first is refused. */
    CHECK(api->sync_free(c->s2) == -EBUSY);
    CHECK(api->sync_free(c->s) == 0);
    c->s = NULL;
    END
}

/* ConditionTests.test_timeout_in_block: wait_for(cond.wait(), timeout) times out and the
 * block still holds the lock (0.05 s instead of 0.5 s). */
CASE(condition_test_timeout_in_block) {
    BEGIN("ConditionTests.test_timeout_in_block");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    aiod_timeout *tm = NULL;
    CHECK(api->timeout_enter(t, 0.05, &tm) == 0);
    int r = api->sync_wait(t, c->s);
    r = api->timeout_exit(t, tm, r);
    CHECK(r == -ETIMEDOUT);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    END
}

/* async with cond: await cond.wait_for(lambda: wake) must raise CancelledError; re-raise it. */
static int co_wait_for_wake(aiod_task *self, const struct aiod_api *api, void *arg,
                            aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    a->status = r = api->sync_wait_for(self, a->c->s, pred_flag, a->c);
    /* The lock is held again, also after the cancellation. */
    a->c->n1 = api->sync_locked(a->c->s);
    api->sync_release(a->c->s);
    return r;
}

/* ConditionTests.test_cancelled_error_wakeup: cancelled (with a message) while it waits for the
 * notify, the wait raises that cancellation (the same message; C has no exception instance to
 * compare). */
CASE(condition_test_cancelled_error_wakeup) {
    BEGIN("ConditionTests.test_cancelled_error_wakeup");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_wait_for_wake, 0, 0);
    CHECK(w);
    YIELD();
    CHECK(api->cancel_msg(t, w->child, "foo") == 1);
    CHECK(await_child(w) == -ECANCELED);
    CHECK(w->status == -ECANCELED);
    CHECK(c->n1 == 1);
    const char *msg = NULL;
    CHECK(api->child_error(w->child, NULL, &msg) == -ECANCELED);
    CHECK(msg && strcmp(msg, "foo") == 0);
    END
}

/* ConditionTests.test_cancelled_error_re_aquire: cancelled (with a message) while it takes the
 * lock back after the notify: the same. */
CASE(condition_test_cancelled_error_re_aquire) {
    BEGIN("ConditionTests.test_cancelled_error_re_aquire");
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *w = spawn(c, co_wait_for_wake, 0, 0);
    CHECK(w);
    YIELD();
    CHECK(api->sync_acquire(t, c->s) == 0);
    c->flag = 1;
    CHECK(api->sync_notify(c->s, 1) == 0);
    YIELD(); /* the task now tries to take the lock back: cancel it there */
    CHECK(api->cancel_msg(t, w->child, "foo") == 1);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(await_child(w) == -ECANCELED);
    CHECK(w->status == -ECANCELED);
    CHECK(c->n1 == 1);
    const char *msg = NULL;
    CHECK(api->child_error(w->child, NULL, &msg) == -ECANCELED);
    CHECK(msg && strcmp(msg, "foo") == 0);
    END
}

static int pred_state_nonzero(void *data) {
    return ((ctx *)data)->n2 != 0;
}

static int pred_state_zero(void *data) {
    return ((ctx *)data)->n2 == 0;
}

/* async with condition: while True: await condition.wait_for(lambda: state != 0);
 * if state < 0: return; state -= 1 */
static int co_consumer(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_acquire(self, c->s);
    if (r < 0)
        return r;
    for (;;) {
        r = api->sync_wait_for(self, c->s, pred_state_nonzero, c);
        if (r < 0 || c->n2 < 0)
            break;
        c->n2--;
    }
    api->sync_release(c->s);
    return r;
}

/* The body of test_cancelled_wakeup and test_cancelled_wakeup_relock: one item produced and one
 * consumer notified, then cancelled before it runs (relock: while it takes the lock back); the
 * notification must reach the other consumer. */
static int cancelled_wakeup(ctx *c, bool relock) {
    const struct aiod_api *api = c->api;
    aiod_task *t = c->t;
    int rc = 0;
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, NULL, &c->s) == 0);
    actor *c0 = spawn(c, co_consumer, 0, 0);
    actor *c1 = spawn(c, co_consumer, 0, 0);
    CHECK(c0 && c1);
    YIELD();
    CHECK(api->sync_acquire(t, c->s) == 0);
    c->n2 += 1; /* produce one item and wake up one consumer */
    CHECK(api->sync_notify(c->s, 1) == 0);
    if (relock)
        YIELD(); /* c0 wakes and waits for the lock */
    api->cancel(t, c0->child);
    /* Wait (0.01 s at most) for the item to be consumed. */
    aiod_timeout *tm = NULL;
    CHECK(api->timeout_enter(t, 0.01, &tm) == 0);
    int r = api->sync_wait_for(t, c->s, pred_state_zero, c);
    r = api->timeout_exit(t, tm, r);
    CHECK(r == 0 || r == -ETIMEDOUT);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(c->n2 == 0);
    c->n2 = -1;
    CHECK(api->sync_notify(c->s, SIZE_MAX) == 0);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(await_child(c1) == 0);
out:
    return rc;
}

/* ConditionTests.test_cancelled_wakeup (gh-112202): a consumer cancelled as it is notified
 * passes the notification on. */
CASE(condition_test_cancelled_wakeup) {
    BEGIN("ConditionTests.test_cancelled_wakeup");
    rc = cancelled_wakeup(c, false);
    if (rc < 0)
        goto out;
    END
}

/* ConditionTests.test_cancelled_wakeup_relock: the same, cancelled while it takes the lock
 * back. */
CASE(condition_test_cancelled_wakeup_relock) {
    BEGIN("ConditionTests.test_cancelled_wakeup_relock");
    rc = cancelled_wakeup(c, true);
    if (rc < 0)
        goto out;
    END
}

/* ---- SemaphoreTests */

/* SemaphoreTests.test_initial_value_zero */
CASE(semaphore_test_initial_value_zero) {
    BEGIN("SemaphoreTests.test_initial_value_zero");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 0, NULL, &c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    END
}

/* SemaphoreTests.test_semaphore and test_semaphore_value: value 1 by asyncio's default, and
 * a negative value is refused (ValueError is -EINVAL). */
CASE(semaphore_test_semaphore_value) {
    BEGIN("SemaphoreTests.test_semaphore_value");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, -1, NULL, &c->s) == -EINVAL);
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == 1);
    CHECK(api->sync_locked(c->s) == 0);
    END
}

/* SemaphoreTests.test_acquire: releases wake waiters in order; a task created before the
 * releases queues behind the woken ones. */
CASE(semaphore_test_acquire) {
    BEGIN("SemaphoreTests.test_acquire");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 3, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 0);
    actor *t1 = spawn(c, co_acquire, '1', 0);
    actor *t2 = spawn(c, co_acquire, '2', 0);
    actor *t3 = spawn(c, co_acquire, '3', 0);
    CHECK(t1 && t2 && t3);
    YIELD();
    CHECK(strcmp(c->log, "1") == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == 0);
    actor *t4 = spawn(c, co_acquire, '4', 0);
    CHECK(t4);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == 0);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == 0);
    CHECK(c->n_log == 3);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    CHECK(ended_ok(t1));
    CHECK(ended_ok(t2) + ended_ok(t3) + ended_ok(t4) == 2);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(join_all(c));
    CHECK(ended_ok(t2) && ended_ok(t3) && ended_ok(t4));
    END
}

/* SemaphoreTests.test_acquire_cancel */
CASE(semaphore_test_acquire_cancel) {
    BEGIN("SemaphoreTests.test_acquire_cancel");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    actor *a = spawn(c, co_acquire, 0, 0);
    CHECK(a);
    CHECK(api->call_soon(cancel_cb, a, NULL) == 0);
    CHECK(await_child(a) == -ECANCELED);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

/* SemaphoreTests.test_acquire_cancel_before_awoken: a release skips cancelled waiters and
 * wakes exactly one live one. */
CASE(semaphore_test_acquire_cancel_before_awoken) {
    BEGIN("SemaphoreTests.test_acquire_cancel_before_awoken");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_acquire, 0, 0);
    actor *t2 = spawn(c, co_acquire, 0, 0);
    actor *t3 = spawn(c, co_acquire, 0, 0);
    actor *t4 = spawn(c, co_acquire, 0, 0);
    CHECK(t1 && t2 && t3 && t4);
    YIELD();
    api->cancel(t, t1->child);
    api->cancel(t, t2->child);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    YIELD();
    CHECK(is_done(t3) + is_done(t4) == 1);
    CHECK(is_done(t3));
    CHECK(!is_done(t4));
    api->cancel(t, t3->child);
    api->cancel(t, t4->child);
    YIELD();
    END
}

/* SemaphoreTests.test_acquire_hang: the wake-up meant for a cancelled waiter is not lost. */
CASE(semaphore_test_acquire_hang) {
    BEGIN("SemaphoreTests.test_acquire_hang");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_acquire, 0, 0);
    actor *t2 = spawn(c, co_acquire, 0, 0);
    CHECK(t1 && t2);
    YIELD();
    api->cancel(t, t1->child);
    CHECK(api->sync_release(c->s) == 0);
    YIELD();
    YIELD();
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(is_done(t2));
    END
}

/* async with sem: await asyncio.sleep(0); then t2.cancel() */
static int co_no_hang_1(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    r = api->sleep(self, 0);
    api->sync_release(a->c->s);
    if (r == 0)
        api->cancel(a->c->t, a->c->a[1].child);
    return r;
}

/* async with sem: self.assertFalse(True) */
static int co_no_hang_2(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    api->sync_release(a->c->s);
    return api->fail(self, "AssertionError", "SemaphoreTests.test_acquire_no_hang: c2 got in");
}

/* SemaphoreTests.test_acquire_no_hang: a waiter woken and then cancelled gives the value back,
 * so the semaphore can be acquired again. */
CASE(semaphore_test_acquire_no_hang) {
    BEGIN("SemaphoreTests.test_acquire_no_hang");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_no_hang_1, 0, 0);
    actor *t2 = spawn(c, co_no_hang_2, 0, 0);
    CHECK(t1 && t2);
    CHECK(join_all(c));
    CHECK(ended_ok(t1));
    CHECK(cancelled(t2));
    aiod_timeout *tm = NULL;
    CHECK(api->timeout_enter(t, 1.0, &tm) == 0);
    int r = api->sync_acquire(t, c->s);
    CHECK(api->timeout_exit(t, tm, r) == 0);
    END
}

/* SemaphoreTests.test_release_not_acquired: a BoundedSemaphore's ValueError is -EOVERFLOW. */
CASE(semaphore_test_release_not_acquired) {
    BEGIN("SemaphoreTests.test_release_not_acquired");
    CHECK(api->sync_new(AIOD_SYNC_BOUNDED_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(api->sync_release(c->s) == -EOVERFLOW);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_release(c->s) == -EOVERFLOW);
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == 1);
    END
}

/* SemaphoreTests.test_release_no_waiters */
CASE(semaphore_test_release_no_waiters) {
    BEGIN("SemaphoreTests.test_release_no_waiters");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(api->sync_acquire(t, c->s) == 0);
    CHECK(api->sync_locked(c->s) == 1);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_locked(c->s) == 0);
    END
}

/* acquire; append tag; sleep 0.01; release; acquire; append TAG; sleep 0.01; release */
static int co_fifo_twice(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    for (int round = 0; round < 2; round++) {
        int r = api->sync_acquire(self, a->c->s);
        if (r < 0)
            return r;
        log_add(a->c, round ? (char)(a->tag - 'a' + 'A') : a->tag);
        r = api->sleep(self, 0.01);
        api->sync_release(a->c->s);
        if (r < 0)
            return r;
    }
    return 0;
}

/* SemaphoreTests.test_acquire_fifo_order: c1_1 c2_1 c3_1 c1_2 c2_2 c3_2 ("abcABC"). */
CASE(semaphore_test_acquire_fifo_order) {
    BEGIN("SemaphoreTests.test_acquire_fifo_order");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(spawn(c, co_fifo_twice, 'a', 0));
    CHECK(spawn(c, co_fifo_twice, 'b', 0));
    CHECK(spawn(c, co_fifo_twice, 'c', 0));
    CHECK(join_all(c));
    CHECK(strcmp(c->log, "abcABC") == 0);
    END
}

/* c2: acquire; append 2; release; acquire; append 4 */
static int co_fifo_2(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_acquire(self, a->c->s);
    if (r < 0)
        return r;
    log_add(a->c, '2');
    api->sync_release(a->c->s);
    r = api->sync_acquire(self, a->c->s);
    if (r == 0)
        log_add(a->c, '4');
    return r;
}

/* SemaphoreTests.test_acquire_fifo_order_2: a task that releases and acquires again queues
 * behind the one already woken. */
CASE(semaphore_test_acquire_fifo_order_2) {
    BEGIN("SemaphoreTests.test_acquire_fifo_order_2");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 1, NULL, &c->s) == 0);
    CHECK(spawn(c, co_acquire, '1', 0));
    CHECK(spawn(c, co_fifo_2, 0, 0));
    CHECK(spawn(c, co_acquire, '3', 0));
    YIELD();
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(join_all(c));
    CHECK(strcmp(c->log, "1234") == 0);
    END
}

/* SemaphoreTests.test_acquire_fifo_order_3: a waiter cancelled before the releases. */
CASE(semaphore_test_acquire_fifo_order_3) {
    BEGIN("SemaphoreTests.test_acquire_fifo_order_3");
    CHECK(api->sync_new(AIOD_SYNC_SEMAPHORE, 0, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_acquire, '1', 0);
    CHECK(t1);
    CHECK(spawn(c, co_acquire, '2', 0));
    CHECK(spawn(c, co_acquire, '3', 0));
    YIELD();
    api->cancel(t, t1->child);
    YIELD();
    CHECK(api->sync_release(c->s) == 0);
    CHECK(api->sync_release(c->s) == 0);
    CHECK(join_all(c));
    CHECK(strcmp(c->log, "23") == 0);
    END
}

/* ---- BarrierTests (N = 5 unless the test says otherwise) */

#define N_PARTIES 5

/* BarrierTests.test_barrier_parties: parties must be > 0 (ValueError is -EINVAL). */
CASE(barrier_test_barrier_parties) {
    BEGIN("BarrierTests.test_barrier_parties");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 0, NULL, &c->s) == -EINVAL);
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, -4, NULL, &c->s) == -EINVAL);
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_PARTIES) == N_PARTIES);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* Every actor's status is a distinct index 0 .. n-1. */
static bool indices_are_a_range(const ctx *c, size_t n) {
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        int s = c->a[i].status;
        if (s < 0 || (size_t)s >= n || (seen & (1u << s)))
            return false;
        seen |= 1u << s;
    }
    return true;
}

/* BarrierTests.test_context_manager: three parties get the indices 0, 1, 2. */
CASE(barrier_test_context_manager) {
    BEGIN("BarrierTests.test_context_manager");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 3, NULL, &c->s) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(spawn(c, co_wait, 0, 0));
    CHECK(join_all(c));
    CHECK(indices_are_a_range(c, 3));
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* BarrierTests.test_filling_one_task */
CASE(barrier_test_filling_one_task) {
    BEGIN("BarrierTests.test_filling_one_task");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 1, NULL, &c->s) == 0);
    CHECK(api->sync_wait(t, c->s) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* BarrierTests.test_filling_one_task_twice */
CASE(barrier_test_filling_one_task_twice) {
    BEGIN("BarrierTests.test_filling_one_task_twice");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 1, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_wait, 0, 0);
    CHECK(t1);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    actor *t2 = spawn(c, co_wait, 0, 0);
    CHECK(t2);
    YIELD();
    CHECK(t1->status == t2->status);
    CHECK(is_done(t1) == is_done(t2));
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* BarrierTests.test_filling_task_by_task: n_waiting counts the tasks in the barrier. */
CASE(barrier_test_filling_task_by_task) {
    BEGIN("BarrierTests.test_filling_task_by_task");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 3, NULL, &c->s) == 0);
    CHECK(spawn(c, co_wait, 0, 0));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    CHECK(spawn(c, co_wait, 0, 0));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    CHECK(spawn(c, co_wait, 0, 0));
    YIELD();
    CHECK(join_all(c));
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* async with barrier: append T; async with barrier as i: append F; return i */
static int co_wait_twice(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_wait(self, a->c->s);
    if (r < 0)
        return r;
    log_add(a->c, 'T');
    r = api->sync_wait(self, a->c->s);
    if (r < 0)
        return r;
    log_add(a->c, 'F');
    a->status = r;
    return 0;
}

/* BarrierTests.test_filling_tasks_wait_twice */
CASE(barrier_test_filling_tasks_wait_twice) {
    BEGIN("BarrierTests.test_filling_tasks_wait_twice");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_wait_twice, 0, 0));
    CHECK(join_all(c));
    CHECK(c->n_log == 2 * N_PARTIES);
    CHECK(log_count(c, 'T') == N_PARTIES);
    CHECK(log_count(c, 'F') == N_PARTIES);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* BarrierTests.test_filling_tasks_check_return_value: the second pass's indices are 0..N-1. */
CASE(barrier_test_filling_tasks_check_return_value) {
    BEGIN("BarrierTests.test_filling_tasks_check_return_value");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_wait_twice, 0, 0));
    CHECK(join_all(c));
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(ended_ok(&c->a[i]));
    CHECK(log_count(c, 'T') == N_PARTIES && log_count(c, 'F') == N_PARTIES);
    CHECK(indices_are_a_range(c, N_PARTIES));
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* wait(barrier); then rewait_n tasks wait again on it, the others first pass barrier_nowaiting
 * (N - rewait parties) and then wait on barrier. */
static int co_blocking_draining(aiod_task *self, const struct aiod_api *api, void *arg,
                                aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_wait(self, c->s);
    if (r < 0)
        return r;
    if (c->n1 > 0) {
        c->n1--;
        r = api->sync_wait(self, c->s);
    } else {
        r = api->sync_wait(self, c->s2);
        if (r >= 0)
            r = api->sync_wait(self, c->s);
    }
    return r < 0 ? r : 0;
}

/* BarrierTests.test_blocking_tasks_while_draining: tasks arriving while the barrier drains
 * wait for the draining to end; all N get through twice. */
CASE(barrier_test_blocking_tasks_while_draining) {
    BEGIN("BarrierTests.test_blocking_tasks_while_draining");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES - 2, NULL, &c->s2) == 0);
    c->n1 = 2; /* rewait_n */
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_blocking_draining, 0, 0));
    CHECK(join_all(c));
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(ended_ok(&c->a[i]));
    END
}

/* BarrierTests.test_filling_tasks_cancel_one: a cancelled party leaves the count. */
CASE(barrier_test_filling_tasks_cancel_one) {
    BEGIN("BarrierTests.test_filling_tasks_cancel_one");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 3, NULL, &c->s) == 0);
    actor *t1 = spawn(c, co_wait, 'R', 0);
    CHECK(t1);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    actor *t2 = spawn(c, co_wait, 'R', 0);
    CHECK(t2);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    api->cancel(t, t1->child);
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    CHECK(await_child(t1) == -ECANCELED);
    CHECK(cancelled(t1));
    CHECK(spawn(c, co_wait, 'R', 0));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 2);
    CHECK(spawn(c, co_wait, 'R', 0));
    CHECK(join_from(c, 1));
    CHECK(c->n_log == 3);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* asyncio.create_task(barrier.reset()) / barrier.abort() */
static int co_reset(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)self;
    (void)ret;
    actor *a = arg;
    return a->opt ? api->sync_abort(a->c->s) : api->sync_reset(a->c->s);
}

/* BarrierTests.test_reset_barrier */
CASE(barrier_test_reset_barrier) {
    BEGIN("BarrierTests.test_reset_barrier");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 1, NULL, &c->s) == 0);
    CHECK(spawn(c, co_reset, 0, 0));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* try: await barrier.wait() except BrokenBarrierError: result.append(True) */
static int co_wait_broken(aiod_task *self, const struct aiod_api *api, void *arg,
                          aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_wait(self, a->c->s);
    if (r == -EPIPE)
        log_add(a->c, 'B');
    return r < 0 && r != -EPIPE ? r : 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_waiting: the waiting parties get
 * BrokenBarrierError (-EPIPE); the barrier is usable again afterwards. */
CASE(barrier_test_reset_barrier_while_tasks_waiting) {
    BEGIN("BarrierTests.test_reset_barrier_while_tasks_waiting");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES - 1; i++)
        CHECK(spawn(c, co_wait_broken, 0, 0));
    YIELD();
    CHECK(spawn(c, co_reset, 0, 0));
    CHECK(join_all(c));
    CHECK(c->n_log == N_PARTIES - 1 && log_count(c, 'B') == N_PARTIES - 1);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    /* Not "resetting" any more: a new party is counted as filling. */
    size_t next = c->n_actors;
    CHECK(spawn(c, co_wait, 0, 0));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 1);
    CHECK(api->sync_reset(c->s) == 0);
    CHECK(join_from(c, next));
    END
}

/* Passed: n1 counts the tasks out of the barrier; the one that leaves N/2 inside resets it. */
static int co_half_draining(aiod_task *self, const struct aiod_api *api, void *arg,
                            aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_wait(self, c->s);
    if (r == -EPIPE) {
        log_add(c, 'B');
        return 0;
    }
    if (r < 0)
        return r;
    c->n1++;
    /* rest_of_tasks == barrier._count: the tasks still inside are those not out yet. */
    if (N_PARTIES / 2 == N_PARTIES - c->n1)
        api->sync_reset(c->s);
    return 0;
}

/* BarrierTests.test_reset_barrier_when_tasks_half_draining: a reset while draining breaks the
 * parties not yet out. */
CASE(barrier_test_reset_barrier_when_tasks_half_draining) {
    BEGIN("BarrierTests.test_reset_barrier_when_tasks_half_draining");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_half_draining, 0, 0));
    CHECK(join_all(c));
    CHECK(c->n_log == N_PARTIES / 2 && log_count(c, 'B') == N_PARTIES / 2);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

static int co_half_draining_half_blocking(aiod_task *self, const struct aiod_api *api, void *arg,
                                          aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_wait(self, c->s);
    if (r == -EPIPE) {
        log_add(c, 'B'); /* results1 */
        r = api->sync_wait(self, c->s);
    } else if (r >= 0) {
        c->n1++;
        if (c->n1 > N_PARTIES / 2) {
            api->sync_reset(c->s);
            r = api->sync_wait(self, c->s);
        } else {
            r = api->sync_wait(self, c->s);
            if (r == -EPIPE) {
                log_add(c, 'X'); /* results2 */
                r = 0;
            }
        }
    }
    return r < 0 ? r : 0;
}

/* BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking (the name is cut to fit
 * the 63 characters a function name may have). */
CASE(barrier_test_reset_when_tasks_half_draining_half_blocking) {
    BEGIN("BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_half_draining_half_blocking, 0, 0));
    CHECK(join_all(c));
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(ended_ok(&c->a[i]));
    CHECK(log_count(c, 'B') == N_PARTIES / 2);
    CHECK(log_count(c, 'X') == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    END
}

/* try: wait except Broken: append B finally: wait; append R */
static int co_wait_again(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    int r = api->sync_wait(self, a->c->s);
    if (r == -EPIPE)
        log_add(a->c, 'B');
    else if (r < 0)
        return r;
    r = api->sync_wait(self, a->c->s);
    if (r < 0)
        return r;
    log_add(a->c, 'R');
    return 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again (name cut to 63). */
CASE(barrier_test_reset_while_tasks_waiting_and_waiting_again) {
    BEGIN("BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES - 1; i++)
        CHECK(spawn(c, co_wait_again, 0, 0));
    CHECK(spawn(c, co_reset, 0, 0));
    YIELD();
    CHECK(spawn(c, co_wait, 'R', 0));
    CHECK(join_all(c));
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    CHECK(log_count(c, 'B') == N_PARTIES - 1);
    CHECK(log_count(c, 'R') == N_PARTIES);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

static int co_reset_while_draining(aiod_task *self, const struct aiod_api *api, void *arg,
                                   aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_wait(self, c->s);
    if (r < 0)
        return r;
    c->n1++;
    if (c->n1 == N_PARTIES) {
        /* The last task out resets the barrier, then waits to reach the parties. */
        api->sync_reset(c->s);
        r = api->sync_wait(self, c->s);
        if (r < 0)
            return r;
    } else {
        r = api->sync_wait(self, c->s);
        log_add(c, r >= 0 ? '1' : '2'); /* results1 / results2 */
    }
    r = api->sync_wait(self, c->s);
    if (r < 0)
        return r;
    log_add(c, '3');
    return 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_draining: a reset by the last task out of a
 * drained barrier breaks nobody. */
CASE(barrier_test_reset_barrier_while_tasks_draining) {
    BEGIN("BarrierTests.test_reset_barrier_while_tasks_draining");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_reset_while_draining, 0, 0));
    CHECK(join_all(c));
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    CHECK(log_count(c, '1') == N_PARTIES - 1);
    CHECK(log_count(c, '2') == 0);
    CHECK(log_count(c, '3') == N_PARTIES);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

/* BarrierTests.test_abort_barrier */
CASE(barrier_test_abort_barrier) {
    BEGIN("BarrierTests.test_abort_barrier");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, 1, NULL, &c->s) == 0);
    CHECK(spawn(c, co_reset, 0, 1));
    YIELD();
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 1);
    /* A broken barrier refuses new parties. */
    CHECK(api->sync_wait(t, c->s) == -EPIPE);
    END
}

static int co_abort_half(aiod_task *self, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int r = api->sync_wait(self, c->s);
    if (r == -EPIPE) {
        log_add(c, 'B'); /* results1 */
        return 0;
    }
    if (r < 0)
        return r;
    c->n1++;
    if (c->n1 > N_PARTIES / 2) {
        api->sync_abort(c->s);
        return 0;
    }
    r = api->sync_wait(self, c->s);
    if (r == -EPIPE) {
        log_add(c, 'X'); /* results2 */
        return 0;
    }
    return r < 0 ? r : 0;
}

/* BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking (name cut to 63). */
CASE(barrier_test_abort_when_tasks_half_draining_half_blocking) {
    BEGIN("BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_abort_half, 0, 0));
    CHECK(join_all(c));
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 1);
    CHECK(log_count(c, 'B') == N_PARTIES / 2);
    CHECK(log_count(c, 'X') == N_PARTIES - N_PARTIES / 2 - 1);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

static int co_abort_on_error(aiod_task *self, const struct aiod_api *api, void *arg,
                             aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int i = api->sync_wait(self, c->s);
    if (i == N_PARTIES / 2) {
        /* raise RuntimeError inside the first block; the handler aborts. */
        api->sync_abort(c->s);
        return 0;
    }
    int r = i < 0 ? i : api->sync_wait(self, c->s);
    if (r == -EPIPE)
        log_add(c, 'B');
    else if (r >= 0)
        log_add(c, '1');
    return r < 0 && r != -EPIPE ? r : 0;
}

/* BarrierTests.test_abort_barrier_when_exception */
CASE(barrier_test_abort_barrier_when_exception) {
    BEGIN("BarrierTests.test_abort_barrier_when_exception");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_abort_on_error, 0, 0));
    CHECK(join_all(c));
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 1);
    CHECK(log_count(c, '1') == 0);
    CHECK(log_count(c, 'B') == N_PARTIES - 1);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

static int co_abort_then_reset(aiod_task *self, const struct aiod_api *api, void *arg,
                               aiod_value **ret) {
    (void)ret;
    actor *a = arg;
    ctx *c = a->c;
    int i = api->sync_wait(self, c->s);
    if (i == N_PARTIES / 2) {
        api->sync_abort(c->s);
    } else {
        int r = i < 0 ? i : api->sync_wait(self, c->s);
        if (r == -EPIPE)
            log_add(c, 'B');
        else if (r >= 0)
            log_add(c, '1');
        else
            return r;
    }
    /* Synchronise, reset barrier1 once everyone has left it, synchronise again. */
    i = api->sync_wait(self, c->s2);
    if (i < 0)
        return i;
    if (i == N_PARTIES / 2)
        api->sync_reset(c->s);
    int r = api->sync_wait(self, c->s2);
    if (r < 0)
        return r;
    r = api->sync_wait(self, c->s);
    if (r < 0)
        return r;
    log_add(c, '3');
    return 0;
}

/* BarrierTests.test_abort_barrier_when_exception_then_resetting: a reset mends an aborted
 * barrier. */
CASE(barrier_test_abort_barrier_when_exception_then_resetting) {
    BEGIN("BarrierTests.test_abort_barrier_when_exception_then_resetting");
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s) == 0);
    CHECK(api->sync_new(AIOD_SYNC_BARRIER, N_PARTIES, NULL, &c->s2) == 0);
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(spawn(c, co_abort_then_reset, 0, 0));
    CHECK(join_all(c));
    for (int i = 0; i < N_PARTIES; i++)
        CHECK(ended_ok(&c->a[i]));
    CHECK(api->sync_count(c->s, AIOD_COUNT_BROKEN) == 0);
    CHECK(log_count(c, '1') == 0);
    CHECK(log_count(c, 'B') == N_PARTIES - 1);
    CHECK(log_count(c, '3') == N_PARTIES);
    CHECK(api->sync_count(c->s, AIOD_COUNT_WAITING) == 0);
    END
}

/* Not a CPython test: calls that must be refused without a crash (the api validates at the
 * edge): wrong kinds, NULLs, a suspending call from outside the task, freeing while in use. */
CASE(sync_misuse) {
    BEGIN("aiod: sync misuse");
    CHECK(api->sync_new(0, 0, NULL, &c->s) == -EINVAL);
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, NULL) == -EINVAL);
    CHECK(api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &c->s) == 0);
    CHECK(api->sync_new(AIOD_SYNC_CONDITION, 0, c->s, &c->s2) == -EINVAL); /* not a lock */
    CHECK(api->sync_acquire(t, c->s) == -EINVAL);
    CHECK(api->sync_release(c->s) == -EINVAL);
    CHECK(api->sync_locked(c->s) == -EINVAL);
    CHECK(api->sync_notify(c->s, 1) == -EINVAL);
    CHECK(api->sync_reset(c->s) == -EINVAL);
    CHECK(api->sync_count(c->s, AIOD_COUNT_VALUE) == -EINVAL);
    CHECK(api->sync_wait(NULL, c->s) == -EINVAL);
    CHECK(api->sync_set(NULL) == -EINVAL);
    actor *w = spawn(c, co_wait, 0, 0);
    CHECK(w);
    YIELD();
    CHECK(api->sync_free(c->s) == -EBUSY);
    CHECK(api->sync_set(c->s) == 0);
    CHECK(await_child(w) == 0);
    CHECK(api->sync_free(c->s) == 0);
    c->s = NULL;
    END
}

#define ENTRY(fn)                                                                                  \
    {                                                                                              \
        sizeof(struct aiod_function), AIOD_FN_INTERNAL, #fn, "test case", NULL, 0, AIOD_TYPE_NULL, \
            fn                                                                                     \
    }

static const struct aiod_function functions[] = {
    ENTRY(lock_test_acquire),
    ENTRY(lock_test_acquire_cancel),
    ENTRY(lock_test_cancel_race),
    ENTRY(lock_test_cancel_release_race),
    ENTRY(lock_test_finished_waiter_cancelled),
    ENTRY(lock_test_release_not_acquired),
    ENTRY(lock_test_release_no_waiters),
    ENTRY(event_test_wait),
    ENTRY(event_test_wait_on_set),
    ENTRY(event_test_wait_cancel),
    ENTRY(event_test_clear),
    ENTRY(event_test_clear_with_waiters),
    ENTRY(condition_test_wait),
    ENTRY(condition_test_wait_cancel),
    ENTRY(condition_test_wait_cancel_contested),
    ENTRY(condition_test_wait_cancel_after_notify),
    ENTRY(condition_test_wait_unacquired),
    ENTRY(condition_test_wait_for),
    ENTRY(condition_test_wait_for_unacquired),
    ENTRY(condition_test_notify),
    ENTRY(condition_test_notify_all),
    ENTRY(condition_test_notify_unacquired),
    ENTRY(condition_test_explicit_lock),
    ENTRY(condition_test_timeout_in_block),
    ENTRY(condition_test_cancelled_error_wakeup),
    ENTRY(condition_test_cancelled_error_re_aquire),
    ENTRY(condition_test_cancelled_wakeup),
    ENTRY(condition_test_cancelled_wakeup_relock),
    ENTRY(semaphore_test_initial_value_zero),
    ENTRY(semaphore_test_semaphore_value),
    ENTRY(semaphore_test_acquire),
    ENTRY(semaphore_test_acquire_cancel),
    ENTRY(semaphore_test_acquire_cancel_before_awoken),
    ENTRY(semaphore_test_acquire_hang),
    ENTRY(semaphore_test_acquire_no_hang),
    ENTRY(semaphore_test_release_not_acquired),
    ENTRY(semaphore_test_release_no_waiters),
    ENTRY(semaphore_test_acquire_fifo_order),
    ENTRY(semaphore_test_acquire_fifo_order_2),
    ENTRY(semaphore_test_acquire_fifo_order_3),
    ENTRY(barrier_test_barrier_parties),
    ENTRY(barrier_test_context_manager),
    ENTRY(barrier_test_filling_one_task),
    ENTRY(barrier_test_filling_one_task_twice),
    ENTRY(barrier_test_filling_task_by_task),
    ENTRY(barrier_test_filling_tasks_wait_twice),
    ENTRY(barrier_test_filling_tasks_check_return_value),
    ENTRY(barrier_test_blocking_tasks_while_draining),
    ENTRY(barrier_test_filling_tasks_cancel_one),
    ENTRY(barrier_test_reset_barrier),
    ENTRY(barrier_test_reset_barrier_while_tasks_waiting),
    ENTRY(barrier_test_reset_barrier_when_tasks_half_draining),
    ENTRY(barrier_test_reset_when_tasks_half_draining_half_blocking),
    ENTRY(barrier_test_reset_while_tasks_waiting_and_waiting_again),
    ENTRY(barrier_test_reset_barrier_while_tasks_draining),
    ENTRY(barrier_test_abort_barrier),
    ENTRY(barrier_test_abort_when_tasks_half_draining_half_blocking),
    ENTRY(barrier_test_abort_barrier_when_exception),
    ENTRY(barrier_test_abort_barrier_when_exception_then_resetting),
    ENTRY(sync_misuse),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "asyncio_locks",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

/*
 * Shared by the asyncio test plugin's sources (asyncio_*.c): the checks a
 * case makes, and small helper coroutines for api->spawn_call.
 *
 * Each case is a task function named after the CPython test it mirrors. A
 * failed check fails the task with kind "AssertionError" and a message
 * naming the function, the line and the check; a missing ABI 1.4 slot fails
 * it with kind "NotImplemented". Shared state lives in statics or on the
 * heap, never on a task's stack (a suspended task's stack is copied aside).
 */
#ifndef ASYNCIO_COMMON_H
#define ASYNCIO_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <aiod/plugin.h>

/* The signature of a case (declared for every case in asyncio_cases.h). */
#define ASYNCIO_CASE(name)                                                                         \
    int name(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,              \
             aiod_value **ret)

#define CASE(name) ASYNCIO_CASE(name);
#include "asyncio_cases.h"
#undef CASE
/* The deep cancel of issue 15 (asyncio_futures.c): argument n. */
ASYNCIO_CASE(asyncio_deep_cancel_chain);

/* The api slot exists in the daemon's table and is filled. */
#define HAVE(slot)                                                                                 \
    (api->struct_size >= offsetof(struct aiod_api, slot) + sizeof(api->slot) && api->slot != NULL)
#define NEED(slot)                                                                                 \
    do {                                                                                           \
        if (!HAVE(slot))                                                                           \
            return api->fail(t, "NotImplemented", "%s: api->%s is missing", __func__, #slot);      \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return api->fail(t, "AssertionError", "%s:%d: %s", __func__, __LINE__, #cond);         \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            return api->fail(t, "AssertionError", "%s:%d: %s is %lld, expected %s (%lld)",         \
                             __func__, __LINE__, #a, a_, #b, b_);                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || strcmp(a_, b_) != 0)                                                            \
            return api->fail(t, "AssertionError", "%s:%d: %s is \"%s\", expected \"%s\"",          \
                             __func__, __LINE__, #a, a_ ? a_ : "(null)", b_);                      \
    } while (0)

/* A call that must succeed (return >= 0). */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ < 0)                                                                                \
            return api->fail(t, "AssertionError", "%s:%d: %s failed: %d (%s)", __func__, __LINE__, \
                             #call, r_, strerror(-r_));                                            \
    } while (0)

/* What h_job does: sleep `delay` seconds (< 0: not at all), then fail with
 * `kind` or return `value`. On -ECANCELED from the sleep it counts in
 * *cancels (if set) and returns -ECANCELED, or with `swallow` goes on. */
struct job {
    double delay;
    const char *kind;
    int64_t value;
    int *cancels;
    int swallow;
};
int asyncio_h_job(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret);
/* Awaits the future `arg` and returns its result. */
int asyncio_h_await_future(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret);

/* Spawns fn(arg) as a child of t; NULL on failure. */
aiod_child *asyncio_spawn(aiod_task *t, const struct aiod_api *api,
                          int (*fn)(aiod_task *, const struct aiod_api *, void *, aiod_value **),
                          void *arg);

/* The int result of a finished child (child_result), or INT64_MIN. */
int64_t asyncio_child_int(aiod_task *t, const struct aiod_api *api, const aiod_child *c);

/* Yields `n` loop iterations (sleep(0) each). 0 or the first error. */
int asyncio_yield(aiod_task *t, const struct aiod_api *api, int n);

#endif

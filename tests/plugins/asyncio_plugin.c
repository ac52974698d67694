/*
 * The asyncio test plugin ("asyncio"): one internal function per case of
 * asyncio_cases.h, plus deep_cancel_chain(n), and the helpers the cases
 * share. Built against the current header, so its tasks follow ABI 1.4's
 * asyncio semantics. Driven by tests/unit/test-asyncio.c.
 */
#include <errno.h>
#include <stdint.h>

#include "asyncio_common.h"

int asyncio_h_job(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    struct job *j = arg;
    if (j->delay >= 0) {
        int r = api->sleep(t, j->delay);
        if (r == -ECANCELED && j->cancels)
            (*j->cancels)++;
        if (r < 0 && !(r == -ECANCELED && j->swallow))
            return r;
    }
    if (j->kind)
        return api->fail(t, j->kind, "%s from a job", j->kind);
    *ret = api->value_int(j->value);
    return *ret ? 0 : -ENOMEM;
}

int asyncio_h_await_future(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    return api->future_await(t, arg, ret);
}

aiod_child *asyncio_spawn(aiod_task *t, const struct aiod_api *api,
                          int (*fn)(aiod_task *, const struct aiod_api *, void *, aiod_value **),
                          void *arg) {
    aiod_child *c = NULL;
    if (!HAVE(spawn_call) || api->spawn_call(t, fn, arg, &c) < 0)
        return NULL;
    return c;
}

int64_t asyncio_child_int(aiod_task *t, const struct aiod_api *api, const aiod_child *c) {
    aiod_value *v = NULL;
    if (!HAVE(child_result) || api->child_result(t, c, &v) < 0 || !v ||
        api->value_type(v) != AIOD_TYPE_INT) {
        api->value_free(v);
        return INT64_MIN;
    }
    int64_t i = api->get_int(v);
    api->value_free(v);
    return i;
}

int asyncio_yield(aiod_task *t, const struct aiod_api *api, int n) {
    for (int i = 0; i < n; i++) {
        int r = api->sleep(t, 0);
        if (r < 0)
            return r;
    }
    return 0;
}

static const struct aiod_param deep_params[] = {{"n", AIOD_TYPE_INT, "1000000"}};

/* A helper coroutine (spawn_call) of a function declared to return a
 * string returns an int, as asyncio.create_task(coro()) puts no type on
 * coro's result: it was checked against the caller's declaration and
 * failed TypeError ("asyncio.typed_caller returned int, but declares
 * string"). */
static int h_returns_int(aiod_task *t, const struct aiod_api *api, void *arg, aiod_value **ret) {
    (void)t, (void)arg;
    *ret = api->value_int(42);
    return *ret ? 0 : -ENOMEM;
}

static int typed_caller(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    (void)args;
    aiod_child *c = asyncio_spawn(t, api, h_returns_int, NULL);
    CHECK(c);
    CHECK_OK(api->await(t, c, NULL));
    CHECK_EQ(asyncio_child_int(t, api, c), 42);
    api->child_release(t, c);
    *ret = api->value_string("typed");
    return *ret ? 0 : -ENOMEM;
}

#define CASE(name)                                                                                 \
    {sizeof(struct aiod_function),                                                                 \
     AIOD_FN_INTERNAL,                                                                             \
     #name,                                                                                        \
     "mirrors CPython's " #name,                                                                   \
     NULL,                                                                                         \
     0,                                                                                            \
     AIOD_TYPE_ANY,                                                                                \
     name},
static const struct aiod_function functions[] = {
#include "asyncio_cases.h"
    {sizeof(struct aiod_function), AIOD_FN_INTERNAL, "deep_cancel_chain",
     "cancels the head of a chain of n tasks, each awaiting the next", deep_params, 1,
     AIOD_TYPE_ANY, asyncio_deep_cancel_chain},
    {sizeof(struct aiod_function), AIOD_FN_INTERNAL, "typed_caller",
     "declares a string; its spawn_call helper returns an int", NULL, 0, AIOD_TYPE_STRING,
     typed_caller},
};
#undef CASE

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "asyncio",
    .version = "1",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

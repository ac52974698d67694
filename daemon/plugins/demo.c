/*
 * The demo plugin: small building blocks (sleep, echo, fail, hello) and the
 * four asyncio examples of the seed document written as aiod tasks. Each
 * example prints the same lines in the same order as its Python original,
 * returns the same result (a list where Python returns a tuple) and takes
 * the same time.
 *
 * How the asyncio constructs map:
 *   await coro()            spawn + await at once
 *   asyncio.gather(a, b)    spawn both, then gather
 *   asyncio.create_task(c)  spawn; await later
 *   a task never awaited    spawn and never await (still finishes while the
 *                           parent sleeps; cancelled if the parent ends first)
 */
#include <errno.h>
#include <stddef.h>

#include <aiod/plugin.h>

/* ---- building blocks */

static int demo_sleep(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    int r = api->sleep(t, api->get_double(args[0]));
    if (r < 0)
        return r == -EINVAL ? api->fail(t, "ValueError", "seconds must be >= 0") : r;
    *ret = api->value_copy(args[1]);
    return *ret ? 0 : -ENOMEM;
}

static int demo_echo(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                     aiod_value **ret) {
    (void)t;
    *ret = api->value_copy(args[0]);
    return *ret ? 0 : -ENOMEM;
}

static int demo_fail(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                     aiod_value **ret) {
    (void)ret;
    return api->fail(t, api->get_string(args[0]), "%s", api->get_string(args[1]));
}

static int demo_hello(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    api->print(t, "Hello, %s!", api->get_string(args[0]));
    *ret = api->value_string("hello done");
    return *ret ? 0 : -ENOMEM;
}

/* ---- the seed's coroutines: my_async_function1 and 2, with the sleep as
 * a parameter because the fourth example sleeps 2 s and 1 s instead of 3 and
 * 2, and without a result there. */

static int async_function(aiod_task *t, const struct aiod_api *api, int which, double seconds,
                          int returns, aiod_value **ret) {
    api->print(t, "Hello from my async function %d", which);
    int r = api->sleep(t, seconds);
    if (r < 0)
        return r;
    api->print(t, "Done with async function %d", which);
    if (returns) {
        *ret = api->value_string(which == 1 ? "my_async_function1 result"
                                            : "my_async_function2 result");
        if (!*ret)
            return -ENOMEM;
    }
    return 0;
}

static int my_async_function1(aiod_task *t, const struct aiod_api *api,
                              const aiod_value *const *args, aiod_value **ret) {
    return async_function(t, api, 1, api->get_double(args[0]), api->get_bool(args[1]), ret);
}

static int my_async_function2(aiod_task *t, const struct aiod_api *api,
                              const aiod_value *const *args, aiod_value **ret) {
    return async_function(t, api, 2, api->get_double(args[0]), api->get_bool(args[1]), ret);
}

/* Spawns demo.my_async_function<which>(seconds, returns). */
static int spawn_fn(aiod_task *t, const struct aiod_api *api, int which, double seconds,
                    int returns, aiod_child **ret) {
    aiod_value *args[2] = {api->value_double(seconds), api->value_bool(returns)};
    if (!args[0] || !args[1]) {
        api->value_free(args[0]);
        api->value_free(args[1]);
        return -ENOMEM;
    }
    return api->spawn(t, which == 1 ? "demo.my_async_function1" : "demo.my_async_function2", args,
                      2, ret);
}

/* Builds the pair (result1, result2) as a two-item list; takes both. */
static int pair(const struct aiod_api *api, aiod_value *a, aiod_value *b, aiod_value **ret) {
    aiod_value *l = api->value_list();
    if (!l || api->list_append(l, a) < 0) {
        api->value_free(l);
        api->value_free(b);
        return -ENOMEM;
    }
    if (api->list_append(l, b) < 0) {
        api->value_free(l);
        return -ENOMEM;
    }
    *ret = l;
    return 0;
}

/* Example 1: result1 = await f1(); result2 = await f2()  — 3 s + 2 s. */
static int main_sequential(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                           aiod_value **ret) {
    (void)args;
    aiod_child *c1 = NULL, *c2 = NULL;
    aiod_value *r1 = NULL, *r2 = NULL;
    int r;

    api->print(t, "Starting main function");
    if ((r = spawn_fn(t, api, 1, 3, 1, &c1)) < 0 || (r = api->await(t, c1, &r1)) < 0)
        goto out;
    if ((r = spawn_fn(t, api, 2, 2, 1, &c2)) < 0 || (r = api->await(t, c2, &r2)) < 0)
        goto out;
    api->print(t, "Done with main function");
    r = pair(api, r1, r2, ret);
    r1 = r2 = NULL;
out:
    api->value_free(r1);
    api->value_free(r2);
    if (c1)
        api->child_release(t, c1);
    if (c2)
        api->child_release(t, c2);
    return r;
}

/* Example 2: result1, result2 = await gather(f1(), f2())  — 3 s. */
static int main_gather(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                       aiod_value **ret) {
    (void)args;
    aiod_child *c[2] = {NULL, NULL};
    int r;

    api->print(t, "Starting main function");
    if ((r = spawn_fn(t, api, 1, 3, 1, &c[0])) < 0 || (r = spawn_fn(t, api, 2, 2, 1, &c[1])) < 0)
        goto out;
    if ((r = api->gather(t, c, 2, 0, ret)) < 0)
        goto out;
    api->print(t, "Done with main function");
out:
    for (int i = 0; i < 2; i++)
        if (c[i])
            api->child_release(t, c[i]);
    return r;
}

/* Example 3: task1 = create_task(f1()); task2 = create_task(f2());
 * await task1; await task2  — 3 s. */
static int main_tasks(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    (void)args;
    aiod_child *c1 = NULL, *c2 = NULL;
    aiod_value *r1 = NULL, *r2 = NULL;
    int r;

    api->print(t, "Starting main function");
    if ((r = spawn_fn(t, api, 1, 3, 1, &c1)) < 0 || (r = spawn_fn(t, api, 2, 2, 1, &c2)) < 0)
        goto out;
    if ((r = api->await(t, c1, &r1)) < 0 || (r = api->await(t, c2, &r2)) < 0)
        goto out;
    api->print(t, "Done with main function");
    r = pair(api, r1, r2, ret);
    r1 = r2 = NULL;
out:
    api->value_free(r1);
    api->value_free(r2);
    if (c1)
        api->child_release(t, c1);
    if (c2)
        api->child_release(t, c2);
    return r;
}

/* Example 4: create two tasks, never await them, sleep 3 s  — 3 s. */
static int main_nowait(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                       aiod_value **ret) {
    (void)args;
    (void)ret;
    aiod_child *c1 = NULL, *c2 = NULL;
    int r;

    api->print(t, "Starting main function");
    if ((r = spawn_fn(t, api, 1, 2, 0, &c1)) < 0 || (r = spawn_fn(t, api, 2, 1, 0, &c2)) < 0)
        goto out;
    api->print(t, "main function doing other work");
    if ((r = api->sleep(t, 3)) < 0)
        goto out;
    api->print(t, "Done with main function");
out:
    if (c1)
        api->child_release(t, c1);
    if (c2)
        api->child_release(t, c2);
    return r;
}

static const struct aiod_param sleep_params[] = {
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
    {"result", AIOD_TYPE_ANY, "null"},
};
static const struct aiod_param echo_params[] = {{"value", AIOD_TYPE_ANY, NULL}};
static const struct aiod_param fail_params[] = {
    {"kind", AIOD_TYPE_STRING, NULL},
    {"message", AIOD_TYPE_STRING, NULL},
};
static const struct aiod_param hello_params[] = {{"name", AIOD_TYPE_STRING, "world"}};
static const struct aiod_param async_params[] = {
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
    {"returns", AIOD_TYPE_BOOL, "true"},
};

#define FN(fname, fdoc, params, n, result, fflags, entry)                                          \
    { sizeof(struct aiod_function), fflags, fname, fdoc, params, n, result, entry }

static const struct aiod_function functions[] = {
    FN("sleep", "Sleep for `seconds`, then return `result`.", sleep_params, 2, AIOD_TYPE_ANY, 0,
       demo_sleep),
    FN("echo", "Return `value` unchanged.", echo_params, 1, AIOD_TYPE_ANY, 0, demo_echo),
    FN("fail", "Fail with error `kind` and `message`.", fail_params, 2, AIOD_TYPE_NULL, 0,
       demo_fail),
    FN("hello", "Print a greeting for `name`.", hello_params, 1, AIOD_TYPE_STRING, 0, demo_hello),
    FN("main_sequential", "Seed example 1: two awaits in a row (5 s).", NULL, 0, AIOD_TYPE_LIST, 0,
       main_sequential),
    FN("main_gather", "Seed example 2: gather two coroutines (3 s).", NULL, 0, AIOD_TYPE_LIST, 0,
       main_gather),
    FN("main_tasks", "Seed example 3: create two tasks, await both (3 s).", NULL, 0, AIOD_TYPE_LIST,
       0, main_tasks),
    FN("main_nowait", "Seed example 4: create two tasks and don't wait (3 s).", NULL, 0,
       AIOD_TYPE_NULL, 0, main_nowait),
    FN("my_async_function1", "Seed helper: prints, sleeps, returns its result.", async_params, 2,
       AIOD_TYPE_ANY, AIOD_FN_INTERNAL, my_async_function1),
    FN("my_async_function2", "Seed helper: prints, sleeps, returns its result.", async_params, 2,
       AIOD_TYPE_ANY, AIOD_FN_INTERNAL, my_async_function2),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "demo",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

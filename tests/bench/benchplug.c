/*
 * The "bench" plugin used by aiod-bench: the smallest possible tasks, so
 * that what the benchmark measures is the daemon around them.
 *   noop()            returns null at once (no await point)
 *   sleep1(seconds)   sleeps on a loop timer, returns null
 *   spawn_gather(n)   spawns n children of bench.noop and gathers them;
 *                     returns n (not the list, to keep the reply small)
 */
#include <errno.h>
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

static const struct aiod_param sleep_params[] = {{"seconds", AIOD_TYPE_DOUBLE, "1"}};
static const struct aiod_param spawn_params[] = {{"n", AIOD_TYPE_INT, NULL}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "noop", "Return null at once.", NULL, 0, AIOD_TYPE_NULL,
     bench_noop},
    {sizeof(struct aiod_function), 0, "sleep1", "Sleep `seconds` (default 1), return null.",
     sleep_params, 1, AIOD_TYPE_NULL, bench_sleep1},
    {sizeof(struct aiod_function), 0, "spawn_gather",
     "Spawn `n` children of bench.noop, gather them, return n.", spawn_params, 1, AIOD_TYPE_INT,
     bench_spawn_gather},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "bench",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

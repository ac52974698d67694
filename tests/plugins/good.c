/*
 * A well-formed test plugin ("good"): small functions that exercise the task
 * states, sleeping, spawning, awaiting and gathering.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <aiod/plugin.h>

static int add(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
               aiod_value **ret) {
    (void)t;
    *ret = api->value_int(api->get_int(args[0]) + api->get_int(args[1]));
    return *ret ? 0 : -ENOMEM;
}

static int sleepy(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    int r = api->sleep(t, api->get_double(args[0]));
    if (r < 0)
        return r;
    *ret = api->value_string("slept");
    return 0;
}

static int boom(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    (void)args;
    (void)ret;
    return api->fail(t, "RuntimeError", "boom %d", 42);
}

/* Spawns sleepy(0.01) and add(2, 3), gathers them: ["slept", 5]. */
static int family(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    (void)args;
    aiod_child *c[2] = {NULL, NULL};
    aiod_value *a1[] = {api->value_double(0.01)};
    aiod_value *a2[] = {api->value_int(2), api->value_int(3)};
    int r = api->spawn(t, "good.sleepy", a1, 1, &c[0]);
    if (r == 0)
        r = api->spawn(t, "good.add", a2, 2, &c[1]);
    else
        api->value_free(a2[0]), api->value_free(a2[1]);
    if (r == 0)
        r = api->gather(t, c, 2, 0, ret);
    for (int i = 0; i < 2; i++)
        if (c[i])
            api->child_release(t, c[i]);
    return r;
}

/* Awaits a child that fails: the child's error becomes ours. */
static int reraise(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                   aiod_value **ret) {
    (void)args;
    aiod_child *c = NULL;
    int r = api->spawn(t, "good.boom", NULL, 0, &c);
    if (r < 0)
        return r;
    r = api->await(t, c, ret);
    api->child_release(t, c);
    return r;
}

/* Misuses the API: every call must come back with -EINVAL, not a crash. */
static int misuse(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    (void)args;
    aiod_child *c = NULL;
    int bad = 0;
    bad += api->sleep(NULL, 1) == -EINVAL;
    bad += api->sleep(t, NAN) == -EINVAL;
    bad += api->await(t, NULL, NULL) == -EINVAL;
    bad += api->spawn(t, NULL, NULL, 0, &c) == -EINVAL;
    bad += api->spawn(t, "good.add", NULL, 0, &c) == -EINVAL; /* missing argument */
    bad += api->spawn(t, "no.such", NULL, 0, &c) == -ENOENT;
    bad += api->list_append(NULL, api->value_int(1)) == -EINVAL;
    bad += api->print(NULL, "x") == -EINVAL;
    *ret = api->value_int(bad);
    return 0;
}

static int spawn_sleepy(aiod_task *t, const struct aiod_api *api, double s, aiod_child **ret) {
    aiod_value *a[] = {api->value_double(s)};
    return api->spawn(t, "good.sleepy", a, 1, ret);
}

/* asyncio.wait_for: a 0.05 s timeout on a 10 s child cancels it (wait_for)
 * or leaves it running (plain wait). Returns [timed_out, child_state,
 * timed_out2, child_state2]. */
static int timeouts(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    (void)args;
    aiod_child *a = NULL, *b = NULL;
    int r = spawn_sleepy(t, api, 10, &a);
    if (r == 0)
        r = spawn_sleepy(t, api, 10, &b);
    if (r < 0)
        goto out;
    int r1 = api->await_timeout(t, a, 0.05, 1, NULL);
    api->sleep(t, 0); /* let the cancellation reach the child */
    int r2 = api->await_timeout(t, b, 0.05, 0, NULL);
    *ret = api->value_list();
    api->list_append(*ret, api->value_bool(r1 == -ETIMEDOUT));
    api->list_append(*ret, api->value_int(api->child_state(a)));
    api->list_append(*ret, api->value_bool(r2 == -ETIMEDOUT));
    api->list_append(*ret, api->value_int(api->child_state(b)));
    api->cancel(t, b);
    r = 0;
out:
    if (a)
        api->child_release(t, a);
    if (b)
        api->child_release(t, b);
    return r;
}

/* asyncio.wait and as_completed over children sleeping 0.3, 0.1, 0.2 s (a
 * tenth of a second apart, so that a loaded machine keeps their order):
 * FIRST_COMPLETED returns with one done; as_completed yields indexes in
 * finishing order. Returns [done_after_first, i1, i2, i3, enoent]. */
static int waits(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                 aiod_value **ret) {
    (void)args;
    static const double secs[3] = {0.3, 0.1, 0.2};
    aiod_child *c[3] = {NULL, NULL, NULL};
    unsigned char seen[3] = {0, 0, 0};
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++)
        r = spawn_sleepy(t, api, secs[i], &c[i]);
    if (r < 0)
        goto out;
    int done = api->wait(t, c, 3, AIOD_FOREVER, AIOD_FIRST_COMPLETED);
    *ret = api->value_list();
    api->list_append(*ret, api->value_int(done));
    for (int k = 0; k < 3; k++) {
        size_t idx = 99;
        r = api->as_completed(t, c, 3, seen, 5, &idx);
        api->list_append(*ret, api->value_int(r == 0 ? (int64_t)idx : r));
    }
    size_t idx;
    api->list_append(*ret, api->value_bool(api->as_completed(t, c, 3, seen, 5, &idx) == -ENOENT));
    r = 0;
out:
    for (int i = 0; i < 3; i++)
        if (c[i])
            api->child_release(t, c[i]);
    return r;
}

/* asyncio.shield: the shielded child outlives its parent's cancellation.
 * Spawns sleepy(0.05) shielded and sleepy(10), then awaits the second. */
static int shielded(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    (void)args;
    (void)ret;
    aiod_child *s = NULL, *u = NULL;
    int r = spawn_sleepy(t, api, 0.05, &s);
    if (r == 0)
        r = api->shield(t, s);
    if (r == 0)
        r = spawn_sleepy(t, api, 10, &u);
    if (r == 0)
        r = api->await(t, u, NULL);
    if (s)
        api->child_release(t, s);
    if (u)
        api->child_release(t, u);
    return r;
}

/* Recurses until the guard page stops it. */
static int deep(int n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    return n == -1 ? 0 : deep(n + 1) + pad[0];
}

static int overflow(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    (void)t;
    (void)api;
    (void)args;
    (void)ret;
    return deep(0);
}

static const struct aiod_param add_params[] = {{"a", AIOD_TYPE_INT, NULL},
                                               {"b", AIOD_TYPE_INT, "1"}};
static const struct aiod_param sleepy_params[] = {{"seconds", AIOD_TYPE_DOUBLE, NULL}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "add", "Add two ints.", add_params, 2, AIOD_TYPE_INT, add},
    {sizeof(struct aiod_function), 0, "sleepy", "Sleep.", sleepy_params, 1, AIOD_TYPE_STRING,
     sleepy},
    {sizeof(struct aiod_function), 0, "boom", "Fail.", NULL, 0, AIOD_TYPE_NULL, boom},
    {sizeof(struct aiod_function), 0, "family", "Spawn and gather.", NULL, 0, AIOD_TYPE_LIST,
     family},
    {sizeof(struct aiod_function), 0, "reraise", "Await a failing child.", NULL, 0, AIOD_TYPE_ANY,
     reraise},
    {sizeof(struct aiod_function), 0, "misuse", "Misuse the API.", NULL, 0, AIOD_TYPE_INT, misuse},
    {sizeof(struct aiod_function), AIOD_FN_INTERNAL, "overflow", "Overflow the stack.", NULL, 0,
     AIOD_TYPE_NULL, overflow},
    {sizeof(struct aiod_function), 0, "timeouts", "await_timeout.", NULL, 0, AIOD_TYPE_LIST,
     timeouts},
    {sizeof(struct aiod_function), 0, "waits", "wait and as_completed.", NULL, 0, AIOD_TYPE_LIST,
     waits},
    {sizeof(struct aiod_function), 0, "shielded", "shield.", NULL, 0, AIOD_TYPE_NULL, shielded},
    /* At most two at once. */
    {sizeof(struct aiod_function), 0, "limited", "Sleep, two at a time.", sleepy_params, 1,
     AIOD_TYPE_STRING, sleepy, 2, NULL},
    /* Two functions sharing group "g", one task at a time between them. */
    {sizeof(struct aiod_function), 0, "grouped_a", "Sleep in group g.", sleepy_params, 1,
     AIOD_TYPE_STRING, sleepy, 1, "g"},
    {sizeof(struct aiod_function), 0, "grouped_b", "Sleep in group g.", sleepy_params, 1,
     AIOD_TYPE_STRING, sleepy, 1, "g"},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "good",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

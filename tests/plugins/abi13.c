/*
 * A plugin that declares ABI 1.3 (as one built against that header does):
 * the daemon must keep the rules it was written for, not asyncio's of ABI
 * 1.4 (test-abi13.c).
 */
#include <errno.h>

#include <aiod/plugin.h>

/* Sleeps 10 s; cancelled, sleeps again and returns both statuses, which
 * ABI 1.3 makes [-ECANCELED, -ECANCELED] (sticky), swallowing the
 * cancellation. */
static int sticky(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    (void)args;
    int r1 = api->sleep(t, 10);
    int r2 = api->sleep(t, 0.01);
    *ret = api->value_list();
    api->list_append(*ret, api->value_int(r1));
    api->list_append(*ret, api->value_int(r2));
    return 0;
}

static int nap(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
               aiod_value **ret) {
    (void)args;
    int r = api->sleep(t, 0.05);
    *ret = api->value_int(7);
    return r;
}

/* The ABI 1.3 timeouts: wait on no children is 0 (not -EINVAL), and a
 * wait_for timeout of 0 is no limit. Returns [wait, await_timeout, value]. */
static int timeouts(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    (void)args;
    aiod_child *c = NULL;
    aiod_value *v = NULL;
    int w = api->wait(t, NULL, 0, 0, AIOD_ALL_COMPLETED);
    int r = api->spawn(t, "abi13.nap", NULL, 0, &c);
    if (r == 0)
        r = api->await_timeout(t, c, 0, 1, &v);
    if (c)
        api->child_release(t, c);
    *ret = api->value_list();
    api->list_append(*ret, api->value_int(w));
    api->list_append(*ret, api->value_int(r));
    api->list_append(*ret, v ? v : api->value_null());
    return 0;
}

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "sticky", "Sticky cancellation.", NULL, 0, AIOD_TYPE_LIST,
     sticky},
    {sizeof(struct aiod_function), 0, "nap", "Sleeps 0.05 s, returns 7.", NULL, 0, AIOD_TYPE_INT,
     nap},
    {sizeof(struct aiod_function), 0, "timeouts", "Older timeouts.", NULL, 0, AIOD_TYPE_LIST,
     timeouts},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    1,
    3, /* what AIOD_PLUGIN_HEAD gave under the ABI 1.3 header */
    (uint32_t)sizeof(struct aiod_plugin),
    .name = "abi13",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = 3,
};

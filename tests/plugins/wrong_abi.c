/* A plugin claiming ABI major 2: the daemon must refuse it. */
#include <aiod/plugin.h>

static int noop(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    (void)t, (void)api, (void)args, (void)ret;
    return 0;
}

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "noop", "Nothing.", NULL, 0, AIOD_TYPE_NULL, noop},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    2, 0, sizeof(struct aiod_plugin), "wrongabi", "1", functions, sizeof(struct aiod_function), 1,
};

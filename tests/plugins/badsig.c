/* A required parameter after one with a default: an invalid signature. */
#include <aiod/plugin.h>

static int noop(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    (void)t, (void)api, (void)args, (void)ret;
    return 0;
}

static const struct aiod_param params[] = {{"a", AIOD_TYPE_INT, "1"}, {"b", AIOD_TYPE_INT, NULL}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "noop", "Nothing.", params, 2, AIOD_TYPE_NULL, noop},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "badsig",
    .version = "1",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = 1,
};

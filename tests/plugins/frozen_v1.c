/* Built against the frozen copy of the ABI 1.0 header (abi-1.0/): every
 * later daemon of ABI major 1 must still load it. */
#include <aiod/plugin.h>

static int answer(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    (void)t, (void)args;
    *ret = api->value_int(42);
    return 0;
}

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "answer", "The answer.", NULL, 0, AIOD_TYPE_INT, answer},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "frozen",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = 1,
};

/*
 * A plugin as another package would ship it (the deployment suite's S16):
 * built on the host against aiod/plugin.h, packed into its own .deb that
 * installs it into aiod's plugin directory.
 */
#include <errno.h>

#include <aiod/plugin.h>

static int hello(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                 aiod_value **ret) {
    (void)t;
    (void)args;
    *ret = api->value_string("hello from a packaged plugin");
    return *ret ? 0 : -ENOMEM;
}

static const struct aiod_function functions[] = {
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "hello",
        .doc = "Say hello.",
        .result_type = AIOD_TYPE_STRING,
        .fn = hello,
    },
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "thirdparty",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

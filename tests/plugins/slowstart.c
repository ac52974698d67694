/*
 * A plugin whose init and fini take their time, for test_signals.py: each
 * creates the file named by $SLOWSTART_INIT_MARKER / $SLOWSTART_FINI_MARKER
 * (when set), then waits until that file is removed (at most 60 s), so that
 * a test can send signals while the daemon starts or ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <aiod/plugin.h>

/* Creates `path`, then waits until someone removes it. */
static void hold(const char *path) {
    if (!path || !*path)
        return;
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    close(fd);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 6000 && access(path, F_OK) == 0; i++)
        nanosleep(&tick, NULL);
}

static int init(const struct aiod_api *api) {
    (void)api;
    hold(getenv("SLOWSTART_INIT_MARKER"));
    return 0;
}

static void fini(const struct aiod_api *api) {
    (void)api;
    hold(getenv("SLOWSTART_FINI_MARKER"));
}

static int ping(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    (void)t, (void)args;
    *ret = api->value_string("pong");
    return *ret ? 0 : -ENOMEM;
}

static const struct aiod_function functions[] = {
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "ping",
        .doc = "Answers pong.",
        .result_type = AIOD_TYPE_STRING,
        .fn = ping,
    },
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "slowstart",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = 1,
    .init = init,
    .fini = fini,
};

/*
 * A test plugin ("fdhog") for the fd-exhaustion test (test_limits.py).
 * hog(seconds) opens /dev/null until the daemon has no descriptor left,
 * holds them all while it sleeps (suspending, so the loop serves clients
 * meanwhile), then closes them and returns how many it held. Like blocker,
 * it does on purpose what a plugin must never do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <aiod/plugin.h>

/* More than any test's RLIMIT_NOFILE. */
#define MAX_HELD 4096

static int hog(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
               aiod_value **ret) {
    double seconds = api->get_double(args[0]);
    if (!(seconds >= 0 && seconds <= 600))
        return -EINVAL;
    int *fds = malloc(MAX_HELD * sizeof(*fds));
    if (!fds)
        return -ENOMEM;
    int n = 0;
    while (n < MAX_HELD) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    int err = n < MAX_HELD ? errno : 0;
    api->print(t, "holding %d descriptors (%s)", n, err == EMFILE ? "EMFILE" : "no EMFILE");
    int r = api->sleep(t, seconds);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    if (r < 0)
        return r;
    *ret = api->value_int(err == EMFILE ? n : -n);
    return *ret ? 0 : -ENOMEM;
}

static const struct aiod_param seconds_param[] = {{"seconds", AIOD_TYPE_DOUBLE, NULL}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "hog",
     "Hold every free descriptor for SECONDS; the count, negative without EMFILE (tests only).",
     seconds_param, 1, AIOD_TYPE_INT, hog, 0, NULL},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "fdhog",
    .version = "1",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

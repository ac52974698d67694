/*
 * Signals through the plugin API (ABI 1.4), for test_signals.py: a task
 * waiting for a signal, and a watch that counts deliveries.
 */
#include <errno.h>
#include <signal.h>

#include <aiod/plugin.h>

static aiod_sigwatch *usr2_watch;
static int usr2_seen;

static void on_usr2(int signo, void *data) {
    (void)signo, (void)data;
    usr2_seen++;
}

static int init(const struct aiod_api *api) {
    return api->signal_watch(SIGUSR2, on_usr2, NULL, &usr2_watch);
}

static void fini(const struct aiod_api *api) {
    api->signal_unwatch(usr2_watch);
}

/* Waits for `signo` (at most `timeout` s), prints "got signal N", then
 * sleeps `after` s: a shutdown's cancellation reaches it there. Returns
 * wait_signal's status. */
static int wait_for(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    int signo = (int)api->get_int(args[0]);
    int r = api->wait_signal(t, signo, api->get_double(args[1]));
    if (r < 0)
        return r;
    api->print(t, "got signal %d", signo);
    r = api->sleep(t, api->get_double(args[2]));
    if (r < 0) {
        api->print(t, "then %s", r == -ECANCELED ? "cancelled" : "error");
        return r;
    }
    *ret = api->value_int(signo);
    return 0;
}

/* How many SIGUSR2 the plugin's watch saw. */
static int usr2_count(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    (void)t, (void)args;
    *ret = api->value_int(usr2_seen);
    return 0;
}

static const struct aiod_param wait_params[] = {
    {"signo", AIOD_TYPE_INT, NULL},
    {"timeout", AIOD_TYPE_DOUBLE, "1e300"},
    {"after", AIOD_TYPE_DOUBLE, "0"},
};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "wait", "Waits for a signal.", wait_params, 3, AIOD_TYPE_INT,
     wait_for, 0, NULL, 0},
    {sizeof(struct aiod_function), 0, "usr2_count", "SIGUSR2 seen by the watch.", NULL, 0,
     AIOD_TYPE_INT, usr2_count, 0, NULL, 0},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "sigwait",
    .version = "1.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = 2,
    .init = init,
    .fini = fini,
};

/*
 * A test plugin ("blocker") for the systemd tests. block() holds the event
 * loop on purpose (it busy-waits without ever suspending), which is exactly
 * what a plugin must never do: the watchdog test uses it to show that a hung
 * loop stops the WATCHDOG=1 pings. hold() and generation() tell which build
 * of the plugin runs: the same source is built as generation 1 (blocker/)
 * and generation 2 (blocker2/, BLOCKER_GENERATION=2) for the reload test.
 */
#include <errno.h>
#include <time.h>

#include <aiod/plugin.h>

#ifndef BLOCKER_GENERATION
#define BLOCKER_GENERATION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Busy-waits `seconds` on the loop's thread, never suspending. */
static int block(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                 aiod_value **ret) {
    (void)t;
    double seconds = api->get_double(args[0]);
    if (!(seconds >= 0 && seconds <= 600))
        return -EINVAL;
    double end = now() + seconds;
    volatile unsigned long spins = 0;
    while (now() < end)
        spins++;
    *ret = api->value_double(seconds);
    return *ret ? 0 : -ENOMEM;
}

/* Sleeps properly (suspending), then names the generation it ran on. */
static int hold(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    api->print(t, "holding on generation %d", BLOCKER_GENERATION);
    int r = api->sleep(t, api->get_double(args[0]));
    if (r < 0)
        return r;
    *ret = api->value_string("generation " STR(BLOCKER_GENERATION));
    return *ret ? 0 : -ENOMEM;
}

static int generation(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    (void)t, (void)args;
    *ret = api->value_int(BLOCKER_GENERATION);
    return *ret ? 0 : -ENOMEM;
}

static const struct aiod_param seconds_param[] = {{"seconds", AIOD_TYPE_DOUBLE, NULL}};

static const struct aiod_function functions[] = {
    {sizeof(struct aiod_function), 0, "block", "Hold the event loop for SECONDS (tests only).",
     seconds_param, 1, AIOD_TYPE_DOUBLE, block, 0, NULL},
    {sizeof(struct aiod_function), 0, "hold", "Sleep SECONDS, return the generation.",
     seconds_param, 1, AIOD_TYPE_STRING, hold, 0, NULL},
    {sizeof(struct aiod_function), 0, "generation", "Which build of this plugin runs.", NULL, 0,
     AIOD_TYPE_INT, generation, 0, NULL},
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "blocker",
    .version = STR(BLOCKER_GENERATION),
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};

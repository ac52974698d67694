/*
 * For unit tests that run real tasks: the daemon's loop, task table,
 * scheduler and plugin registry, set up as aiod does, with one plugin
 * loaded, and torn down again.
 */
#ifndef AIOD_TEST_DAEMON_LOOP_H
#define AIOD_TEST_DAEMON_LOOP_H

#include <syslog.h>

#include <uv.h>

#include "api/api.h"
#include "system/config.h"
#include "core/coro.h"
#include "system/log.h"
#include "host/registry.h"
#include "core/finish.h"
#include "core/run.h"
#include "core/sched.h"
#include "core/wait.h"
#include "core/task.h"

/* Initialises `loop` and the daemon's parts on it and loads the plugin at
 * `plugin_path`. 0 or a negative errno (of the plugin load). */
static inline int daemon_loop_start(uv_loop_t *loop, const char *plugin_path) {
    config_defaults();
    log_setup(LOG_WARNING);
    coro_configure(cfg.stack_size);
    uv_loop_init(loop);
    task_table_init(loop);
    sched_init(loop);
    run_init(loop, api_table(), NULL);
    plugin_registry_init(api_table());
    return plugin_load_file(plugin_path);
}

/* Drops every task, runs the close callbacks and closes the loop: UV_EBUSY
 * if a handle was left open. */
static inline int daemon_loop_stop(uv_loop_t *loop) {
    run_done();
    sched_done();
    task_table_done();
    uv_run(loop, UV_RUN_DEFAULT);
    plugin_registry_done();
    coro_pool_clear();
    return uv_loop_close(loop);
}

#endif

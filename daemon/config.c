/*
 * Settings defaults and the socket path rule (config.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "alloc.h"
#include "limits.h"

config cfg;

void config_defaults(void) {
    cfg = (config){
        .default_plugin_dir = true,
        .log_level = LOG_INFO,
        .max_frame = LIMIT_MAX_FRAME,
        .max_in_flight = LIMIT_MAX_IN_FLIGHT,
        .max_write_queue = LIMIT_MAX_WRITE_QUEUE,
        .max_connections = LIMIT_MAX_CONNECTIONS,
        .max_tasks = LIMIT_MAX_TASKS,
        .max_output_lines = LIMIT_MAX_OUTPUT_LINES,
        .retain_count = LIMIT_RETAIN_COUNT,
        .retain_seconds = LIMIT_RETAIN_SECONDS,
        .shutdown_grace = LIMIT_SHUTDOWN_GRACE,
        .stack_size = LIMIT_STACK_SIZE,
    };
}

void config_done(void) {
    for (size_t i = 0; i < cfg.n_plugin_dirs; i++)
        free(cfg.plugin_dirs[i]);
    free(cfg.plugin_dirs);
    free(cfg.socket_path);
    cfg.plugin_dirs = NULL;
    cfg.n_plugin_dirs = 0;
    cfg.socket_path = NULL;
}

int config_add_plugin_dir(const char *dir) {
    char **d = alloc_realloc(cfg.plugin_dirs, (cfg.n_plugin_dirs + 1) * sizeof(*d));
    if (!d)
        return -ENOMEM;
    cfg.plugin_dirs = d;
    d[cfg.n_plugin_dirs] = alloc_strdup(dir);
    if (!d[cfg.n_plugin_dirs])
        return -ENOMEM;
    cfg.n_plugin_dirs++;
    return 0;
}

int config_resolve_socket(const char *flag_value) {
    const char *p = flag_value;
    char buf[4096];
    if (!p || !*p)
        p = getenv("AIOD_SOCKET");
    if (!p || !*p) {
        if (geteuid() == 0)
            p = "/run/aiod/aiod.sock";
        else {
            const char *xdg = getenv("XDG_RUNTIME_DIR");
            if (!xdg || !*xdg)
                return -ENOENT;
            snprintf(buf, sizeof(buf), "%s/aiod/aiod.sock", xdg);
            p = buf;
        }
    }
    char *s = alloc_strdup(p);
    if (!s)
        return -ENOMEM;
    free(cfg.socket_path);
    cfg.socket_path = s;
    return 0;
}

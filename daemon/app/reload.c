/*
 * Reload (reload.h).
 */
#include "app/reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/aiod_limits.h"
#include "cluster/cluster.h"
#include "core/limit.h"
#include "core/sched.h"
#include "system/config.h"
#include "system/identity.h"
#include "system/log.h"
#include "macro.h"
#include "system/sd.h"
#include "core/task.h"
#include "host/registry.h"

#ifndef AIOD_PLUGIN_DIR
#define AIOD_PLUGIN_DIR "/usr/lib/aiod/plugins"
#endif

/* The configured plugin directories, then the installed one. */
/* A `limit = FUNCTION N` that names no loaded function (a typo such as
 * demo.slep) would limit nothing without a word: said at start and at each
 * reload. It stays: the plugin may come later. */
static void warn_limits_of_no_function(void) {
    for (size_t i = 0; i < cfg.n_limits; i++) {
        char name[256];
        unsigned long max;
        if (strncmp(cfg.limits[i], "group ", 6) == 0 ||
            sscanf(cfg.limits[i], "%255s %lu", name, &max) != 2)
            continue;
        if (!plugin_lookup(name))
            log_warning("limit = %s: no plugin loaded has the function %s; the limit applies "
                        "once one does",
                        cfg.limits[i], name);
    }
}

void reload_sync_plugins(plugin_sync_counts *ret) {
    const char *dirs[LIMIT_PLUGIN_DIRS];
    size_t n = 0;
    for (size_t i = 0; i < cfg.n_plugin_dirs && n < ELEMENTSOF(dirs) - 1; i++)
        dirs[n++] = cfg.plugin_dirs[i];
    if (cfg.n_plugin_dirs > ELEMENTSOF(dirs) - 1)
        log_warning("more than %zu plugin directories; the rest are ignored", ELEMENTSOF(dirs) - 1);
    if (cfg.default_plugin_dir)
        dirs[n++] = AIOD_PLUGIN_DIR;
    plugin_sync(dirs, n, ret);
    /* The queues' streams follow the functions loaded. */
    cluster_plugins_changed();
    warn_limits_of_no_function();
}

int reload_run(const char *why, reload_result *ret, char *err, size_t err_len) {
    char status[300];
    size_t old_stack = cfg.stack_size;
    uint32_t old_stall = cfg.stall_warning_ms;

    log_info("reloading (asked by %s)", why);
    sd_reloading();
    int r = config_load(err, err_len);
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, err_len, "out of memory");
        log_error("reload failed, keeping the old settings and plugins: %s", err);
        snprintf(status, sizeof(status), "reload failed: %s", err);
        sd_reloaded(status);
        return r;
    }
    log_set_max_priority(cfg.log_level);
    if (limit_load_rules(cfg.limits, cfg.n_limits) < 0)
        log_error("out of memory applying the concurrency limits; some keep their old value");
    /* Group membership may have changed too. */
    identity_flush();
    if (cfg.stall_warning_ms != old_stall) {
        log_notice("stall_warning_ms changed to %u; it takes effect when aiod restarts",
                   cfg.stall_warning_ms);
        cfg.stall_warning_ms = old_stall;
    }
    if (cfg.stack_size != old_stack) {
        log_notice("stack_size changed to %zu; it takes effect when aiod restarts", cfg.stack_size);
        cfg.stack_size = old_stack;
    }
    task_retention_changed();
    reload_result res = {0};
    reload_sync_plugins(&res.counts);
    /* Limits raised or removed let waiting tasks run now. */
    limit_start_waiting(sched_start);
    res.plugins = plugin_count();
    res.retired = plugin_retired_count();
    log_info("reloaded: %u plugins added, %u replaced, %u removed, %u unchanged, %u refused; "
             "%zu loaded, %zu old generations kept",
             res.counts.added, res.counts.replaced, res.counts.removed, res.counts.unchanged,
             res.counts.failed, res.plugins, res.retired);
    sd_reloaded(NULL);
    *ret = res;
    return 0;
}

void reload_handle(session *s, req *rq) {
    char why[64], err[512];
    const peer *p = &s->peer;
    if (p->uid != 0 && p->uid != geteuid()) {
        log_notice("connection %llu (uid %u pid %d): reload refused, only root and uid %u may",
                   (unsigned long long)s->c->serial, (unsigned)p->uid, (int)p->pid,
                   (unsigned)geteuid());
        req_end_error(rq, AIOD__ERROR_CODE__ERROR_NOT_ALLOWED,
                      "only root and the daemon's user (uid %u) may reload it",
                      (unsigned)geteuid());
        return;
    }
    snprintf(why, sizeof(why), "uid %u pid %d", (unsigned)p->uid, (int)p->pid);
    reload_result res;
    int r = reload_run(why, &res, err, sizeof(err));
    if (r < 0) {
        req_end_error(rq,
                      r == -ENOMEM ? AIOD__ERROR_CODE__ERROR_INTERNAL
                                   : AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT,
                      "reload failed, nothing changed: %s", err);
        return;
    }
    Aiod__Reloaded rd = AIOD__RELOADED__INIT;
    rd.added = res.counts.added;
    rd.replaced = res.counts.replaced;
    rd.removed = res.counts.removed;
    rd.unchanged = res.counts.unchanged;
    rd.failed = res.counts.failed;
    rd.plugins = (uint32_t)res.plugins;
    rd.retired = (uint32_t)res.retired;
    req_end(rq, AIOD__SERVER_MESSAGE__BODY_RELOADED, &rd);
}

/*
 * Reload: SIGHUP, `aioctl reload` (the Reload request) and systemd's
 * ExecReload all end here. The settings are built again from the defaults,
 * the settings file and the command-line flags; only if all of that is
 * valid do they replace the old ones, and then the plugin directories are
 * synced (plugin_sync: new files load, changed files load as a new
 * generation while running tasks finish on the old one, plugins whose file
 * is gone are retired). systemd hears RELOADING=1 before and READY=1 after.
 */
#ifndef AIOD_RELOAD_H
#define AIOD_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "host/registry.h"
#include "request/req.h"
#include "request/session.h"

typedef struct reload_result {
    plugin_sync_counts counts;
    /* Plugins in the registry afterwards. */
    size_t plugins;
    /* Retired generations still kept (running tasks or names in use). */
    size_t retired;
} reload_result;

/*
 * Reloads. `why` names who asked (for the log: "SIGHUP", "uid 0"). 0 with
 * *ret filled in; -EINVAL/-ENOENT/-EIO with the reason in `err` when the
 * settings file is bad (nothing changed); -ENOMEM. Logs its outcome.
 */
int reload_run(const char *why, reload_result *ret, char *err, size_t err_len);

/* Makes the loaded plugins match cfg's plugin directories (then the
 * installed one unless default_plugins = no). Start-up and reload. */
void reload_sync_plugins(plugin_sync_counts *ret);

/* The Reload request of session `s`: checks the peer may ask (root or the
 * daemon's own user), reloads, and ends `r` with Reloaded or the error. */
void reload_handle(session *s, req *r);

#endif

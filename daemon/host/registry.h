/*
 * Plugin loading and the function registry. A plugin file is checked for
 * trust (owner and write permissions), opened with dlopen, its descriptor
 * checked (ABI major, sizes, every signature) and only then its init called.
 * Functions register as "plugin.function". Every refusal is one log line that
 * names the file, and the daemon carries on without it.
 *
 * Reload (plugin_sync) loads new files, loads a changed file (another inode,
 * size or mtime at the same path) as a new generation of its plugin, and
 * retires plugins whose file is gone. A retired generation leaves the
 * registry at once, so new calls get the new code, but tasks already running
 * its code finish on it: its fini and dlclose wait until `busy` is 0
 * (plugin_release), and its names (full_name, params, which finished tasks
 * still show) stay until `refs` is 0 (plugin_unref).
 */
#ifndef AIOD_PLUGIN_INTERNAL_H
#define AIOD_PLUGIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <aiod/plugin.h>

#include "base/forward.h"
#include "base/value.h"

/* One registered function. */
struct fn_entry {
    /* "plugin.function"; owned. */
    char *full_name;
    /* The plugin's own entry (its memory stays mapped while loaded). */
    const struct aiod_function *def;
    plugin *owner;
    /* Parameters with parsed defaults; sig.function is full_name. */
    value_param *params;
    value_sig sig;
    /* limit.c's cache of this function's limiter (NULL: unlimited), valid
     * while limit_epoch matches its own. */
    void *limiter;
    unsigned limit_epoch;
};

struct plugin {
    char *path;
    /* The plugin's name, copied: still valid after dlclose. */
    char *name;
    /* Points into the shared object: only while loaded (dl != NULL). */
    const struct aiod_plugin *desc;
    void *dl;
    /* Its fini ran (plugin_registry_fini, at exit before the loop's last
     * handles close): not again when it is unloaded. */
    bool fini_done;
    /* The opened file, kept while loaded: the object is loaded from
     * /proc/self/fd/N, so two generations of one path never share a name
     * in the dynamic loader. -1 when not open. */
    int fd;
    /* Identity of the loaded file, to notice a changed one on reload. */
    uint64_t dev, ino, size, mtime_nsec;
    /* 1 for the first load of a plugin name, +1 per reload that replaced it. */
    unsigned generation;
    fn_entry *fns;
    size_t n_fns;
    /* Users of this plugin's code: tasks that have not finished (and any
     * other holder, see plugin_hold); a retired plugin is unloaded at zero. */
    unsigned busy;
    /* Holders of its metadata (a task keeps `fn` until it is freed); a
     * retired, unloaded plugin is freed at zero. */
    unsigned refs;
    /* No longer in the registry (replaced or its file is gone). */
    bool retired;
    /* Scratch for plugin_sync: its file was seen. */
    bool mark;
};

/* What one plugin_sync did. */
typedef struct plugin_sync_counts {
    unsigned added;     /* files loaded for the first time */
    unsigned replaced;  /* changed files loaded as a new generation */
    unsigned removed;   /* plugins retired because their file is gone */
    unsigned unchanged; /* loaded plugins whose file did not change */
    unsigned failed;    /* files refused (each logged) */
} plugin_sync_counts;

/* Sets up the registry; `api` is handed to init/fini. 0, -ENOMEM. */
int plugin_registry_init(const struct aiod_api *api);
/* Calls fini and unloads every plugin. */
void plugin_registry_done(void);
/* Runs every plugin's fini (once each), while the loop can still run the
 * close callbacks of the handles they close: at exit, before the daemon
 * closes the handles that are left. */
void plugin_registry_fini(void);

/*
 * Loads every *.so in `dir` in name order. Returns the number loaded; a
 * missing directory is logged at debug level and counts as 0. Refused files
 * are logged and skipped.
 */
int plugin_load_dir(const char *dir);
/* Loads one file. 0 or a negative errno (already logged). */
int plugin_load_file(const char *path);

/*
 * Makes the loaded plugins match the *.so files in `dirs` (in order; NULL
 * entries are skipped): loads new ones, reloads changed ones as a new
 * generation, retires those whose file is gone. Also unloads retired
 * plugins nobody uses any more. Never fails as a whole: each refused file is
 * logged and counted.
 */
void plugin_sync(const char *const *dirs, size_t n_dirs, plugin_sync_counts *ret);

/*
 * Holding a plugin: a task (task_new / task_finish / task free) or anything
 * else that may still run a plugin's code or show its names (thread-pool
 * work whose release callback is plugin code, a child process handler).
 * plugin_hold takes one of each; plugin_release gives back the code use (a
 * retired plugin is unloaded when the last one goes) and plugin_unref the
 * names (a retired, unloaded plugin is freed when the last one goes).
 */
void plugin_hold(plugin *p);
void plugin_release(plugin *p);
void plugin_unref(plugin *p);

/* Retired generations still loaded (busy) and kept for their names. */
size_t plugin_retired_count(void);

/* The function named "plugin.function", or NULL. */
fn_entry *plugin_lookup(const char *full_name);

/* Loaded plugins in load order, for listing. */
size_t plugin_count(void);
plugin *plugin_at(size_t i);

/*
 * Validates a descriptor without loading anything (also used by tests):
 * 0 or -EINVAL with the reason in `why`.
 */
int plugin_validate(const struct aiod_plugin *desc, char *why, size_t why_len);

#endif

/*
 * Plugin loading and the function registry. A plugin file is checked for
 * trust (owner and write permissions), opened with dlopen, its descriptor
 * checked (ABI major, sizes, every signature) and only then its init called.
 * Functions register as "plugin.function". Every refusal is one log line that
 * names the file, and the daemon carries on without it.
 */
#ifndef AIOD_PLUGIN_INTERNAL_H
#define AIOD_PLUGIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <aiod/plugin.h>

#include "forward.h"
#include "value.h"

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
};

struct plugin {
    char *path;
    const struct aiod_plugin *desc;
    void *dl;
    fn_entry *fns;
    size_t n_fns;
    /* Tasks running this plugin's code; it is unloaded only at zero. */
    unsigned busy;
};

/* Sets up the registry; `api` is handed to init/fini. 0, -ENOMEM. */
int plugin_registry_init(const struct aiod_api *api);
/* Calls fini and unloads every plugin. */
void plugin_registry_done(void);

/*
 * Loads every *.so in `dir` in name order. Returns the number loaded; a
 * missing directory is logged at debug level and counts as 0. Refused files
 * are logged and skipped.
 */
int plugin_load_dir(const char *dir);
/* Loads one file. 0 or a negative errno (already logged). */
int plugin_load_file(const char *path);

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

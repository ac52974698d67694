/*
 * Plugin loader and function registry (plugin.h).
 *
 * Order of checks for a file, each refusal logged once with the path:
 * trust (regular file, owned by root or the daemon's user, not writable by
 * group or others, directory likewise), dlopen(RTLD_NOW | RTLD_LOCAL), the
 * `aiod_plugin` symbol, ABI major and minimum sizes, every signature, the
 * plugin name not taken, then init. Anything after dlopen that fails is
 * undone with dlclose.
 */
#include "plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "hashmap.h"
#include "limits.h"
#include "log.h"
#include "macro.h"

/* Sizes of the ABI 1.0 structs: older plugins may not be smaller. */
#define MIN_PLUGIN_SIZE (offsetof(struct aiod_plugin, fini) + sizeof(void (*)(void)))
#define MIN_FUNCTION_SIZE (offsetof(struct aiod_function, fn) + sizeof(aiod_task_fn))
#define MAX_FUNCTIONS 4096u
#define MAX_PARAMS 64u

static const struct aiod_api *registry_api;
static hashmap *functions; /* full name -> fn_entry */
static plugin **plugins;
static size_t n_plugins;

int plugin_registry_init(const struct aiod_api *api) {
    registry_api = api;
    functions = hashmap_new(1);
    return functions ? 0 : -ENOMEM;
}

static void plugin_free(plugin *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n_fns; i++) {
        fn_entry *f = &p->fns[i];
        if (f->params)
            for (size_t j = 0; j < f->sig.n_params; j++)
                pbvalue_free(f->params[j].default_value);
        free(f->params);
        free(f->full_name);
    }
    free(p->fns);
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
}

void plugin_registry_done(void) {
    for (size_t i = n_plugins; i-- > 0;) {
        plugin *p = plugins[i];
        if (p->desc->fini)
            p->desc->fini(registry_api);
        for (size_t j = 0; j < p->n_fns; j++)
            hashmap_remove_str(functions, p->fns[j].full_name);
        plugin_free(p);
    }
    free(plugins);
    plugins = NULL;
    n_plugins = 0;
    hashmap_free(functions);
    functions = NULL;
}

static bool valid_name(const char *s, bool lower_only) {
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (const char *c = s; *c; c++) {
        bool alpha = (*c >= 'a' && *c <= 'z') || *c == '_' ||
                     (!lower_only && *c >= 'A' && *c <= 'Z');
        bool digit = *c >= '0' && *c <= '9';
        if (!alpha && !(digit && c != s))
            return false;
    }
    return true;
}

static const struct aiod_function *function_at(const struct aiod_plugin *d, size_t i) {
    return (const struct aiod_function *)((const char *)d->functions + i * d->function_size);
}

int plugin_validate(const struct aiod_plugin *d, char *why, size_t len) {
    if (d->abi_major != AIOD_ABI_MAJOR) {
        snprintf(why, len, "built for ABI %u, this daemon speaks ABI %u", d->abi_major,
                 AIOD_ABI_MAJOR);
        return -EINVAL;
    }
    if (d->struct_size < MIN_PLUGIN_SIZE) {
        snprintf(why, len, "descriptor is %u bytes, at least %zu expected", d->struct_size,
                 (size_t)MIN_PLUGIN_SIZE);
        return -EINVAL;
    }
    if (!valid_name(d->name, true)) {
        snprintf(why, len, "invalid plugin name (want [a-z_][a-z0-9_]*, at most 64)");
        return -EINVAL;
    }
    if (!d->version) {
        snprintf(why, len, "no version string");
        return -EINVAL;
    }
    if (!d->functions || d->n_functions == 0 || d->n_functions > MAX_FUNCTIONS) {
        snprintf(why, len, "needs between 1 and %u functions", MAX_FUNCTIONS);
        return -EINVAL;
    }
    if (d->function_size < MIN_FUNCTION_SIZE) {
        snprintf(why, len, "function entries are %u bytes, at least %zu expected",
                 d->function_size, (size_t)MIN_FUNCTION_SIZE);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < d->n_functions; i++) {
        const struct aiod_function *f = function_at(d, i);
        const char *n = f->name ? f->name : "?";
        if (f->struct_size < MIN_FUNCTION_SIZE || f->struct_size > d->function_size) {
            snprintf(why, len, "function #%u: struct_size %u out of range", i, f->struct_size);
            return -EINVAL;
        }
        if (!valid_name(f->name, false)) {
            snprintf(why, len, "function #%u: invalid name", i);
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(function_at(d, j)->name, f->name) == 0) {
                snprintf(why, len, "function '%s' declared twice", n);
                return -EINVAL;
            }
        if (f->flags & ~AIOD_FN_KNOWN_FLAGS) {
            snprintf(why, len, "function '%s': unknown flag bits 0x%x", n,
                     f->flags & ~AIOD_FN_KNOWN_FLAGS);
            return -EINVAL;
        }
        if (!f->doc || !f->fn) {
            snprintf(why, len, "function '%s': missing doc or entry point", n);
            return -EINVAL;
        }
        if (f->result_type > AIOD_TYPE_MAP) {
            snprintf(why, len, "function '%s': unknown result type %u", n, f->result_type);
            return -EINVAL;
        }
        if (f->n_params > MAX_PARAMS || (f->n_params && !f->params)) {
            snprintf(why, len, "function '%s': bad parameter list", n);
            return -EINVAL;
        }
        bool seen_default = false;
        for (uint32_t j = 0; j < f->n_params; j++) {
            const struct aiod_param *p = &f->params[j];
            if (!valid_name(p->name, false)) {
                snprintf(why, len, "function '%s': parameter #%u: invalid name", n, j);
                return -EINVAL;
            }
            if (p->type > AIOD_TYPE_MAP) {
                snprintf(why, len, "function '%s': parameter '%s': unknown type %u", n, p->name,
                         p->type);
                return -EINVAL;
            }
            if (p->default_text) {
                char vwhy[200];
                Aiod__Value *v = NULL;
                int r = value_from_text(p->type, p->default_text, &v, vwhy, sizeof(vwhy));
                pbvalue_free(v);
                if (r < 0) {
                    snprintf(why, len, "function '%s': parameter '%s': default: %s", n, p->name,
                             r == -EINVAL ? vwhy : "out of memory");
                    return -EINVAL;
                }
                seen_default = true;
            } else if (seen_default) {
                snprintf(why, len,
                         "function '%s': required parameter '%s' after one with a default", n,
                         p->name);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Refuses files others could have written: a plugin runs as the daemon. */
static int check_trust(const char *path, char *why, size_t len) {
    struct stat st;
    uid_t me = geteuid();
    if (stat(path, &st) < 0) {
        snprintf(why, len, "cannot stat: %s", strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, len, "not a regular file");
        return -EINVAL;
    }
    if ((st.st_uid != 0 && st.st_uid != me) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(why, len, "file is writable by a user other than root or the daemon's (uid %u)",
                 (unsigned)me);
        return -EPERM;
    }
    _cleanup_free_ char *copy = alloc_strdup(path);
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    if (stat(dir, &st) < 0) {
        snprintf(why, len, "cannot stat its directory: %s", strerror(errno));
        return -errno;
    }
    if ((st.st_uid != 0 && st.st_uid != me) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(why, len, "directory %s is writable by a user other than root or the daemon's",
                 dir);
        return -EPERM;
    }
    return 0;
}

static int register_functions(plugin *p) {
    const struct aiod_plugin *d = p->desc;
    p->fns = alloc_calloc(d->n_functions, sizeof(*p->fns));
    if (!p->fns)
        return -ENOMEM;
    for (uint32_t i = 0; i < d->n_functions; i++) {
        const struct aiod_function *f = function_at(d, i);
        fn_entry *e = &p->fns[i];
        size_t nl = strlen(d->name) + 1 + strlen(f->name) + 1;
        e->full_name = alloc_malloc(nl);
        if (!e->full_name)
            return -ENOMEM;
        snprintf(e->full_name, nl, "%s.%s", d->name, f->name);
        e->def = f;
        e->owner = p;
        e->params = alloc_calloc(f->n_params ? f->n_params : 1, sizeof(*e->params));
        if (!e->params)
            return -ENOMEM;
        p->n_fns = i + 1;
        e->sig.function = e->full_name;
        e->sig.params = e->params;
        e->sig.n_params = f->n_params;
        for (uint32_t j = 0; j < f->n_params; j++) {
            char why[200];
            e->params[j].name = f->params[j].name;
            e->params[j].type = f->params[j].type;
            if (f->params[j].default_text &&
                value_from_text(f->params[j].type, f->params[j].default_text,
                                &e->params[j].default_value, why, sizeof(why)) < 0)
                return -ENOMEM; /* validated before: only OOM gets here */
        }
    }
    for (size_t i = 0; i < p->n_fns; i++) {
        int r = hashmap_put_str(functions, p->fns[i].full_name, &p->fns[i]);
        if (r < 0) {
            for (size_t j = 0; j < i; j++)
                hashmap_remove_str(functions, p->fns[j].full_name);
            return r;
        }
    }
    return 0;
}

static bool name_taken(const char *name, const char **ret_path) {
    for (size_t i = 0; i < n_plugins; i++)
        if (strcmp(plugins[i]->desc->name, name) == 0) {
            *ret_path = plugins[i]->path;
            return true;
        }
    return false;
}

int plugin_load_file(const char *path) {
    char why[512];
    const char *other;
    int r;

    r = check_trust(path, why, sizeof(why));
    if (r < 0)
        return log_error_errno(r, "plugin %s refused: %s; not loaded", path, why);

    plugin *p = alloc_calloc(1, sizeof(*p));
    if (!p || !(p->path = alloc_strdup(path))) {
        free(p);
        return log_error_errno(-ENOMEM, "plugin %s: out of memory; not loaded", path);
    }
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_error("plugin %s cannot be opened: %s; not loaded", path, dlerror());
        plugin_free(p);
        return -ENOEXEC;
    }
    p->desc = dlsym(p->dl, "aiod_plugin");
    if (!p->desc) {
        log_error("plugin %s has no 'aiod_plugin' descriptor symbol; not loaded", path);
        plugin_free(p);
        return -ENOEXEC;
    }
    if (plugin_validate(p->desc, why, sizeof(why)) < 0) {
        const char *name = p->desc->name && valid_name(p->desc->name, true) ? p->desc->name : "?";
        log_error("plugin '%s' (%s) %s; not loaded", name, path, why);
        plugin_free(p);
        return -EINVAL;
    }
    if (name_taken(p->desc->name, &other)) {
        log_error("plugin '%s' (%s) is already loaded from %s; not loaded", p->desc->name, path,
                  other);
        plugin_free(p);
        return -EEXIST;
    }
    plugin **np = alloc_realloc(plugins, (n_plugins + 1) * sizeof(*np));
    if (!np) {
        plugin_free(p);
        return log_error_errno(-ENOMEM, "plugin %s: out of memory; not loaded", path);
    }
    plugins = np;
    r = register_functions(p);
    if (r < 0) {
        plugin_free(p);
        return log_error_errno(r, "plugin %s: cannot register its functions; not loaded", path);
    }
    if (p->desc->init) {
        r = p->desc->init(registry_api);
        if (r < 0) {
            for (size_t i = 0; i < p->n_fns; i++)
                hashmap_remove_str(functions, p->fns[i].full_name);
            plugin_free(p);
            return log_error_errno(r > -4096 ? r : -EIO, "plugin %s: init failed; not loaded",
                                   path);
        }
    }
    plugins[n_plugins++] = p;
    log_info("loaded plugin '%s' %s (%zu functions) from %s", p->desc->name, p->desc->version,
             p->n_fns, path);
    return 0;
}

static int so_filter(const struct dirent *e) {
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

int plugin_load_dir(const char *dir) {
    struct dirent **names;
    int n = scandir(dir, &names, so_filter, alphasort);
    if (n < 0) {
        log_debug_errno(-errno, "plugin directory %s not readable, ignoring", dir);
        return 0;
    }
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (plugin_load_file(path) == 0)
            loaded++;
        free(names[i]);
    }
    free(names);
    return loaded;
}

fn_entry *plugin_lookup(const char *full_name) {
    return functions ? hashmap_get_str(functions, full_name) : NULL;
}

plugin *plugin_at(size_t i) {
    return i < n_plugins ? plugins[i] : NULL;
}

size_t plugin_count(void) {
    return n_plugins;
}

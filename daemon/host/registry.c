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
#include "host/registry.h"

#include <assert.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "base/hashmap.h"
#include "base/aiod_limits.h"
#include "system/log.h"
#include "system/stall.h"
#include "macro.h"

#ifndef AIOD_PLUGIN_DIR
#define AIOD_PLUGIN_DIR "/usr/lib/aiod/plugins"
#endif

/* Sizes of the ABI 1.0 structs: older plugins may not be smaller. */
#define MIN_PLUGIN_SIZE (offsetof(struct aiod_plugin, fini) + sizeof(void (*)(void)))
#define MIN_FUNCTION_SIZE (offsetof(struct aiod_function, fn) + sizeof(aiod_task_fn))

static const struct aiod_api *registry_api;
static hashmap *functions; /* full name -> fn_entry */
/* Plugins in the registry, in load order. */
static plugin **plugins;
static size_t n_plugins;
/* Retired generations: still running tasks (busy) or still named by them. */
static plugin **retired;
static size_t n_retired;

int plugin_registry_init(const struct aiod_api *api) {
    registry_api = api;
    functions = hashmap_new(1);
    return functions ? 0 : -ENOMEM;
}

/*
 * dlclose, and close the descriptor the object was opened by, unless the
 * object stays in memory anyway (C++ code with unique symbols, or linked
 * with -z nodelete): glibc finds a loaded object by the name it was opened
 * by before it looks at the file, so a later plugin opened on the same
 * /proc/self/fd/N would be handed this one's code. Its descriptor is then
 * kept open for good, and the name stays this object's.
 */
static void close_code(plugin *p) {
    if (p->dl) {
        dlclose(p->dl);
        p->dl = NULL;
    }
    if (p->fd < 0)
        return;
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p->fd);
    void *still = dlopen(fdpath, RTLD_LAZY | RTLD_NOLOAD);
    if (still) {
        dlclose(still);
        log_info("plugin %s stays in memory after it is unloaded (C++ code with unique "
                 "symbols, or linked with -z nodelete); its descriptor %d stays open, so that "
                 "no later file is taken for it",
                 p->path ? p->path : "?", p->fd);
    } else
        close(p->fd);
    p->fd = -1;
}

/* fini, then dlclose: the code is gone, the names stay. */
static void run_fini(plugin *p) {
    if (p->dl && p->desc && p->desc->fini && !p->fini_done) {
        p->fini_done = true;
        p->desc->fini(registry_api);
    }
}

static void unload_code(plugin *p) {
    if (!p->dl)
        return;
    run_fini(p);
    p->desc = NULL;
    close_code(p);
}

void plugin_registry_fini(void) {
    for (size_t i = n_plugins; i-- > 0;)
        run_fini(plugins[i]);
    for (size_t i = n_retired; i-- > 0;)
        run_fini(retired[i]);
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
        stall_forget_name(f->full_name);
        free(f->full_name);
    }
    free(p->fns);
    close_code(p);
    free(p->path);
    free(p->name);
    free(p);
}

static void unregister_functions(plugin *p) {
    for (size_t j = 0; j < p->n_fns; j++)
        if (hashmap_get_str(functions, p->fns[j].full_name) == &p->fns[j])
            hashmap_remove_str(functions, p->fns[j].full_name);
}

void plugin_registry_done(void) {
    for (size_t i = n_plugins; i-- > 0;) {
        unregister_functions(plugins[i]);
        unload_code(plugins[i]);
        plugin_free(plugins[i]);
    }
    for (size_t i = n_retired; i-- > 0;) {
        unload_code(retired[i]);
        plugin_free(retired[i]);
    }
    free(plugins);
    free(retired);
    plugins = retired = NULL;
    n_plugins = n_retired = 0;
    hashmap_free(functions);
    functions = NULL;
}

static void drop_retired(size_t i) {
    plugin *p = retired[i];
    log_debug("plugin '%s' generation %u (%s) freed", p->name, p->generation, p->path);
    plugin_free(p);
    retired[i] = retired[--n_retired];
}

static ssize_t retired_index(const plugin *p) {
    for (size_t i = 0; i < n_retired; i++)
        if (retired[i] == p)
            return (ssize_t)i;
    return -1;
}

/* Whether holders count refs (plugin_hold is used): only then may a retired
 * plugin's names be freed before exit. */
static bool refs_tracked;

void plugin_hold(plugin *p) {
    refs_tracked = true;
    p->busy++;
    p->refs++;
}

/* A retired plugin's names may go: unloaded and nobody refers to them. */
static void maybe_free(plugin *p) {
    if (!refs_tracked || p->refs > 0 || p->dl)
        return;
    ssize_t i = retired_index(p);
    if (i >= 0)
        drop_retired((size_t)i);
}

void plugin_release(plugin *p) {
    assert(p->busy > 0);
    if (--p->busy > 0 || !p->retired || !p->dl)
        return;
    log_info("plugin '%s' generation %u (%s): its last task ended; unloading it", p->name,
             p->generation, p->path);
    unload_code(p);
    maybe_free(p);
}

void plugin_unref(plugin *p) {
    assert(p->refs > 0);
    if (--p->refs == 0 && p->retired)
        maybe_free(p);
}

size_t plugin_retired_count(void) {
    return n_retired;
}

static bool valid_name(const char *s, bool lower_only) {
    if (!s || !*s || strlen(s) > LIMIT_PLUGIN_NAME)
        return false;
    for (const char *c = s; *c; c++) {
        bool alpha =
            (*c >= 'a' && *c <= 'z') || *c == '_' || (!lower_only && *c >= 'A' && *c <= 'Z');
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
        snprintf(why, len, "invalid plugin name (want [a-z_][a-z0-9_]*, at most %u)",
                 LIMIT_PLUGIN_NAME);
        return -EINVAL;
    }
    if (!d->version) {
        snprintf(why, len, "no version string");
        return -EINVAL;
    }
    if (!d->functions || d->n_functions == 0 || d->n_functions > LIMIT_PLUGIN_FUNCTIONS) {
        snprintf(why, len, "needs between 1 and %u functions", LIMIT_PLUGIN_FUNCTIONS);
        return -EINVAL;
    }
    if (d->function_size < MIN_FUNCTION_SIZE) {
        snprintf(why, len, "function entries are %u bytes, at least %zu expected", d->function_size,
                 (size_t)MIN_FUNCTION_SIZE);
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
        if (f->n_params > LIMIT_FUNCTION_PARAMS) {
            snprintf(why, len, "function '%s': %u parameters, at most %u", n, f->n_params,
                     LIMIT_FUNCTION_PARAMS);
            return -EINVAL;
        }
        if (f->n_params && !f->params) {
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
            if ((p->type & ~AIOD_TYPE_REST) > AIOD_TYPE_MAP) {
                snprintf(why, len, "function '%s': parameter '%s': unknown type %u", n, p->name,
                         p->type);
                return -EINVAL;
            }
            if (p->type & AIOD_TYPE_REST) {
                /* *args: last, and always optional (an empty list). */
                if (j + 1 != f->n_params || p->default_text) {
                    snprintf(why, len,
                             "function '%s': rest parameter '%s' must be the last one and "
                             "have no default",
                             n, p->name);
                    return -EINVAL;
                }
                continue;
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

/* A plugin file only root or the daemon's user can have written. */
static int file_trusted(const struct stat *st, char *why, size_t len) {
    uid_t me = geteuid();
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, len, "not a regular file");
        return -EINVAL;
    }
    if ((st->st_uid != 0 && st->st_uid != me) || (st->st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(why, len, "file is writable by a user other than root or the daemon's (uid %u)",
                 (unsigned)me);
        return -EPERM;
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
    int r = file_trusted(&st, why, len);
    if (r < 0)
        return r;
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

/* Enters the plugin's functions into the registry: all or none. */
static int put_all(plugin *p) {
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
    return put_all(p);
}

/* Another registered plugin with this name (not `except`)? */
static bool name_taken(const char *name, const plugin *except, const char **ret_path) {
    for (size_t i = 0; i < n_plugins; i++)
        if (plugins[i] != except && strcmp(plugins[i]->name, name) == 0) {
            *ret_path = plugins[i]->path;
            return true;
        }
    return false;
}

static plugin *find_by_path(const char *path) {
    for (size_t i = 0; i < n_plugins; i++)
        if (strcmp(plugins[i]->path, path) == 0)
            return plugins[i];
    return NULL;
}

static uint64_t mtime_nsec(const struct stat *st) {
    return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static bool same_file(const plugin *p, const struct stat *st) {
    return p->dev == (uint64_t)st->st_dev && p->ino == (uint64_t)st->st_ino &&
           p->size == (uint64_t)st->st_size && p->mtime_nsec == mtime_nsec(st);
}

/* Moves a plugin from the registry to the retired list. */
static int retire(plugin *p) {
    plugin **r = alloc_realloc(retired, (n_retired + 1) * sizeof(*r));
    if (!r)
        return -ENOMEM;
    retired = r;
    unregister_functions(p);
    for (size_t i = 0; i < n_plugins; i++)
        if (plugins[i] == p) {
            memmove(&plugins[i], &plugins[i + 1], (n_plugins - i - 1) * sizeof(*plugins));
            n_plugins--;
            break;
        }
    p->retired = true;
    retired[n_retired++] = p;
    if (p->busy == 0) {
        unload_code(p);
        maybe_free(p);
    }
    return 0;
}

/*
 * Opens, checks and dlopens `path`. The file is opened once, its owner and
 * mode are checked on that descriptor, and everything after uses it, so the
 * file checked is the file loaded.
 */
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3; older kernels refuse it with EINVAL */
#endif

/*
 * A private, sealed copy of the plugin file open as `fd` (`size` bytes), to
 * be mapped instead of the file itself: a plugin file rewritten in place
 * (a plain `cp` over it) then changes nothing under the running code, where
 * the kernel would drop the mapped pages of the truncated file and the
 * next call into the plugin would crash the daemon. Such a change is a
 * change like any other: the next reload loads it as a new generation.
 * The copy's descriptor, or a negative errno (the caller then maps the
 * file itself, as before).
 */
static int private_copy(int fd, const char *name, uint64_t size) {
    char label[64];
    snprintf(label, sizeof(label), "aiod-plugin:%s", name);
    int m = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (m < 0 && errno == EINVAL)
        m = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m < 0)
        return -errno;
    off_t done = 0; /* sendfile copies in the kernel, and moves `done` */
    while ((uint64_t)done < size) {
        ssize_t n = sendfile(m, fd, &done, (size_t)(size - (uint64_t)done));
        if (n <= 0) {
            int e = n < 0 ? errno : EIO; /* 0: the file got shorter meanwhile */
            close(m);
            return -e;
        }
    }
    if (fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        close(m);
        return -e;
    }
    return m;
}

static int open_plugin(const char *path, plugin *p) {
    char why[512];
    int r = check_trust(path, why, sizeof(why));
    if (r < 0)
        return log_error_errno(r, "plugin %s refused: %s; not loaded", path, why);
    p->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st, st_path;
    if (p->fd < 0 || fstat(p->fd, &st) < 0)
        return log_error_errno(-errno, "plugin %s cannot be opened; not loaded", path);
    if (stat(path, &st_path) < 0 || st.st_dev != st_path.st_dev || st.st_ino != st_path.st_ino)
        return log_error_errno(-EAGAIN, "plugin %s was replaced while being loaded; not loaded",
                               path);
    /* The file opened is checked too, not only the one stat saw before:
     * another could have been put in its place between the two. */
    r = file_trusted(&st, why, sizeof(why));
    if (r < 0)
        return log_error_errno(r, "plugin %s refused: %s; not loaded", path, why);
    p->dev = (uint64_t)st.st_dev;
    p->ino = (uint64_t)st.st_ino;
    p->size = (uint64_t)st.st_size;
    p->mtime_nsec = mtime_nsec(&st);
    const char *base = strrchr(path, '/');
    int copy = private_copy(p->fd, base ? base + 1 : path, p->size);
    if (copy >= 0) {
        close(p->fd);
        p->fd = copy;
    } else
        log_debug_errno(copy, "plugin %s: no private copy, mapping the file itself", path);

    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p->fd);
    p->dl = dlopen(access(fdpath, F_OK) == 0 ? fdpath : path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        log_error("plugin %s cannot be opened: %s; not loaded", path, dlerror());
        return -ENOEXEC;
    }
    p->desc = dlsym(p->dl, "aiod_plugin");
    if (!p->desc) {
        log_error("plugin %s has no 'aiod_plugin' descriptor symbol; not loaded", path);
        return -ENOEXEC;
    }
    /* Mapping the file itself (no private copy could be made), the dynamic
     * loader hands out the object it already has when the file is the same
     * inode: a file rewritten in place instead of replaced. */
    for (size_t i = 0; i < n_plugins + n_retired; i++) {
        const plugin *o = i < n_plugins ? plugins[i] : retired[i - n_plugins];
        if (o->dl == p->dl) {
            dlclose(p->dl);
            p->dl = NULL;
            log_error("plugin %s was changed in place (same inode as the loaded copy); install "
                      "a new file instead (install(1) and 'cp --remove-destination' do), the "
                      "loaded copy stays",
                      path);
            return -ETXTBSY;
        }
    }
    if (plugin_validate(p->desc, why, sizeof(why)) < 0) {
        const char *name = p->desc->name && valid_name(p->desc->name, true) ? p->desc->name : "?";
        log_error("plugin '%s' (%s) %s; not loaded", name, path, why);
        return -EINVAL;
    }
    p->name = alloc_strdup(p->desc->name);
    if (!p->name)
        return log_error_errno(-ENOMEM, "plugin %s: out of memory; not loaded", path);
    return 0;
}

/* Puts a generation back after its successor failed to load. */
static void restore(plugin *old) {
    int r = put_all(old);
    if (r < 0)
        log_error_errno(r, "plugin '%s' (%s): cannot re-register its functions", old->name,
                        old->path);
}

/*
 * Loads `path` as a new plugin, or as the next generation of `old` (which
 * is then retired). On failure `old` stays as it was.
 */
static int load(const char *path, plugin *old) {
    const char *other;
    int r;

    plugin *p = alloc_calloc(1, sizeof(*p));
    if (!p || !(p->path = alloc_strdup(path))) {
        free(p);
        return log_error_errno(-ENOMEM, "plugin %s: out of memory; not loaded", path);
    }
    p->fd = -1;
    r = open_plugin(path, p);
    if (r < 0) {
        plugin_free(p);
        return r;
    }
    if (name_taken(p->name, old, &other)) {
        log_error("plugin '%s' (%s) is already loaded from %s; not loaded", p->name, path, other);
        plugin_free(p);
        return -EEXIST;
    }
    plugin **np = alloc_realloc(plugins, (n_plugins + 1) * sizeof(*np));
    if (!np) {
        plugin_free(p);
        return log_error_errno(-ENOMEM, "plugin %s: out of memory; not loaded", path);
    }
    plugins = np;
    bool same_name = old && strcmp(old->name, p->name) == 0;
    if (old)
        unregister_functions(old);
    r = register_functions(p);
    if (r < 0) {
        if (old)
            restore(old);
        plugin_free(p);
        return log_error_errno(r, "plugin %s: cannot register its functions; not loaded", path);
    }
    if (p->desc->init) {
        r = p->desc->init(registry_api);
        if (r < 0) {
            unregister_functions(p);
            if (old)
                restore(old);
            plugin_free(p);
            return log_error_errno(r > -4096 ? r : -EIO, "plugin %s: init failed; not loaded",
                                   path);
        }
    }
    p->generation = same_name ? old->generation + 1 : 1;
    plugins[n_plugins++] = p;
    if (old) {
        unsigned busy = old->busy;
        if (retire(old) < 0) {
            /* Cannot track it: keep it loaded for good rather than lose it. */
            log_warning("plugin %s: out of memory while retiring the old generation; it "
                        "stays loaded, ignoring",
                        path);
        }
        log_info("reloaded plugin '%s' %s (%zu functions) from %s as generation %u; %u running "
                 "tasks finish on the old code",
                 p->name, p->desc->version, p->n_fns, path, p->generation, busy);
    } else
        log_info("loaded plugin '%s' %s (%zu functions) from %s", p->name, p->desc->version,
                 p->n_fns, path);
    return 0;
}

int plugin_load_file(const char *path) {
    return load(path, NULL);
}

static int so_filter(const struct dirent *e) {
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

/* Calls fn for each *.so in dir, in name order. The count of files, or
 * -errno when the directory cannot be read: logged naming it, as a warning
 * unless it is the installed directory and absent (nothing installed yet). */
static int each_file(const char *dir, void (*fn)(const char *path, void *arg), void *arg) {
    struct dirent **names;
    int n = scandir(dir, &names, so_filter, alphasort);
    if (n < 0) {
        int r = -errno;
        log_full_errno(r == -ENOENT && strcmp(dir, AIOD_PLUGIN_DIR) == 0 ? LOG_DEBUG : LOG_WARNING,
                       0, "plugin directory '%s': %s, ignoring", dir, strerror(-r));
        return r;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        fn(path, arg);
        free(names[i]);
    }
    free(names);
    return n;
}

static void load_one(const char *path, void *arg) {
    if (plugin_load_file(path) == 0)
        (*(int *)arg)++;
}

int plugin_load_dir(const char *dir) {
    int loaded = 0;
    each_file(dir, load_one, &loaded);
    return loaded;
}

static void sync_one(const char *path, void *arg) {
    plugin_sync_counts *counts = arg;
    plugin *p = find_by_path(path);
    struct stat st;
    if (p && stat(path, &st) == 0 && same_file(p, &st)) {
        counts->unchanged++;
        p->mark = true;
        return;
    }
    int r = load(path, p);
    if (r < 0) {
        counts->failed++;
        if (p)
            p->mark = true; /* the old generation stays */
        return;
    }
    if (p)
        counts->replaced++;
    else
        counts->added++;
    plugins[n_plugins - 1]->mark = true;
}

/* The plugin files of one sync, in the order they are loaded. */
typedef struct path_list {
    char **v;
    size_t n, cap;
    bool oom;
} path_list;

static void collect(const char *path, void *arg) {
    path_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = alloc_realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *copy = alloc_strdup(path);
    if (!copy) {
        l->oom = true;
        return;
    }
    l->v[l->n++] = copy;
    plugin *p = find_by_path(path);
    if (p)
        p->mark = true;
}

void plugin_sync(const char *const *dirs, size_t n_dirs, plugin_sync_counts *ret) {
    plugin_sync_counts counts = {0};
    for (size_t i = 0; i < n_plugins; i++)
        plugins[i]->mark = false;
    /* Plugins whose file is not in the directories any more are retired
     * first, so that they no longer hold their names: a new version under a
     * new file name (foo-1.3.so for foo-1.2.so) then loads in this reload. */
    path_list files = {0};
    /* A directory that cannot be listed (a typo in plugin_dir, a directory
     * moved away, EACCES, EMFILE) says nothing of which plugins are gone:
     * retiring them all would turn a typo into an outage. */
    const char *unreadable = NULL;
    for (size_t i = 0; i < n_dirs; i++) {
        int r = dirs[i] ? each_file(dirs[i], collect, &files) : 0;
        /* The installed directory may not exist (a build run from its tree). */
        if (r < 0 && !(r == -ENOENT && strcmp(dirs[i], AIOD_PLUGIN_DIR) == 0) && !unreadable)
            unreadable = dirs[i];
    }
    if (unreadable && n_plugins > 0) {
        log_warning("plugin directory '%s' cannot be read: no plugin is retired in this reload "
                    "(fix plugin_dir, or remove plugin files rather than their directory)",
                    unreadable);
        counts.failed++;
    }
    for (size_t i = n_plugins; i-- > 0 && !files.oom && !unreadable;) {
        plugin *p = plugins[i];
        if (p->mark)
            continue;
        log_info("plugin '%s' (%s) is gone from the plugin directories; retiring it (%u "
                 "running tasks finish on its code)",
                 p->name, p->path, p->busy);
        if (retire(p) < 0) {
            log_warning("plugin %s: out of memory while retiring it; it stays, ignoring", p->path);
            continue;
        }
        counts.removed++;
    }
    if (files.oom)
        log_warning("out of memory listing the plugin directories; no plugin is retired in "
                    "this reload");
    for (size_t i = 0; i < files.n; i++) {
        sync_one(files.v[i], &counts);
        free(files.v[i]);
    }
    free(files.v);
    /* Retired plugins whose last task ended without plugin_release. */
    for (size_t i = n_retired; i-- > 0;) {
        plugin *p = retired[i];
        if (p->busy == 0 && p->dl) {
            log_info("plugin '%s' generation %u (%s) is no longer used; unloading it", p->name,
                     p->generation, p->path);
            unload_code(p);
            maybe_free(p);
        }
    }
    *ret = counts;
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

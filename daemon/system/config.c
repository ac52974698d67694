/*
 * Settings: defaults, the settings file, command-line overrides (config.h).
 *
 * The file format is deliberately small and strict: one `key = value` per
 * line, blank lines, and lines whose first non-blank character is '#'.
 * Values run to the end of the line (surrounding blanks dropped, no quoting,
 * no trailing comments, so a path may hold any character). Every key is in
 * the table below; an unknown key, a key set twice (other than the
 * repeatable plugin_dir), a bad value or a line that is not `key = value`
 * stops the parse with "FILE:LINE: message". A typo therefore fails the
 * start (or the reload, which keeps the old settings) instead of being
 * silently ignored.
 */
#include "system/config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "system/log.h"
#include "macro.h"
#include "system/cluster_cfg.h"
#include "system/policy.h"

config cfg;

enum {
    K_U32,       /* uint32_t, decimal */
    K_BYTES32,   /* uint32_t, with an optional K, M, G or T suffix (powers of 1024) */
    K_BYTES,     /* size_t, likewise */
    K_BOOL,      /* yes/no, true/false, on/off, 1/0 */
    K_LEVEL,     /* a syslog level name */
    K_DIR,       /* repeatable absolute directory */
    K_STR,       /* one string (char *) */
    K_RULE,      /* repeatable call rule "PATTERN WHO..." */
    K_LIMIT,     /* repeatable concurrency limit "FUNCTION N" or "group NAME N" */
    K_PATH,      /* one absolute path (char *) */
    K_OUTCOMES,  /* all, failures or none */
    K_DURABLE,   /* none, os or fsync */
    K_INTERRUPT, /* repeatable "FUNCTION fail|retry" */
    K_REDIS,     /* "redis://HOST:PORT[/DB]" (char *) */
    K_QUEUES,    /* "NAME,..." (char *) */
    K_NAME,      /* a cluster host name (char *) */
    K_GROUP,     /* an existing group's name (char *) */
    K_USER,      /* an existing user's name, not root (char *) */
};

typedef struct setting {
    const char *key;
    int kind;
    size_t offset;
    uint64_t min, max;
} setting;

#define U32(k, field, lo)                                                                          \
    { k, K_U32, offsetof(config, field), lo, UINT32_MAX }

/* Every key of the settings file; aiod.conf(5) documents each one. */
static const setting settings[] = {
    {"plugin_dir", K_DIR, 0, 0, 0},
    {"default_plugins", K_BOOL, offsetof(config, default_plugin_dir), 0, 1},
    {"log_level", K_LEVEL, offsetof(config, log_level), 0, 7},
    {"max_frame", K_BYTES32, offsetof(config, max_frame), LIMIT_MAX_FRAME_MIN, UINT32_MAX},
    U32("max_in_flight", max_in_flight, 1),
    {"max_write_queue", K_BYTES, offsetof(config, max_write_queue), LIMIT_MAX_WRITE_QUEUE_MIN,
     LIMIT_MAX_WRITE_QUEUE_MAX},
    {"max_write_queue_total", K_BYTES, offsetof(config, max_write_queue_total),
     LIMIT_MAX_WRITE_QUEUE_MIN, LIMIT_MAX_WRITE_QUEUE_MAX},
    {"max_read_buffer_total", K_BYTES, offsetof(config, max_read_buffer_total),
     LIMIT_MAX_WRITE_QUEUE_MIN, LIMIT_MAX_WRITE_QUEUE_MAX},
    U32("output_hold_ms", output_hold_ms, 0),
    U32("max_connections", max_connections, 1),
    U32("hello_timeout_ms", hello_timeout_ms, 1),
    U32("max_tasks", max_tasks, 1),
    U32("max_output_lines", max_output_lines, 1),
    U32("retain_count", retain_count, 0),
    U32("retain_seconds", retain_seconds, 0),
    {"retain_bytes", K_BYTES, offsetof(config, retain_bytes), 0, SIZE_MAX},
    U32("stall_warning_ms", stall_warning_ms, 0),
    U32("shutdown_grace", shutdown_grace, 0),
    {"stack_size", K_BYTES, offsetof(config, stack_size), LIMIT_STACK_SIZE_MIN,
     LIMIT_STACK_SIZE_MAX},
    U32("max_connections_per_uid", max_connections_per_uid, 1),
    U32("max_tasks_per_uid", max_tasks_per_uid, 1),
    {"max_task_bytes_per_uid", K_BYTES, offsetof(config, max_task_bytes_per_uid),
     LIMIT_MAX_TASK_BYTES_PER_UID_MIN, SIZE_MAX},
    {"max_result", K_BYTES32, offsetof(config, max_result), LIMIT_MAX_RESULT_MIN, UINT32_MAX},
    {"admin_group", K_GROUP, offsetof(config, admin_group), 0, 0},
    {"call", K_RULE, 0, 0, 0},
    {"limit", K_LIMIT, 0, 0, 0},
    {"state_dir", K_PATH, offsetof(config, state_dir), 0, 0},
    {"log_outcomes", K_OUTCOMES, offsetof(config, log_outcomes), 0, 0},
    {"proc_user", K_USER, offsetof(config, proc_user), 0, 0},
    {"durability", K_DURABLE, offsetof(config, durability), 0, 0},
    {"on_interrupt", K_INTERRUPT, 0, 0, 0},
    {"cluster", K_REDIS, offsetof(config, cluster), 0, 0},
    {"cluster_password_file", K_PATH, offsetof(config, cluster_password_file), 0, 0},
    {"cluster_queues", K_QUEUES, offsetof(config, cluster_queues), 0, 0},
    {"cluster_host", K_NAME, offsetof(config, cluster_host), 0, 0},
    U32("cluster_capacity", cluster_capacity, 1),
    {"cluster_visibility_ms", K_U32, offsetof(config, cluster_visibility_ms),
     LIMIT_CLUSTER_VISIBILITY_MIN_MS, UINT32_MAX},
    {"cluster_replicas", K_U32, offsetof(config, cluster_replicas), 0, 16},
    U32("cluster_retain_seconds", cluster_retain_seconds, 1),
};

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
                                          "warning", "notice", "info", "debug"};

/* The settings file and whether it must exist; whether the last
 * config_load found it (false: it may be absent, and was). */
static char *file_path;
static bool file_required;
static bool file_found;
/* The settings were loaded once: what is read only at start-up is kept. */
static bool started;

/* Command-line overrides, applied after the file in the order given. */
typedef struct override {
    const setting *s;
    char *value;
} override;
static override *overrides;
static size_t n_overrides;

static void defaults(config *c) {
    *c = (config){
        .default_plugin_dir = true,
        .log_level = LOG_INFO,
        .max_frame = LIMIT_MAX_FRAME,
        .max_in_flight = LIMIT_MAX_IN_FLIGHT,
        .max_write_queue = LIMIT_MAX_WRITE_QUEUE,
        .max_write_queue_total = LIMIT_MAX_WRITE_QUEUE_TOTAL,
        .max_read_buffer_total = LIMIT_MAX_READ_BUFFER_TOTAL,
        .output_hold_ms = LIMIT_OUTPUT_HOLD_MS,
        .max_connections = LIMIT_MAX_CONNECTIONS,
        .hello_timeout_ms = LIMIT_HELLO_TIMEOUT_MS,
        .max_tasks = LIMIT_MAX_TASKS,
        .max_output_lines = LIMIT_MAX_OUTPUT_LINES,
        .retain_count = LIMIT_RETAIN_COUNT,
        .retain_seconds = LIMIT_RETAIN_SECONDS,
        .retain_bytes = LIMIT_RETAIN_BYTES,
        .stall_warning_ms = LIMIT_STALL_WARNING_MS,
        .shutdown_grace = LIMIT_SHUTDOWN_GRACE,
        .stack_size = LIMIT_STACK_SIZE,
        .max_connections_per_uid = LIMIT_MAX_CONNECTIONS_PER_UID,
        .max_tasks_per_uid = LIMIT_MAX_TASKS_PER_UID,
        .max_task_bytes_per_uid = LIMIT_MAX_TASK_BYTES_PER_UID,
        .cluster_capacity = LIMIT_CLUSTER_CAPACITY,
        .cluster_visibility_ms = LIMIT_CLUSTER_VISIBILITY_MS,
        .cluster_retain_seconds = LIMIT_CLUSTER_RETAIN_SECONDS,
        .max_result = LIMIT_MAX_RESULT,
        .log_outcomes = LOG_OUTCOMES_ALL,
        .durability = DURABILITY_FSYNC,
        .proc_uid = (uid_t)-1,
        .proc_gid = (gid_t)-1,
    };
}

void config_defaults(void) {
    defaults(&cfg);
}

static void free_dirs(config *c) {
    for (size_t i = 0; i < c->n_plugin_dirs; i++)
        free(c->plugin_dirs[i]);
    free(c->plugin_dirs);
    c->plugin_dirs = NULL;
    c->n_plugin_dirs = 0;
}

static void free_list(char ***v, size_t *n) {
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

/* Frees every string the settings own (not the socket path). */
static void free_owned(config *c) {
    free_dirs(c);
    free(c->admin_group);
    c->admin_group = NULL;
    free(c->state_dir);
    c->state_dir = NULL;
    free(c->proc_user);
    c->proc_user = NULL;
    free(c->proc_home);
    c->proc_home = NULL;
    free(c->cluster);
    free(c->cluster_password_file);
    free(c->cluster_queues);
    free(c->cluster_host);
    c->cluster = c->cluster_password_file = c->cluster_queues = c->cluster_host = NULL;
    free_list(&c->call_rules, &c->n_call_rules);
    free_list(&c->limits, &c->n_limits);
    free_list(&c->on_interrupt, &c->n_on_interrupt);
}

static int add_string(char ***v, size_t *n, const char *s) {
    char **d = alloc_realloc(*v, (*n + 1) * sizeof(*d));
    if (!d)
        return -ENOMEM;
    *v = d;
    d[*n] = alloc_strdup(s);
    if (!d[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

void config_done(void) {
    free_owned(&cfg);
    free(cfg.socket_path);
    cfg.socket_path = NULL;
    for (size_t i = 0; i < n_overrides; i++)
        free(overrides[i].value);
    free(overrides);
    overrides = NULL;
    n_overrides = 0;
    free(file_path);
    file_path = NULL;
}

static int add_dir(config *c, const char *dir) {
    char **d = alloc_realloc(c->plugin_dirs, (c->n_plugin_dirs + 1) * sizeof(*d));
    if (!d)
        return -ENOMEM;
    c->plugin_dirs = d;
    d[c->n_plugin_dirs] = alloc_strdup(dir);
    if (!d[c->n_plugin_dirs])
        return -ENOMEM;
    c->n_plugin_dirs++;
    return 0;
}

static const setting *find_setting(const char *key, size_t len) {
    for (size_t i = 0; i < ELEMENTSOF(settings); i++)
        if (strlen(settings[i].key) == len && memcmp(settings[i].key, key, len) == 0)
            return &settings[i];
    return NULL;
}

/* Edit distance, capped: enough to suggest a key for a typo. */
static size_t distance(const char *a, size_t la, const char *b) {
    size_t lb = strlen(b), row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = MIN(best, row[j - 1] + 1);
            best = MIN(best, up + 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const char *key, size_t len) {
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
        size_t d = distance(key, len, settings[i].key);
        if (d < best_d) {
            best_d = d;
            best = settings[i].key;
        }
    }
    return best;
}

static int parse_number(const char *v, bool suffix, uint64_t *ret) {
    if (*v < '0' || *v > '9')
        return -EINVAL;
    uint64_t n = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    if (suffix && *p) {
        /* Powers of 1024, in either case. */
        switch (*p) {
        case 'K':
        case 'k':
            shift = 10;
            break;
        case 'M':
        case 'm':
            shift = 20;
            break;
        case 'G':
        case 'g':
            shift = 30;
            break;
        case 'T':
        case 't':
            shift = 40;
            break;
        default:
            return -EINVAL;
        }
        p++;
    }
    if (*p)
        return -EINVAL;
    if (shift && n > (UINT64_MAX >> shift))
        return -ERANGE;
    *ret = n << shift;
    return 0;
}

static int parse_bool(const char *v, bool *ret) {
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcmp(v, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Applies one value to `c`; on -EINVAL writes the reason into `why`. */
/* Whether `s` can name a function: plugin.function (each part letters,
 * digits and '_', not starting with a digit), or with `prefix` also
 * plugin. for all of a plugin's. A pattern such as demo.* or a bare
 * plugin name would be taken and never match anything. */
static bool function_pattern(const char *s, bool prefix) {
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || strchr(dot + 1, '.') || (!prefix && !dot[1]))
        return false;
    for (const char *p = s; *p; p++) {
        if (p == dot)
            continue;
        bool word = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                    (*p >= '0' && *p <= '9' && p != s && p != dot + 1);
        if (!word)
            return false;
    }
    return true;
}

static int apply(config *c, const setting *s, const char *v, char *why, size_t len) {
    char *base = (char *)c + s->offset;
    uint64_t n;
    int r;
    switch (s->kind) {
    case K_U32:
    case K_BYTES32:
    case K_BYTES:
        r = parse_number(v, s->kind != K_U32, &n);
        if (r < 0 || n < s->min || n > s->max) {
            snprintf(why, len, "'%s' is not a number between %llu and %llu%s", v,
                     (unsigned long long)s->min, (unsigned long long)s->max,
                     s->kind == K_U32 ? "" : " (suffixes K, M, G, T allowed)");
            return -EINVAL;
        }
        if (s->kind == K_BYTES)
            *(size_t *)(void *)base = (size_t)n;
        else
            *(uint32_t *)(void *)base = (uint32_t)n;
        return 0;
    case K_BOOL:
        if (parse_bool(v, (bool *)(void *)base) < 0) {
            snprintf(why, len, "'%s' is not a boolean (yes or no)", v);
            return -EINVAL;
        }
        return 0;
    case K_LEVEL:
        if (log_level_from_string(v, (int *)(void *)base) < 0) {
            snprintf(why, len,
                     "unknown level '%s' (emerg, alert, crit, err, warning, notice, info, debug)",
                     v);
            return -EINVAL;
        }
        return 0;
    case K_DIR:
        if (!*v) {
            snprintf(why, len, "empty directory");
            return -EINVAL;
        }
        return add_dir(c, v);
    case K_OUTCOMES: {
        static const char *const names[] = {"all", "failures", "none"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
            if (strcmp(v, names[i]) == 0) {
                *(int *)(void *)base = (int)i;
                return 0;
            }
        snprintf(why, len, "'%s' is not all, failures or none", v);
        return -EINVAL;
    }
    case K_DURABLE: {
        static const char *const names[] = {"none", "os", "fsync"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
            if (strcmp(v, names[i]) == 0) {
                *(int *)(void *)base = (int)i;
                return 0;
            }
        snprintf(why, len, "'%s' is not none, os or fsync", v);
        return -EINVAL;
    }
    case K_INTERRUPT: {
        char name[256], policy[16], extra[2];
        if (sscanf(v, "%255s %15s %1s", name, policy, extra) != 2 ||
            (strcmp(policy, "fail") && strcmp(policy, "retry"))) {
            snprintf(why, len, "'%s' is not 'FUNCTION fail' or 'FUNCTION retry'", v);
            return -EINVAL;
        }
        if (!function_pattern(name, true)) {
            snprintf(why, len,
                     "'%s' names no function: FUNCTION is plugin.function, or plugin. for all "
                     "of a plugin's",
                     name);
            return -EINVAL;
        }
        return add_string(&c->on_interrupt, &c->n_on_interrupt, v);
    }
    case K_REDIS: {
        cluster_url u;
        if (cluster_url_parse(v, &u, why, len) < 0)
            return -EINVAL;
        goto string;
    }
    case K_QUEUES:
        if (cluster_queues_parse(v, NULL, why, len) < 0)
            return -EINVAL;
        goto string;
    /* Looked up as the line is read, so that the error names it; apply
     * looks them up again (a group can go between the two). */
    case K_GROUP:
        if (!getgrnam(v)) {
            snprintf(why, len, "no group named '%s'", v);
            return -EINVAL;
        }
        goto string;
    case K_USER: {
        const struct passwd *pw = getpwnam(v);
        if (!pw) {
            snprintf(why, len, "no user named '%s'", v);
            return -EINVAL;
        }
        if (pw->pw_uid == 0) {
            snprintf(why, len, "'%s' is root; programs would run with every privilege", v);
            return -EINVAL;
        }
        goto string;
    }
    case K_NAME:
        if (!cluster_name_valid(v)) {
            snprintf(why, len, "'%s' is not a name of 1 to 64 letters, digits, '_', '.' or '-'", v);
            return -EINVAL;
        }
        goto string;
    case K_PATH:
        if (*v != '/') {
            snprintf(why, len, "'%s' is not an absolute path", v);
            return -EINVAL;
        }
        __attribute__((fallthrough));
    case K_STR:
    string : {
        char *d = alloc_strdup(v);
        if (!d)
            return -ENOMEM;
        free(*(char **)(void *)base);
        *(char **)(void *)base = d;
        return 0;
    }
    case K_RULE: {
        /* PATTERN, then at least one principal. */
        const char *sp = strpbrk(v, " \t");
        if (!sp || !sp[strspn(sp, " \t,")]) {
            snprintf(why, len, "'%s' is not 'PATTERN USER|UID|@GROUP...'", v);
            return -EINVAL;
        }
        int bad = policy_check_call_rule(v, why, len);
        if (bad < 0)
            return bad;
        return add_string(&c->call_rules, &c->n_call_rules, v);
    }
    case K_LIMIT: {
        char name[256], count[32], extra[2];
        bool group = sscanf(v, "group %255s %31s %1s", name, count, extra) == 2;
        if (!group && sscanf(v, "%255s %31s %1s", name, count, extra) != 2) {
            snprintf(why, len, "'%s' is not 'FUNCTION N' or 'group NAME N'", v);
            return -EINVAL;
        }
        /* The count alone: a group's name may hold a '-'. */
        if (count[0] == '-' || strspn(count, "0123456789") != strlen(count)) {
            snprintf(why, len, "'%s': a limit is a count, 0 or more (0: none)", count);
            return -EINVAL;
        }
        errno = 0;
        unsigned long lim = strtoul(count, NULL, 10);
        if (errno || lim > UINT32_MAX) {
            snprintf(why, len, "limit %s is too large", count);
            return -EINVAL;
        }
        if (!group && !function_pattern(name, false)) {
            snprintf(why, len,
                     "'%s' names no function: a limit is for one plugin.function, or for "
                     "'group NAME'",
                     name);
            return -EINVAL;
        }
        return add_string(&c->limits, &c->n_limits, v);
    }
    default:
        return -EINVAL;
    }
}

_printf_(4, 5) static int fail_at(char *err, size_t len, const char *name, const char *fmt, ...) {
    int n = snprintf(err, len, "%s:", name);
    if (n < 0 || (size_t)n >= len)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool blank(char ch) {
    return ch == ' ' || ch == '\t';
}

int config_parse(config *c, const char *name, const char *text, size_t len, char *err,
                 size_t err_len) {
    unsigned first_line[ELEMENTSOF(settings)] = {0};
    char line[LIMIT_CONFIG_LINE], why[300];
    unsigned lineno = 0;
    size_t pos = 0;

    if (memchr(text, '\0', len))
        return fail_at(err, err_len, name, " contains a NUL byte; not a settings file");
    /* Editors that write a UTF-8 byte order mark put it first: skipped
     * there (as systemd's parser does), an error anywhere else. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n >= sizeof(line))
            return fail_at(err, err_len, name, "%u: line longer than %zu bytes", lineno,
                           sizeof(line) - 1);
        memcpy(line, start, n);
        line[n] = '\0';

        char *p = line;
        while (blank(*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *key = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        size_t klen = (size_t)(p - key);
        while (blank(*p))
            p++;
        if (klen == 0 || *p != '=')
            return fail_at(err, err_len, name, "%u: expected 'key = value'", lineno);
        key[klen] = '\0';
        p++;
        while (blank(*p))
            p++;
        char *end = p + strlen(p);
        while (end > p && blank(end[-1]))
            *--end = '\0';

        const setting *s = find_setting(key, klen);
        if (!s) {
            const char *hint = suggest(key, klen);
            if (hint)
                return fail_at(err, err_len, name, "%u: unknown key '%s' (did you mean '%s'?)",
                               lineno, key, hint);
            return fail_at(err, err_len, name, "%u: unknown key '%s'", lineno, key);
        }
        if (!*p)
            return fail_at(err, err_len, name, "%u: '%s' has no value", lineno, key);
        size_t idx = (size_t)(s - settings);
        if (s->kind != K_DIR && s->kind != K_RULE && s->kind != K_LIMIT && s->kind != K_INTERRUPT &&
            first_line[idx])
            return fail_at(err, err_len, name, "%u: '%s' is set again (first set on line %u)",
                           lineno, key, first_line[idx]);
        first_line[idx] = lineno;
        if (s->kind == K_DIR && *p != '/')
            return fail_at(err, err_len, name, "%u: plugin_dir '%s' is not an absolute path",
                           lineno, p);
        int r = apply(c, s, p, why, sizeof(why));
        if (r == -ENOMEM)
            return r;
        if (r < 0)
            return fail_at(err, err_len, name, "%u: %s: %s", lineno, key, why);
    }
    return 0;
}

int config_set_file(const char *path, bool required) {
    char *p = alloc_strdup(path);
    if (!p)
        return -ENOMEM;
    free(file_path);
    file_path = p;
    file_required = required;
    return 0;
}

const char *config_file(void) {
    return file_path;
}

void config_print_source(FILE *f) {
    if (file_path && file_found) {
        fprintf(f, "# %s: OK\n", file_path);
        return;
    }
    if (file_path)
        fprintf(f, "# %s does not exist, so no settings file was checked; ", file_path);
    else
        fprintf(f, "# no settings file; ");
    fprintf(f, "the settings below are the built-in defaults%s\n",
            n_overrides ? " and the flags given" : "");
}

int config_override(const char *key, const char *value, char *why, size_t why_len) {
    const setting *s = find_setting(key, strlen(key));
    if (!s) {
        snprintf(why, why_len, "no such setting '%s'", key);
        return -EINVAL;
    }
    /* Check the value now, so that a bad flag fails at once. */
    config scratch;
    defaults(&scratch);
    int r = apply(&scratch, s, value, why, why_len);
    free_owned(&scratch);
    if (r < 0)
        return r;
    override *o = alloc_realloc(overrides, (n_overrides + 1) * sizeof(*o));
    if (!o)
        return -ENOMEM;
    overrides = o;
    o[n_overrides].s = s;
    o[n_overrides].value = alloc_strdup(value);
    if (!o[n_overrides].value)
        return -ENOMEM;
    n_overrides++;
    return 0;
}

/* Reads the whole settings file. 0 with *ret NULL when it may be absent and
 * is; otherwise a negative errno with the reason in `err`. */
static int read_file(const char *path, char **ret, size_t *ret_len, char *err, size_t err_len) {
    /* O_NONBLOCK: a FIFO would hold the open until a writer came (at a
     * reload, on the loop); it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int r = -errno;
        if (r == -ENOENT && !file_required) {
            *ret = NULL;
            *ret_len = 0;
            return 0;
        }
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)LIMIT_CONFIG_FILE) {
        snprintf(err, err_len, "%s: not a regular file of at most %u bytes", path,
                 LIMIT_CONFIG_FILE);
        close(fd);
        return -EINVAL;
    }
    char *buf = alloc_malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t have = 0;
    while (have <= (size_t)st.st_size) {
        ssize_t n = read(fd, buf + have, (size_t)st.st_size + 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(-r));
            free(buf);
            close(fd);
            return r;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    if (have > (size_t)st.st_size) {
        snprintf(err, err_len, "%s: changed while being read", path);
        free(buf);
        return -EIO;
    }
    *ret = buf;
    *ret_len = have;
    return 0;
}

/* Hands the access policy to its module; all or nothing. (The concurrency
 * limits are the core's: the caller hands cfg.limits to limit_load_rules.) */
static int apply_modules(const config *c, char *err, size_t err_len) {
    char why[300];
    int r = 0;
    policy_stage_begin();
    if (c->admin_group && policy_stage_admin_group(c->admin_group) < 0) {
        snprintf(err, err_len, "admin_group: no group named '%s'", c->admin_group);
        policy_stage_abort();
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n_call_rules && r == 0; i++) {
        r = policy_stage_call_rule(c->call_rules[i], "aiod.conf", why, sizeof(why));
        if (r == -EINVAL)
            snprintf(err, err_len, "call = %s: %s", c->call_rules[i], why);
    }
    if (r < 0) {
        policy_stage_abort();
        return r;
    }
    policy_stage_commit(&(policy_limits){
        .max_connections_per_uid = c->max_connections_per_uid,
        .max_tasks_per_uid = c->max_tasks_per_uid,
        .max_task_bytes_per_uid = c->max_task_bytes_per_uid,
        .max_result = c->max_result,
    });

    return 0;
}

/* Looks up proc_user's ids. */
static int resolve_proc_user(config *c, char *err, size_t err_len) {
    if (!c->proc_user)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(c->proc_user);
    if (!pw) {
        snprintf(err, err_len, "proc_user: no user named '%s'", c->proc_user);
        return -EINVAL;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, err_len, "proc_user: '%s' is root; programs would run with every privilege",
                 c->proc_user);
        return -EINVAL;
    }
    c->proc_uid = pw->pw_uid;
    c->proc_gid = pw->pw_gid;
    c->proc_home = alloc_strdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
    return c->proc_home ? 0 : -ENOMEM;
}

/* Whether two optional strings are equal (both unset counts). */
static bool same_str(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

int config_load(char *err, size_t err_len) {
    config c;
    bool found = false;
    defaults(&c);
    if (file_path) {
        char *text = NULL;
        size_t len = 0;
        int r = read_file(file_path, &text, &len, err, err_len);
        if (r < 0)
            return r;
        found = text != NULL;
        if (text) {
            r = config_parse(&c, file_path, text, len, err, err_len);
            free(text);
            if (r < 0) {
                free_owned(&c);
                return r;
            }
        }
    }
    /* Flags win over the file. --plugin-dir flags replace the file's list. */
    bool dirs_replaced = false;
    for (size_t i = 0; i < n_overrides; i++) {
        char why[300];
        if (overrides[i].s->kind == K_DIR && !dirs_replaced) {
            free_dirs(&c);
            dirs_replaced = true;
        }
        int r = apply(&c, overrides[i].s, overrides[i].value, why, sizeof(why));
        if (r < 0) {
            free_owned(&c);
            if (r != -ENOMEM)
                snprintf(err, err_len, "%s: %s", overrides[i].s->key, why);
            return r;
        }
    }
    int r = resolve_proc_user(&c, err, err_len);
    if (r >= 0)
        r = apply_modules(&c, err, err_len);
    if (r < 0) {
        free_owned(&c);
        return r;
    }
    /* The state directory and the store's durability are chosen once, at
     * start-up: a reload keeps them, and says so when the file asks for
     * other ones (an admin who sets durability = none must not believe it
     * is in force). */
    if (cfg.state_dir) {
        if (c.state_dir && strcmp(c.state_dir, cfg.state_dir) != 0)
            log_notice("state_dir changed to %s; it takes effect when aiod restarts (%s is in "
                       "use)",
                       c.state_dir, cfg.state_dir);
        if (c.durability != cfg.durability)
            log_notice("durability changed; it takes effect when aiod restarts");
        free(c.state_dir);
        c.state_dir = TAKE_PTR(cfg.state_dir);
        c.durability = cfg.durability;
    }
    /* So is the cluster (the connections are made once). */
    if (started) {
        if (!same_str(c.cluster, cfg.cluster) ||
            !same_str(c.cluster_password_file, cfg.cluster_password_file) ||
            !same_str(c.cluster_queues, cfg.cluster_queues) ||
            !same_str(c.cluster_host, cfg.cluster_host) ||
            c.cluster_capacity != cfg.cluster_capacity ||
            c.cluster_visibility_ms != cfg.cluster_visibility_ms ||
            c.cluster_replicas != cfg.cluster_replicas ||
            c.cluster_retain_seconds != cfg.cluster_retain_seconds)
            log_notice("the cluster settings changed; they take effect when aiod restarts");
        free(c.cluster);
        free(c.cluster_password_file);
        free(c.cluster_queues);
        free(c.cluster_host);
        c.cluster = TAKE_PTR(cfg.cluster);
        c.cluster_password_file = TAKE_PTR(cfg.cluster_password_file);
        c.cluster_queues = TAKE_PTR(cfg.cluster_queues);
        c.cluster_host = TAKE_PTR(cfg.cluster_host);
        c.cluster_capacity = cfg.cluster_capacity;
        c.cluster_visibility_ms = cfg.cluster_visibility_ms;
        c.cluster_replicas = cfg.cluster_replicas;
        c.cluster_retain_seconds = cfg.cluster_retain_seconds;
    }
    free_owned(&cfg);
    c.socket_path = cfg.socket_path;
    cfg = c;
    file_found = found;
    started = true;
    return 0;
}

void config_dump(FILE *f) {
    const char *level = cfg.log_level >= 0 && cfg.log_level < (int)ELEMENTSOF(level_names)
                            ? level_names[cfg.log_level]
                            : "?";
    for (size_t i = 0; i < cfg.n_plugin_dirs; i++)
        fprintf(f, "plugin_dir = %s\n", cfg.plugin_dirs[i]);
    fprintf(f, "default_plugins = %s\n", cfg.default_plugin_dir ? "yes" : "no");
    fprintf(f, "log_level = %s\n", level);
    fprintf(f, "max_frame = %u\n", cfg.max_frame);
    fprintf(f, "max_in_flight = %u\n", cfg.max_in_flight);
    fprintf(f, "max_write_queue = %zu\n", cfg.max_write_queue);
    fprintf(f, "max_write_queue_total = %zu\n", cfg.max_write_queue_total);
    fprintf(f, "max_read_buffer_total = %zu\n", cfg.max_read_buffer_total);
    fprintf(f, "output_hold_ms = %u\n", cfg.output_hold_ms);
    fprintf(f, "max_connections = %u\n", cfg.max_connections);
    fprintf(f, "hello_timeout_ms = %u\n", cfg.hello_timeout_ms);
    fprintf(f, "max_tasks = %u\n", cfg.max_tasks);
    fprintf(f, "max_output_lines = %u\n", cfg.max_output_lines);
    fprintf(f, "retain_count = %u\n", cfg.retain_count);
    fprintf(f, "retain_seconds = %u\n", cfg.retain_seconds);
    fprintf(f, "retain_bytes = %zu\n", cfg.retain_bytes);
    fprintf(f, "stall_warning_ms = %u\n", cfg.stall_warning_ms);
    fprintf(f, "shutdown_grace = %u\n", cfg.shutdown_grace);
    fprintf(f, "stack_size = %zu\n", cfg.stack_size);
    fprintf(f, "max_connections_per_uid = %u\n", cfg.max_connections_per_uid);
    fprintf(f, "max_tasks_per_uid = %u\n", cfg.max_tasks_per_uid);
    fprintf(f, "max_task_bytes_per_uid = %zu\n", cfg.max_task_bytes_per_uid);
    fprintf(f, "max_result = %u\n", cfg.max_result);
    if (cfg.admin_group)
        fprintf(f, "admin_group = %s\n", cfg.admin_group);
    for (size_t i = 0; i < cfg.n_call_rules; i++)
        fprintf(f, "call = %s\n", cfg.call_rules[i]);
    for (size_t i = 0; i < cfg.n_limits; i++)
        fprintf(f, "limit = %s\n", cfg.limits[i]);
    if (cfg.state_dir)
        fprintf(f, "state_dir = %s\n", cfg.state_dir);
    static const char *const outcomes[] = {"all", "failures", "none"};
    fprintf(f, "log_outcomes = %s\n", outcomes[cfg.log_outcomes]);
    if (cfg.proc_user)
        fprintf(f, "proc_user = %s\n", cfg.proc_user);
    static const char *const durabilities[] = {"none", "os", "fsync"};
    fprintf(f, "durability = %s\n", durabilities[cfg.durability]);
    for (size_t i = 0; i < cfg.n_on_interrupt; i++)
        fprintf(f, "on_interrupt = %s\n", cfg.on_interrupt[i]);
    if (!cfg.cluster)
        return;
    fprintf(f, "cluster = %s\n", cfg.cluster);
    if (cfg.cluster_password_file)
        fprintf(f, "cluster_password_file = %s\n", cfg.cluster_password_file);
    fprintf(f, "cluster_queues = %s\n", cfg.cluster_queues ? cfg.cluster_queues : "");
    if (cfg.cluster_host)
        fprintf(f, "cluster_host = %s\n", cfg.cluster_host);
    fprintf(f, "cluster_capacity = %u\n", cfg.cluster_capacity);
    fprintf(f, "cluster_visibility_ms = %u\n", cfg.cluster_visibility_ms);
    fprintf(f, "cluster_replicas = %u\n", cfg.cluster_replicas);
    fprintf(f, "cluster_retain_seconds = %u\n", cfg.cluster_retain_seconds);
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

int config_resolve_state_dir(void) {
    if (cfg.state_dir)
        return 0;
    _cleanup_free_ char *p = NULL;
    const char *env = getenv("STATE_DIRECTORY"), *home;
    if (env && *env == '/')
        p = alloc_strndup(env, strcspn(env, ":"));
    else if (geteuid() == 0)
        p = alloc_strdup("/var/lib/aiod");
    else if ((env = getenv("XDG_STATE_HOME")) && *env == '/') {
        if (asprintf(&p, "%s/aiod", env) < 0)
            p = NULL;
    } else if ((home = getenv("HOME")) && *home == '/') {
        if (asprintf(&p, "%s/.local/state/aiod", home) < 0)
            p = NULL;
    } else
        return -ENOENT;
    if (!p)
        return -ENOMEM;
    cfg.state_dir = TAKE_PTR(p);
    return 0;
}

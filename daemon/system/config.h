/*
 * The daemon's settings. Each setting has a default (limits.h), may be set
 * in the settings file (/etc/aiod/aiod.conf, `key = value` lines, see
 * aiod.conf(5)) and may be overridden by a command-line flag (main.c records
 * flags here as overrides of the same keys). config_load() builds the whole
 * set again from those three layers, at start-up and on every reload, and
 * replaces `cfg` only when all of it is valid.
 *
 * The parser is pure: it never logs; errors come back as text of the form
 * "PATH:LINE: what was wrong" for the edges (main.c, reload.c) to print.
 */
#ifndef AIOD_CONFIG_H
#define AIOD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifndef AIOD_CONFIG_FILE
#define AIOD_CONFIG_FILE "/etc/aiod/aiod.conf"
#endif

typedef struct config {
    /* Socket path from --socket, $AIOD_SOCKET or the default; NULL when the
     * socket comes from systemd and no path could be worked out. Not a key
     * of the settings file: where the socket lives is the unit's business. */
    char *socket_path;
    /* Plugin directories (key plugin_dir, flag --plugin-dir), in order. */
    char **plugin_dirs;
    size_t n_plugin_dirs;
    /* Whether the installed plugin directory is searched too (key
     * default_plugins, flag --no-default-plugins). */
    bool default_plugin_dir;
    /* Highest syslog priority logged (key log_level). */
    int log_level;
    uint32_t max_frame;
    uint32_t max_in_flight;
    size_t max_write_queue;
    /* All connections' queued replies together (net/conn.c). */
    size_t max_write_queue_total;
    size_t max_read_buffer_total;
    /* How long a task's own follower that reads nothing may hold back its
     * output's producer (core/output.c). */
    uint32_t output_hold_ms;
    uint32_t max_connections;
    /* A connection that has not said hello this long after its accept is
     * closed (net/conn.c). */
    uint32_t hello_timeout_ms;
    uint32_t max_tasks;
    uint32_t max_output_lines;
    uint32_t retain_count;
    uint32_t retain_seconds;
    /* The memory retained outcomes may hold together (core/task.c). */
    size_t retain_bytes;
    /* A loop held this long is reported while held (stall.c); 0: off. Read
     * at start. */
    uint32_t stall_warning_ms;
    uint32_t shutdown_grace;
    /* Coroutine stack size; read once at start-up (a reload keeps it). */
    size_t stack_size;
    /* Per-user limits and the largest result (keys max_connections_per_uid,
     * max_tasks_per_uid, max_task_bytes_per_uid, max_result). */
    uint32_t max_connections_per_uid;
    uint32_t max_tasks_per_uid;
    size_t max_task_bytes_per_uid;
    uint32_t max_result;
    /* Members of this group act on every task (key admin_group), or NULL. */
    char *admin_group;
    /* Call rules, "PATTERN WHO..." (repeatable key call), in order. */
    char **call_rules;
    size_t n_call_rules;
    /* Concurrency limits, "FUNCTION N" or "group NAME N" (repeatable key
     * limit). */
    char **limits;
    size_t n_limits;
    /* Where what must survive a restart lives (key state_dir, flag
     * --state-dir); NULL until config_resolve_state_dir() picks the
     * default. Read once at start-up (a reload keeps it). */
    char *state_dir;
    /* What the state store's commits survive (key durability, flag
     * --durability): DURABILITY_*, the values of store.h's enum. Read once
     * at start-up. */
    int durability;
    /* Overrides of functions' on_interrupt policy, "FUNCTION fail|retry"
     * (repeatable key on_interrupt); FUNCTION is "plugin.function" or
     * "plugin." for all of a plugin's. */
    char **on_interrupt;
    size_t n_on_interrupt;
    /* Which task outcomes are logged (key log_outcomes). */
    int log_outcomes;
    /* The user programs started by tasks run as (key proc_user), or NULL for
     * the daemon's own; proc_uid and proc_gid are its ids once resolved. */
    char *proc_user;
    uid_t proc_uid;
    gid_t proc_gid;
    /* proc_user's home directory (its passwd entry), or NULL. */
    char *proc_home;
    /* The cluster (docs/cluster.md; keys cluster*), read once at start-up
     * (a reload keeps them): the Redis address "redis://HOST:PORT[/DB]"
     * or NULL for none, the file holding its password (or NULL), the
     * queues this host works on ("NAME,...", or NULL), this host's name
     * (NULL: the machine's), how many queued tasks it runs at once, after
     * how long a silent host's tasks are claimed, the replicas a submit
     * waits for, and how long finished tasks stay in Redis. */
    char *cluster;
    char *cluster_password_file;
    char *cluster_queues;
    char *cluster_host;
    uint32_t cluster_capacity;
    uint32_t cluster_visibility_ms;
    uint32_t cluster_replicas;
    uint32_t cluster_retain_seconds;
} config;

enum { DURABILITY_NONE, DURABILITY_OS, DURABILITY_FSYNC };

enum {
    LOG_OUTCOMES_ALL,      /* every task's outcome */
    LOG_OUTCOMES_FAILURES, /* failed and cancelled tasks only */
    LOG_OUTCOMES_NONE,
};

extern config cfg;

/* Fills cfg with the defaults. */
void config_defaults(void);
/* Frees what config_* allocated (cfg, the overrides, the file name). */
void config_done(void);

/*
 * The settings file. `required`: a missing file is an error (--config PATH);
 * otherwise it counts as empty ($AIOD_CONFIG, the built-in default).
 * 0, -ENOMEM.
 */
int config_set_file(const char *path, bool required);
/* The settings file in use, or NULL. */
const char *config_file(void);
/*
 * Writes one '#' comment line to `f` saying where the current settings came
 * from: "# PATH: OK" when the last config_load read the settings file, or,
 * when that file may be absent and was, that it does not exist, so nothing
 * was checked, and that the built-in defaults (and the flags, if any)
 * apply. For --check-config, before config_dump.
 */
void config_print_source(FILE *f);

/*
 * Records a command-line override of `key` (a settings-file key) after
 * checking the value. On -EINVAL `why` says what is wrong with the value
 * (without the key); -ENOMEM.
 */
int config_override(const char *key, const char *value, char *why, size_t why_len);

/*
 * Parses settings text into `c` (which holds the values so far). `name`
 * prefixes error messages. Stops at the first error: -EINVAL with
 * "NAME:LINE: message" in `err`; -ENOMEM.
 */
int config_parse(config *c, const char *name, const char *text, size_t len, char *err,
                 size_t err_len);

/*
 * Builds the settings from the defaults, the settings file and the
 * overrides; on success replaces cfg (keeping its socket path) and returns
 * 0. On failure cfg is untouched, `err` holds the reason and the result is
 * -EINVAL (bad file), -ENOENT (a required file is missing), -EIO, -ENOMEM.
 */
int config_load(char *err, size_t err_len);

/* Writes the effective settings as `key = value` lines (--check-config). */
void config_dump(FILE *f);

/* Sets cfg.socket_path from --socket, $AIOD_SOCKET or the default for the
 * user (see DESIGN). 0, -ENOENT (no XDG_RUNTIME_DIR), -ENOMEM. */
int config_resolve_socket(const char *flag_value);

/* Sets cfg.state_dir, unless set, from $STATE_DIRECTORY (its first entry),
 * else /var/lib/aiod for root, else $XDG_STATE_HOME/aiod, else
 * $HOME/.local/state/aiod. 0, -ENOENT (none of them), -ENOMEM. */
int config_resolve_state_dir(void);

#endif

/*
 * The daemon's settings: defaults from limits.h, overridden by command-line
 * flags (main.c). One global, read everywhere, written only at start-up.
 */
#ifndef AIOD_CONFIG_H
#define AIOD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct config {
    /* Socket path from --socket, $AIOD_SOCKET or the default. */
    char *socket_path;
    /* Plugin directories from --plugin-dir, in order. */
    char **plugin_dirs;
    size_t n_plugin_dirs;
    /* Whether the installed plugin directory is searched too. */
    bool default_plugin_dir;
    int log_level;
    uint32_t max_frame;
    uint32_t max_in_flight;
    size_t max_write_queue;
    uint32_t max_connections;
    uint32_t max_tasks;
    uint32_t max_output_lines;
    uint32_t retain_count;
    uint32_t retain_seconds;
    uint32_t shutdown_grace;
    size_t stack_size;
} config;

extern config cfg;

/* Fills cfg with the defaults. */
void config_defaults(void);
/* Frees what config_* allocated. */
void config_done(void);
/* Adds a plugin directory (copied). 0, -ENOMEM. */
int config_add_plugin_dir(const char *dir);
/* Sets cfg.socket_path from --socket, $AIOD_SOCKET or the default for the
 * user (see DESIGN). 0, -ENOENT (no XDG_RUNTIME_DIR), -ENOMEM. */
int config_resolve_socket(const char *flag_value);

#endif

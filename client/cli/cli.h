/*
 * cli: what the aioctl commands share: the global options, the connection,
 * exit codes, argument helpers and error reporting. Each command lives in
 * its own cmd_*.c file and has the signature of cli_command_fn.
 */
#ifndef AIOCTL_CLI_H
#define AIOCTL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "aioc.h"

/* Exit codes (aioctl.1 lists them). */
enum {
    EXIT_OK = 0,
    EXIT_TASK_FAILED = 1,
    EXIT_USAGE = 2, /* also: the daemon refused the request */
    EXIT_UNREACHABLE = 3,
    EXIT_TIMEOUT = 4,
    EXIT_CANCELLED = 5,
};

typedef struct cli {
    /* The socket path: from --socket, or the default (filled by cli_connect). */
    const char *socket_path;
    char socket_buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    /* --json: every line printed on stdout is one JSON object. */
    bool json;
    /* The connection, once cli_connect made it. */
    aioc_client *client;
} cli;

/* A command: argv[0] is the command's name. Returns an exit code. */
typedef int (*cli_command_fn)(cli *c, int argc, char **argv);

/* Connects (once) and installs the output printer. EXIT_OK or, after an
 * error message, EXIT_UNREACHABLE. */
int cli_connect(cli *c);

/*
 * Reports a failed request: the daemon's message if it gave one, else
 * `what` and the errno text; returns the exit code for r.
 */
int cli_fail(cli *c, const char *what, int r);

/* Prints "aioctl: CMD: MESSAGE" and the --help hint; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports the option getopt_long just refused (unknown, or missing its
 * value); returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, char *const *argv);

/* Prints a command's help text on stdout; returns EXIT_OK. */
int cli_help(const char *text);

/* Parses a task id (digits, nonzero). 0 or -EINVAL. */
int cli_parse_id(const char *s, uint64_t *ret);

/* Parses a --timeout value in seconds (finite, >= 0). EXIT_OK, or
 * EXIT_USAGE after telling the user what is wrong. */
int cli_parse_timeout(const char *cmd, const char *s, double *ret);

/* For commands that take no arguments and only --help: -1 to go on, else
 * the exit status to return (help shown, or a usage error printed). */
int cli_no_args(int argc, char **argv, const char *help);

/* Builds a call of `function` with text arguments. On failure prints why
 * and returns NULL (*ret_exit set). */
aioc_call *cli_make_call(const char *cmd, const char *function, char *const *args, size_t n,
                         int *ret_exit);

int cmd_run(cli *c, int argc, char **argv);
int cmd_submit(cli *c, int argc, char **argv);
int cmd_detach(cli *c, int argc, char **argv);
int cmd_await(cli *c, int argc, char **argv);
int cmd_gather(cli *c, int argc, char **argv);
int cmd_cancel(cli *c, int argc, char **argv);
int cmd_ps(cli *c, int argc, char **argv);
int cmd_show(cli *c, int argc, char **argv);
int cmd_logs(cli *c, int argc, char **argv);
int cmd_plugins(cli *c, int argc, char **argv);

#endif

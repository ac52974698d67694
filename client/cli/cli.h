/*
 * cli: what the aioctl commands share: the global options, the connection,
 * exit codes, argument helpers and error reporting. Each command lives in
 * its own cmd_*.c file and has the signature of cli_command_fn.
 */
#ifndef AIOCTL_CLI_H
#define AIOCTL_CLI_H

#include <getopt.h>
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
    EXIT_OUTPUT = 6, /* stdout could not be written */
};

typedef struct cli {
    /* The command being run ("ps"), NULL while main reads the options
     * before it; usage errors name it. */
    const char *command;
    /* The socket path: from --socket, or the default (filled by cli_connect). */
    const char *socket_path;
    char socket_buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    /* --json: every line printed on stdout is one JSON object. */
    bool json;
    /* The connection, once cli_connect made it. */
    aioc_client *client;
    /* The option cli_getopt returned last, as the user typed it ("--time",
     * "-t"), so that a message about its value names what was typed. */
    char opt_name[64];
} cli;

/* A command: argv[0] is the command's name. Returns an exit code. */
typedef int (*cli_command_fn)(cli *c, int argc, char **argv);

/* Connects (once) and installs the output printer. EXIT_OK or, after an
 * error message, EXIT_UNREACHABLE. */
int cli_connect(cli *c);

/*
 * Reports a failed request: the daemon's message if it gave one, else
 * `what` and the errno text; returns the exit code for r. An unknown task
 * (-ESRCH) is worded the same whatever the request: "no task ID (it never
 * existed, or its result is no longer retained)".
 */
int cli_fail(cli *c, const char *what, int r);

/* As cli_fail, for a started request that failed: its errno and the
 * daemon's message for it. */
int cli_fail_request(const char *what, const aioc_request *req);

/* Prints "aioctl: CMD: MESSAGE" and the --help hint; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * getopt_long over a command's own options together with the global ones
 * (-s/--socket, --json, --version), so that those may also come after the
 * command, as systemctl takes them. `shortopts` and `longopts` are the
 * command's own, as getopt_long takes them: a leading '+' stops at the first
 * operand (run needs that: the words after FUNC are its arguments, options
 * or not); without it operands and options may mix. The command's own
 * options must not use the global ones' letters or CLI_OPT_* values.
 *
 * Handles the global options itself and returns the next of the command's
 * own (its `val`, > 0, with optarg set and c->opt_name naming it as typed),
 * -1 when the options end (optind is the first operand), or 0 when aioctl
 * is to exit with *ret_exit: a usage error was reported (an unknown option,
 * a missing or unwanted value, each named as the user typed it) or
 * --version printed. Start each command's parsing with optind = 0.
 */
int cli_getopt(cli *c, int argc, char **argv, const char *shortopts, const struct option *longopts,
               int *ret_exit);

/* The `val` of the global long options that have no letter. */
enum {
    CLI_OPT_JSON = 0x100,
    CLI_OPT_VERSION,
};

/* Prints a command's help text on stdout; returns EXIT_OK. */
int cli_help(const char *text);

/* Parses a task id (digits, nonzero). 0 or -EINVAL. */
int cli_parse_id(const char *s, uint64_t *ret);

/* The operands from optind on as task ids, at least one: into *ret_ids (a
 * new array, the caller frees it) and *ret_n. With `one`, exactly one.
 * EXIT_OK, or the exit code of the usage error printed. */
int cli_task_ids(int argc, char **argv, bool one, uint64_t **ret_ids, size_t *ret_n);

/* The one task id operand. EXIT_OK, or the usage error's exit code. */
int cli_one_task_id(int argc, char **argv, uint64_t *ret);

/* Parses the value of the timeout option cli_getopt just returned, in
 * seconds (finite, >= 0). EXIT_OK, or EXIT_USAGE after telling the user
 * what is wrong (naming the option as typed). */
int cli_parse_timeout(cli *c, const char *cmd, const char *s, double *ret);

/* For commands that take no arguments and only --help (and the global
 * options): -1 to go on, else the exit status to return (help shown, or a
 * usage error printed). */
int cli_no_args(cli *c, int argc, char **argv, const char *help);

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
int cmd_reload(cli *c, int argc, char **argv);

#endif

/*
 * aioctl: the command-line client of aiod. This file owns the global
 * options, the command table, dispatch, and the helpers every command
 * shares (cli.h): connecting, reporting errors, parsing ids and timeouts.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "print.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "unknown"
#endif

int cmd_reload(cli *c, int argc, char **argv); /* cmd_reload.c */

static const struct command {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} commands[] = {
    {"run", cmd_run, "run FUNC [ARG...] attached and wait for it (asyncio.run)"},
    {"submit", cmd_submit, "create a task that outlives aioctl; print its id"},
    {"await", cmd_await, "wait for tasks and print their results in order"},
    {"gather", cmd_gather, "run CALLs concurrently, print the list of results"},
    {"detach", cmd_detach, "fire and forget; print the task's id"},
    {"cancel", cmd_cancel, "cancel tasks"},
    {"ps", cmd_ps, "list tasks"},
    {"show", cmd_show, "show one task in detail"},
    {"logs", cmd_logs, "print a task's output; -f follows it"},
    {"plugins", cmd_plugins, "list the functions that can be called"},
    {"reload", cmd_reload, "re-read the daemon's settings and plugins"},
};

static void usage_main(FILE *f) {
    fprintf(f, "Usage: aioctl [-s SOCKET] [--json] COMMAND [ARG...]\n"
               "\n"
               "Talk to aiod, the machine-wide asyncio daemon.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "Options:\n"
               "  -s, --socket PATH  the daemon's socket (default: $AIOD_SOCKET, else\n"
               "                     $XDG_RUNTIME_DIR/aiod/aiod.sock if it exists (your\n"
               "                     own instance), else /run/aiod/aiod.sock)\n"
               "      --json         print one JSON object per line\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n"
               "\n"
               "Run 'aioctl COMMAND --help' for a command's options.\n"
               "Exit status: 0 success, 1 the task failed, 2 usage error or request refused,\n"
               "3 the daemon cannot be reached, 4 timed out, 5 cancelled.\n");
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "aioctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'aioctl %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char *const *argv) {
    if (optopt)
        return cli_usage(cmd, "option '-%c' is unknown or needs a value", optopt);
    return cli_usage(cmd, "option '%s' is unknown or needs a value", argv[optind - 1]);
}

int cli_help(const char *text) {
    fputs(text, stdout);
    return EXIT_OK;
}

int cli_connect(cli *c) {
    if (c->client)
        return EXIT_OK;
    if (!c->socket_path) {
        int r = aioc_default_socket_path(c->socket_buf, sizeof(c->socket_buf));
        if (r < 0) {
            fprintf(stderr,
                    "aioctl: the default socket path is too long: %s — "
                    "use --socket PATH\n",
                    strerror(-r));
            return EXIT_UNREACHABLE;
        }
        c->socket_path = c->socket_buf;
    }
    char refused[512];
    int r = aioc_connect_ex(c->socket_path, &c->client, refused, sizeof(refused));
    if (r < 0 && refused[0]) {
        /* The daemon answered, and said no: a refusal, not an outage. */
        fprintf(stderr, "aioctl: %s\n", refused);
        return EXIT_USAGE;
    }
    if (r < 0) {
        const char *hint = "is the daemon running? try --socket PATH or $AIOD_SOCKET";
        if (r == -EACCES || r == -EPERM)
            hint = "you may not use this socket; try your own daemon with --socket PATH";
        else if (r == -EPROTONOSUPPORT || r == -EPROTO)
            hint = "aioctl and aiod do not speak the same protocol; use matching versions";
        fprintf(stderr, "aioctl: cannot reach aiod at %s: %s — %s\n", c->socket_path, strerror(-r),
                hint);
        return EXIT_UNREACHABLE;
    }
    aioc_set_output_callback(c->client, print_output_cb, &c->json);
    return EXIT_OK;
}

int cli_fail(cli *c, const char *what, int r) {
    const char *daemon = c->client ? aioc_last_error(c->client) : "";
    int code;

    switch (r) {
    case -ETIMEDOUT:
        code = EXIT_TIMEOUT;
        break;
    case -ECANCELED:
        code = EXIT_CANCELLED;
        break;
    case -ECONNRESET:
    case -EPIPE:
    case -ENOTCONN:
    case -EPROTO:
    case -EPROTONOSUPPORT:
    case -ESHUTDOWN:
        code = EXIT_UNREACHABLE;
        break;
    case -ENOMEM:
        code = EXIT_TASK_FAILED;
        break;
    default:
        code = EXIT_USAGE;
    }
    fflush(stdout);
    if (*daemon)
        fprintf(stderr, "aioctl: %s\n", daemon);
    else if (r == -EMSGSIZE)
        fprintf(stderr,
                "aioctl: %s: the request is larger than the daemon's frame limit "
                "(its --max-frame); pass less data\n",
                what);
    else if (r == -ECONNRESET || r == -EPIPE)
        fprintf(stderr,
                "aioctl: %s: aiod closed the connection — did the daemon stop? "
                "see its log\n",
                what);
    else
        fprintf(stderr, "aioctl: %s: %s\n", what, strerror(-r));
    return code;
}

int cli_parse_id(const char *s, uint64_t *ret) {
    uint64_t id = 0;
    if (!*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (id > (UINT64_MAX - d) / 10)
            return -EINVAL;
        id = id * 10 + d;
    }
    if (id == 0)
        return -EINVAL;
    *ret = id;
    return 0;
}

int cli_parse_timeout(const char *cmd, const char *s, double *ret) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d) || d < 0)
        return cli_usage(cmd, "--timeout wants seconds (a number >= 0), not '%s'", s);
    *ret = d;
    return EXIT_OK;
}

int cli_no_args(int argc, char **argv, const char *help) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
        return opt == 'h' ? cli_help(help) : cli_bad_option(argv[0], argv);
    if (optind < argc)
        return cli_usage(argv[0], "unexpected argument '%s'", argv[optind]);
    return -1;
}

aioc_call *cli_make_call(const char *cmd, const char *function, char *const *args, size_t n,
                         int *ret_exit) {
    aioc_call *call = aioc_call_new(function);
    if (!call) {
        *ret_exit = cli_usage(cmd, "'%s' is not a function name", function);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int r = aioc_call_arg_text(call, args[i]);
        if (r < 0) {
            if (r == -EINVAL)
                *ret_exit = cli_usage(cmd, "%s: argument %zu is not valid UTF-8", function, i + 1);
            else
                *ret_exit = cli_fail(&(cli){0}, function, r);
            aioc_call_free(call);
            return NULL;
        }
    }
    return call;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {},
    };
    cli c = {0};
    int opt;

    opterr = 0; /* cli_bad_option says it better */
    while ((opt = getopt_long(argc, argv, "+s:h", options, NULL)) >= 0) {
        switch (opt) {
        case 's':
            if (!*optarg)
                return cli_usage(NULL, "--socket needs a path");
            c.socket_path = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'h':
            usage_main(stdout);
            return EXIT_OK;
        case 'V':
            printf("aioctl %s (libaioclient %s)\n", AIOD_VERSION, AIOC_LIB_VERSION);
            return EXIT_OK;
        default:
            return cli_bad_option(NULL, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(NULL, "missing COMMAND (run, submit, await, gather, ...)");

    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0) {
            int argc2 = argc - optind;
            char **argv2 = argv + optind;
            optind = 0; /* glibc: start the command's own getopt afresh */
            int code = commands[i].fn(&c, argc2, argv2);
            aioc_close(c.client);
            if (fflush(stdout) != 0 && code == EXIT_OK)
                code = EXIT_TASK_FAILED;
            return code;
        }
    return cli_usage(NULL, "unknown command '%s'", name);
}

/*
 * aioctl: the command-line client of aiod. This file owns the global
 * options (before the command, or after it among the command's own, through
 * cli_getopt), the command table, dispatch, and the helpers every command
 * shares (cli.h): connecting, reporting errors, parsing ids and timeouts.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "alloc.h"
#include "cli.h"
#include "macro.h"
#include "print.h"
#include "schedopt.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "unknown"
#endif

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
    fprintf(f, "Usage: aioctl [-s SOCKET] [--json] COMMAND [OPTION...] [ARG...]\n"
               "\n"
               "Talk to aiod, the machine-wide asyncio daemon.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < ELEMENTSOF(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "Options:\n"
               "  -s, --socket PATH  the daemon's socket (default: $AIOD_SOCKET, else\n"
               "                     $XDG_RUNTIME_DIR/aiod/aiod.sock if it is yours (your\n"
               "                     own instance), else /run/aiod/aiod.sock)\n"
               "      --json         print one JSON object per line\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n"
               "\n"
               "The options above may also follow the command, among its own\n"
               "(aioctl ps --json); after FUNC, and after '--', words are arguments.\n"
               "Run 'aioctl COMMAND --help' for a command's options.\n"
               "Exit status: 0 success, 1 the task failed, 2 usage error or request refused,\n"
               "3 the daemon cannot be reached, 4 timed out, 5 cancelled, 6 stdout could not\n"
               "be written.\n");
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

int cli_help(const char *text) {
    fputs(text, stdout);
    return EXIT_OK;
}

/* Where the socket path came from, as messages name it: "--socket",
 * "$AIOD_SOCKET", "$XDG_RUNTIME_DIR" (the user's own instance) or "the
 * default". `path` is the path aioc_default_socket_path gave, NULL when it
 * gave none. */
static const char *socket_source(const cli *c, const char *path) {
    const char *env = getenv("AIOD_SOCKET");
    if (c->socket_path && c->socket_path != c->socket_buf)
        return "from --socket";
    if (env && *env)
        return "from $AIOD_SOCKET";
    if (path && strcmp(path, "/run/aiod/aiod.sock") != 0)
        return "from $XDG_RUNTIME_DIR";
    return "the default";
}

/* Says that the daemon cannot be reached through c->socket_path, which the
 * connection refused with r: what is at the path when that explains it
 * better than errno (not a socket, a path too long for one), and where the
 * path came from. Returns EXIT_UNREACHABLE. */
static int unreachable(const cli *c, int r) {
    const char *path = c->socket_path, *from = socket_source(c, c->socket_buf);
    struct stat st;
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

    if (r == -ENAMETOOLONG) {
        fprintf(stderr,
                "aioctl: the socket path %s is too long (%zu bytes; a Unix socket's path holds at "
                "most %zu) — use a shorter one%s\n",
                from, strlen(path), max,
                strcmp(from, "from --socket") == 0 ? "" : ", or --socket PATH");
        return EXIT_UNREACHABLE;
    }
    if ((r == -ECONNREFUSED || r == -ENOTSOCK) && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        fprintf(stderr,
                "aioctl: cannot reach aiod: %s (%s) is not a socket — give the daemon's socket "
                "with --socket PATH or $AIOD_SOCKET\n",
                path, from);
        return EXIT_UNREACHABLE;
    }
    const char *hint = "is the daemon running? try --socket PATH or $AIOD_SOCKET";
    if (r == -EACCES || r == -EPERM)
        hint = "you may not use this socket; try your own daemon with --socket PATH";
    else if (r == -EPROTONOSUPPORT || r == -EPROTO)
        hint = "aioctl and aiod do not speak the same protocol; use matching versions";
    fprintf(stderr, "aioctl: cannot reach aiod at %s (%s): %s — %s\n", path, from, strerror(-r),
            hint);
    return EXIT_UNREACHABLE;
}

int cli_connect(cli *c) {
    if (c->client)
        return EXIT_OK;
    if (!c->socket_path) {
        int r = aioc_default_socket_path(c->socket_buf, sizeof(c->socket_buf));
        if (r < 0) {
            /* Only a path from the environment can be too long here. */
            const char *from = socket_source(c, NULL);
            const char *env =
                getenv(strcmp(from, "from $AIOD_SOCKET") == 0 ? "AIOD_SOCKET" : "XDG_RUNTIME_DIR");
            fprintf(stderr,
                    "aioctl: the socket path %s is too long (%zu bytes; a Unix socket's path "
                    "holds at most %zu) — use a shorter one, or --socket PATH\n",
                    from, env ? strlen(env) : 0, sizeof(c->socket_buf) - 2);
            return EXIT_UNREACHABLE;
        }
        c->socket_path = c->socket_buf;
    }
    char refused[512];
    int r = aioc_connect_ex(c->socket_path, &c->client, refused, sizeof(refused));
    if (r < 0 && refused[0]) {
        /* The daemon answered, and said no. A limit or a refusal is exit 2;
         * a daemon that speaks another protocol, is stopping, or could not
         * start (its settings are invalid) cannot serve the call: exit 3,
         * as aioctl(1) says, with the daemon's own words. */
        bool unreachable = r == -EPROTONOSUPPORT || r == -EPROTO || r == -ESHUTDOWN;
        print_line(stderr, "aioctl: ", refused, "");
        fprintf(stderr, "%s\n",
                r == -EPROTONOSUPPORT || r == -EPROTO
                    ? " — aioctl and aiod do not speak the same protocol; use matching versions"
                    : "");
        return unreachable ? EXIT_UNREACHABLE : EXIT_USAGE;
    }
    if (r < 0)
        return unreachable(c, r);
    aioc_set_output_callback(c->client, print_output_cb, &c->json);
    aioc_set_idle_callback(c->client, print_flush_cb, NULL);
    return EXIT_OK;
}

/* The one wording of an unknown task. */
#define NO_TASK "no task %" PRIu64 " (it never existed, or its result is no longer retained)"

/*
 * Prints the daemon's message `msg` for a refused request. An unknown task
 * is worded once whatever the request (the daemon's requests word it
 * differently): what precedes "no task ID" (a gather's "gather item N: ")
 * stays, the rest is ours. (A run's refusal comes from the library without
 * the "gather item 1: " of the one-item gather it is sent as.)
 */
static void print_daemon_message(const char *msg, int r) {
    const char *at = r == -ESRCH ? strstr(msg, "no task ") : NULL;
    if (at) {
        const char *digits = at + strlen("no task ");
        char *end;
        errno = 0;
        uint64_t id = strtoull(digits, &end, 10);
        if (*digits >= '0' && *digits <= '9' && errno == 0 && (*end == '\0' || *end == ' ')) {
            _cleanup_free_ char *before = strndup(msg, (size_t)(at - msg));
            print_line(stderr, "aioctl: ", before ? before : "", "");
            fprintf(stderr, NO_TASK "\n", id);
            return;
        }
    }
    print_line(stderr, "aioctl: ", msg, "\n");
}

/* Reports r; `daemon` is the daemon's message for it ("" if none). */
static int fail(const char *daemon, const char *what, int r) {
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
    case -EHOSTUNREACH: /* the cluster's Redis, behind the daemon */
        code = EXIT_UNREACHABLE;
        break;
    case -ENOMEM:
        code = EXIT_TASK_FAILED;
        break;
    default:
        code = EXIT_USAGE;
    }
    print_flush();
    if (*daemon)
        print_daemon_message(daemon, r);
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
    else if (r == -ESRCH)
        fprintf(stderr, "aioctl: %s: no such task\n", what);
    else
        fprintf(stderr, "aioctl: %s: %s\n", what, strerror(-r));
    return code;
}

static const char *last_error(const cli *c) {
    return c->client ? aioc_last_error(c->client) : "";
}

int cli_fail(cli *c, const char *what, int r) {
    return fail(last_error(c), what, r);
}

int cli_fail_request(const char *what, const aioc_request *req) {
    const char *daemon = aioc_request_error_message(req);
    return fail(daemon ? daemon : "", what, aioc_request_error(req));
}

int cli_task_ids(int argc, char **argv, bool one, uint64_t **ret_ids, size_t *ret_n) {
    if (optind >= argc)
        return cli_usage(argv[0], "missing task ID");
    if (one && optind + 1 < argc)
        return cli_usage(argv[0], "one task ID only");
    size_t n = (size_t)(argc - optind);
    if (n > AIOC_MAX_BATCH)
        return cli_usage(argv[0], "%zu task ids: at most %u in one command (split them)", n,
                         AIOC_MAX_BATCH);
    uint64_t *ids = alloc_calloc(n, sizeof(*ids));
    if (!ids) {
        fprintf(stderr, "aioctl: out of memory\n");
        return EXIT_FAILURE;
    }
    for (size_t i = 0; i < n; i++)
        if (cli_parse_id(argv[optind + (int)i], &ids[i]) < 0) {
            free(ids);
            return cli_usage(argv[0], "'%s' is not a task id (a positive number)",
                             argv[optind + (int)i]);
        }
    *ret_ids = ids;
    *ret_n = n;
    return EXIT_OK;
}

int cli_one_task_id(int argc, char **argv, uint64_t *ret) {
    uint64_t *ids = NULL;
    size_t n = 0;
    int code = cli_task_ids(argc, argv, true, &ids, &n);
    if (code == EXIT_OK)
        *ret = ids[0];
    free(ids);
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

int cli_parse_timeout(cli *c, const char *cmd, const char *s, double *ret) {
    /* With the units the schedule's options take (500ms, 5m). 0 would
     * reach the library as "no limit": refused, not turned into its
     * opposite. */
    double d = 0;
    if (schedopt_parse_seconds(s, &d) < 0 || d <= 0)
        return cli_usage(cmd,
                         "option '%s' wants a time above 0 such as 30, 1.5, 500ms, 5m, 2h or 1d "
                         "(leave it out to wait without a limit), not '%s'",
                         c->opt_name, s);
    *ret = d;
    return EXIT_OK;
}

int cli_no_args(cli *c, int argc, char **argv, const char *help) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {},
    };
    int opt, code = -1;
    while ((opt = cli_getopt(c, argc, argv, "h", options, &code)) > 0)
        return cli_help(help);
    if (opt == 0)
        return code;
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

/* The global options, which cli_getopt appends to every command's own. */
static const struct option global_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"json", no_argument, NULL, CLI_OPT_JSON},
    {"version", no_argument, NULL, CLI_OPT_VERSION},
};
#define GLOBAL_SHORT "s:"

/* Room for a command's options and the global ones (a command has at most
 * twelve of its own: submit has nine), and for its letters. */
#define MAX_OPTIONS 16
#define MAX_SHORT 32

/*
 * The word on the command line that holds the option getopt_long just
 * handled when it is a long one ("--sock", "--json=1"), else NULL (a short
 * option is named by its letter). `before` is optind before the call:
 * getopt_long always steps past the word of a long option, but not past a
 * letter in the middle of a cluster ("-ax"), where the word before optind is
 * an older one. `value_in_next` says that the option took the next word as
 * its value ("--socket PATH").
 */
static const char *long_word(char *const *argv, int before, bool value_in_next) {
    int i = optind - 1 - (value_in_next ? 1 : 0);
    if (optind <= before || i < 0 || strncmp(argv[i], "--", 2) != 0 || !argv[i][2])
        return NULL;
    return argv[i];
}

/* "--name" from a word "--name[=value]", or "-x" from a letter, into buf. */
static void option_name(char *buf, size_t len, const char *word, int letter) {
    if (word)
        snprintf(buf, len, "%.*s", (int)strcspn(word, "="), word);
    else
        snprintf(buf, len, "-%c", letter);
}

/* How many of the long options `lo` start with "--name" (name as typed,
 * "--de"); an exact name counts as one. */
static size_t long_matches(const struct option *lo, const char *name) {
    size_t n = 0, len = strlen(name) - 2;
    for (; lo->name; lo++) {
        if (strcmp(lo->name, name + 2) == 0)
            return 1;
        n += strncmp(lo->name, name + 2, len) == 0;
    }
    return n;
}

/* Reports what getopt_long refused: ret ':' when a value is missing, '?'
 * for an unknown option, an ambiguous start of a long one (submit's --de:
 * --delay or --detach) or a value given to one that takes none. `lo` is
 * the table getopt_long had. Returns EXIT_USAGE. */
static int bad_option(const char *cmd, char *const *argv, int before, int ret,
                      const struct option *lo) {
    char name[64];
    const char *word = long_word(argv, before, false);

    option_name(name, sizeof(name), word, optopt);
    if (ret == ':')
        return cli_usage(cmd, "option '%s' needs a value", name);
    if (word && optopt) /* a long option getopt_long knew */
        return cli_usage(cmd, "option '%s' takes no value", name);
    if (word && long_matches(lo, name) > 1)
        return cli_usage(cmd, "option '%s' is ambiguous: write more of its name", name);
    return cli_usage(cmd, "option '%s' is unknown", name);
}

/* Handles a global option. -1 to go on, else the exit status. */
static int global_option(cli *c, const char *cmd, int opt) {
    switch (opt) {
    case 's':
        if (!*optarg)
            return cli_usage(cmd, "option '%s' needs a path", c->opt_name);
        c->socket_path = optarg;
        return -1;
    case CLI_OPT_JSON:
        c->json = true;
        return -1;
    case CLI_OPT_VERSION:
        printf("aioctl %s (libaioclient %s)\n", AIOD_VERSION, AIOC_LIB_VERSION);
        return EXIT_OK;
    default:
        assert(!"not a global option");
        return EXIT_USAGE;
    }
}

int cli_getopt(cli *c, int argc, char **argv, const char *shortopts, const struct option *longopts,
               int *ret_exit) {
    struct option lo[MAX_OPTIONS];
    char so[MAX_SHORT];
    size_t n = 0;

    /* [+]:<command's letters><global letters>; ':' to tell a missing value
     * from an unknown option. The tables are aioctl's own: overflowing them
     * is a bug of a command, caught even where asserts are compiled out. */
    bool stop = shortopts[0] == '+';
    int len = snprintf(so, sizeof(so), "%s:%s" GLOBAL_SHORT, stop ? "+" : "", shortopts + stop);
    if (len < 0 || (size_t)len >= sizeof(so))
        abort();
    for (; longopts[n].name; n++) {
        if (n >= MAX_OPTIONS - ELEMENTSOF(global_options) - 1)
            abort();
        assert(longopts[n].val != 's' && longopts[n].val < CLI_OPT_JSON);
        lo[n] = longopts[n];
    }
    for (size_t i = 0; i < ELEMENTSOF(global_options); i++)
        lo[n++] = global_options[i];
    lo[n] = (struct option){0};

    for (;;) {
        int before = optind;
        opterr = 0; /* bad_option says it better */
        int opt = getopt_long(argc, argv, so, lo, NULL);
        if (opt == -1)
            return -1;
        if (opt == '?' || opt == ':') {
            *ret_exit = bad_option(c->command, argv, before, opt, lo);
            return 0;
        }
        bool value_in_next = optarg && optind >= 1 && optarg == argv[optind - 1];
        option_name(c->opt_name, sizeof(c->opt_name), long_word(argv, before, value_in_next), opt);
        if (opt != 's' && opt < CLI_OPT_JSON)
            return opt;
        int code = global_option(c, c->command, opt);
        if (code >= 0) {
            *ret_exit = code;
            return 0;
        }
    }
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {},
    };
    cli c = {0};
    int opt, code = -1;

    while ((opt = cli_getopt(&c, argc, argv, "+h", options, &code)) > 0) {
        usage_main(stdout);
        print_flush();
        return EXIT_OK;
    }
    if (opt == 0) {
        print_flush(); /* --version */
        return code;
    }
    if (optind >= argc)
        return cli_usage(NULL, "missing COMMAND (run, submit, await, gather, ...)");

    const char *name = argv[optind];
    for (size_t i = 0; i < ELEMENTSOF(commands); i++)
        if (strcmp(name, commands[i].name) == 0) {
            int argc2 = argc - optind;
            char **argv2 = argv + optind;
            c.command = commands[i].name;
            optind = 0; /* glibc: start the command's own getopt afresh */
            code = commands[i].fn(&c, argc2, argv2);
            aioc_close(c.client);
            print_flush();
            return code;
        }
    return cli_usage(NULL, "unknown command '%s'", name);
}

/*
 * cmd_run: `aioctl run`, `submit` and `detach`, the commands that start one
 * task from FUNC [ARG...]. Arguments are sent as text; the daemon converts
 * them by the function's declared parameter types.
 */
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "print.h"

static const char run_help[] =
    "Usage: aioctl run [--timeout S] FUNC [ARG...]\n"
    "\n"
    "Runs FUNC as a task attached to this aioctl and waits for it, like\n"
    "asyncio.run(). Its output lines are printed as they come, then its result\n"
    "as JSON on the last line. Interrupting aioctl cancels the task. When\n"
    "aioctl could not keep up with the task's output and the daemon had to drop\n"
    "lines, it says how many on stderr at the end.\n"
    "\n"
    "  -t, --timeout S  cancel the task after S seconds (exit status 4)\n"
    "  -h, --help       show this help\n";

static const char submit_help[] =
    "Usage: aioctl submit FUNC [ARG...]\n"
    "\n"
    "Creates a task that outlives aioctl and keeps its result for a later\n"
    "'aioctl await ID'. Prints the task's id.\n";

static const char detach_help[] =
    "Usage: aioctl detach FUNC [ARG...]\n"
    "\n"
    "Starts a task nobody waits for (fire and forget): it outlives aioctl and\n"
    "its result is only logged by the daemon. Prints the task's id.\n";

/* Parses [--timeout S] (when allowed), --help and the global options, up
 * to FUNC: the words after it are the call's, options or not. Returns -1 to
 * go on, else an exit code. */
static int parse(cli *c, int argc, char **argv, const char *help, double *timeout) {
    static const struct option options[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    int opt, code = -1;
    while ((opt = cli_getopt(c, argc, argv, timeout ? "+t:h" : "+h",
                             timeout ? options : options + 1, &code)) > 0) {
        if (opt == 'h')
            return cli_help(help);
        if (cli_parse_timeout(c, argv[0], optarg, timeout) != EXIT_OK)
            return EXIT_USAGE;
    }
    if (opt == 0)
        return code;
    if (optind >= argc)
        return cli_usage(argv[0], "missing FUNC");
    return -1;
}

/* FUNC -- ARG...: the "--" only says that what follows are arguments (so
 * that words such as "-j2" read clearly as such); it is not one itself. */
static int first_arg(int argc, char **argv) {
    int i = optind + 1;
    return i < argc && strcmp(argv[i], "--") == 0 ? i + 1 : i;
}

int cmd_run(cli *c, int argc, char **argv) {
    double timeout = 0;
    aioc_outcome *o = NULL;
    int code = parse(c, argc, argv, run_help, &timeout);
    if (code >= 0)
        return code;

    const char *function = argv[optind];
    int first = first_arg(argc, argv);
    aioc_call *call = cli_make_call(argv[0], function, argv + first, (size_t)(argc - first), &code);
    if (!call)
        return code;
    code = cli_connect(c);
    if (code == EXIT_OK) {
        int r = aioc_run(c->client, call, timeout, &o);
        if (r == -ETIMEDOUT) {
            fprintf(stderr, "aioctl: %s: timed out after %g s; the task was cancelled\n", function,
                    timeout);
            code = EXIT_TIMEOUT;
        } else if (r < 0) {
            code = cli_fail_run(c, function, r);
        } else {
            code = print_outcome(c->json, o);
            /* Lines lost between the task and us: the lines printed plus
             * this are all the task printed. */
            print_dropped(NULL, aioc_outcome_output_dropped(o));
        }
    }
    aioc_outcome_free(o);
    aioc_call_free(call);
    return code;
}

typedef int (*start_fn)(aioc_client *c, const aioc_call *call, uint64_t *ret_id);

static int start(cli *c, int argc, char **argv, const char *help, start_fn fn) {
    uint64_t id;
    int code = parse(c, argc, argv, help, NULL);
    if (code >= 0)
        return code;

    const char *function = argv[optind];
    int first = first_arg(argc, argv);
    aioc_call *call = cli_make_call(argv[0], function, argv + first, (size_t)(argc - first), &code);
    if (!call)
        return code;
    code = cli_connect(c);
    if (code == EXIT_OK) {
        int r = fn(c->client, call, &id);
        if (r < 0)
            code = cli_fail(c, function, r);
        else
            print_id(c->json, id);
    }
    aioc_call_free(call);
    return code;
}

int cmd_submit(cli *c, int argc, char **argv) {
    return start(c, argc, argv, submit_help, aioc_submit);
}

int cmd_detach(cli *c, int argc, char **argv) {
    return start(c, argc, argv, detach_help, aioc_detach);
}

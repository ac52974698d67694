/*
 * cmd_await: `aioctl await [--timeout S] ID...`, asyncio.wait: waits for
 * tasks and prints their results in order. A timeout does not cancel them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "cli.h"
#include "macro.h"
#include "print.h"

static const char await_help[] =
    "Usage: aioctl await [--timeout S] ID...\n"
    "\n"
    "Waits until the tasks have ended and prints each result as JSON, one line\n"
    "per task in the order given. A failed task's error goes to stderr as\n"
    "KIND: MESSAGE. On timeout the tasks keep running (exit status 4).\n"
    "\n"
    "  -t, --timeout S  give up after S seconds\n"
    "  -h, --help       show this help\n";

int cmd_await(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    double timeout = 0;
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "t:h", options, &code)) > 0) {
        if (opt == 'h')
            return cli_help(await_help);
        if (cli_parse_timeout(c, argv[0], optarg, &timeout) != EXIT_OK)
            return EXIT_USAGE;
    }
    if (opt == 0)
        return code;
    _cleanup_free_ uint64_t *ids = NULL;
    size_t n = 0;
    code = cli_task_ids(argc, argv, false, &ids, &n);
    if (code != EXIT_OK)
        return code;
    _cleanup_free_ aioc_outcome **os = alloc_calloc(n, sizeof(*os));
    if (!os)
        return cli_fail(c, "await", -ENOMEM);

    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    int r = aioc_await(c->client, ids, n, timeout, os);
    if (r == -ETIMEDOUT) {
        fprintf(stderr, "aioctl: await: timed out after %g s; the tasks keep running\n", timeout);
        return EXIT_TIMEOUT;
    }
    if (r < 0)
        return cli_fail(c, "await", r);

    /* The exit status is that of the first task that did not succeed. */
    for (size_t i = 0; i < n; i++) {
        int e = print_outcome(c->json, os[i]);
        if (code == EXIT_OK)
            code = e;
        aioc_outcome_free(os[i]);
    }
    return code;
}

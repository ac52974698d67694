/*
 * cmd_cancel: `aioctl cancel ID...`, task.cancel() for each task.
 */
#include <errno.h>
#include <stdio.h>

#include "alloc.h"
#include "cli.h"
#include "macro.h"

static const char cancel_help[] =
    "Usage: aioctl cancel ID...\n"
    "\n"
    "Asks the tasks to cancel. Cancellation reaches each task at its current\n"
    "await point and spreads to its children. Prints nothing; use\n"
    "'aioctl await ID' to wait until they have ended.\n";

int cmd_cancel(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {},
    };
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "h", options, &code)) > 0)
        return cli_help(cancel_help);
    if (opt == 0)
        return code;
    if (optind >= argc)
        return cli_usage(argv[0], "missing task ID");

    size_t n = (size_t)(argc - optind);
    _cleanup_free_ uint64_t *ids = alloc_calloc(n, sizeof(*ids));
    if (!ids)
        return cli_fail(c, "cancel", -ENOMEM);
    for (size_t i = 0; i < n; i++)
        if (cli_parse_id(argv[optind + (int)i], &ids[i]) < 0)
            return cli_usage(argv[0], "'%s' is not a task id (a positive number)",
                             argv[optind + (int)i]);

    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    int r = aioc_cancel(c->client, ids, n);
    if (r < 0)
        return cli_fail(c, "cancel", r);
    return EXIT_OK;
}

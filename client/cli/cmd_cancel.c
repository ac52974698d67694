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
    _cleanup_free_ uint64_t *ids = NULL;
    size_t n = 0;
    code = cli_task_ids(argc, argv, false, &ids, &n);
    if (code != EXIT_OK)
        return code;

    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    int r = aioc_cancel(c->client, ids, n);
    if (r < 0)
        return cli_fail(c, "cancel", r);
    return EXIT_OK;
}

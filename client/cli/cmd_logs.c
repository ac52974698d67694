/*
 * cmd_logs: `aioctl logs [-f] ID`, a task's retained output lines; with -f
 * new lines as the task prints them, until it ends. The exit status follows
 * the task's state at the end, as for `aioctl await`.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "print.h"

static const char logs_help[] =
    "Usage: aioctl logs [-f] ID\n"
    "\n"
    "Prints the output lines the daemon keeps for the task (the last 1000 by\n"
    "default); when earlier ones are no longer kept, says how many on stderr.\n"
    "\n"
    "  -f, --follow  keep printing new lines until the task ends (and say at the\n"
    "                end how many lines the daemon dropped because aioctl could\n"
    "                not keep up)\n"
    "  -h, --help    show this help\n"
    "\n"
    "Exit status: 0 when the task is done or still running, 1 when it failed\n"
    "(its error on stderr), 5 when it was cancelled.\n";

/* Says on stderr, before the lines, when the oldest are no longer kept, so
 * that a reader does not take the first line printed for the first one (with
 * --json too: aioctl's own notes are plain text on stderr). Returns how many
 * it said were gone, which the count of lines dropped for a slow reader
 * must not include. */
static uint64_t note_dropped(cli *c, uint64_t id) {
    aioc_task_info *t = NULL;
    if (aioc_show(c->client, id, &t) < 0)
        return 0; /* an unknown task is the Logs request's error to report */
    uint64_t dropped = aioc_task_info_output_dropped(t);
    if (dropped)
        fprintf(stderr,
                "aioctl: logs: the first %" PRIu64 " lines of task %" PRIu64
                " are no longer kept (the daemon keeps the last max_output_lines of a task's "
                "output, the last 64 across a restart; a cluster's Redis, about 10,000)\n",
                dropped, id);
    aioc_task_info_free(t);
    return dropped;
}

int cmd_logs(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    unsigned flags = 0;
    uint64_t id;
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "fh", options, &code)) > 0) {
        if (opt == 'h')
            return cli_help(logs_help);
        flags |= AIOC_LOGS_FOLLOW;
    }
    if (opt == 0)
        return code;
    code = cli_one_task_id(argc, argv, &id);
    if (code != EXIT_OK)
        return code;

    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    /* The task may be another user's: its lines are escaped on a
     * terminal. */
    aioc_set_output_callback(c->client, print_logs_cb, &c->json);
    uint64_t gone = note_dropped(c, id), dropped = 0;
    int state = aioc_logs_ex(c->client, id, flags, &dropped);
    if (state < 0)
        return cli_fail(c, "logs", state);
    print_state(c->json, id, state);
    /* The daemon counts every line this request did not get: those already
     * said to be gone (or more of them, pushed out since) and, following,
     * those lost because aioctl read too slowly. */
    if ((flags & AIOC_LOGS_FOLLOW) && dropped > gone) {
        char what[48];
        snprintf(what, sizeof(what), "logs: task %" PRIu64, id);
        print_dropped(what, dropped - gone);
    }
    if (state != AIOC_STATE_FAILED && state != AIOC_STATE_CANCELLED)
        return EXIT_OK;

    /* Say why, as `await` does, when the outcome is still kept. */
    aioc_task_info *t = NULL;
    if (aioc_show(c->client, id, &t) == 0) {
        const aioc_outcome *o = aioc_task_info_outcome(t);
        if (o && aioc_outcome_state(o) == state) {
            const char *kind = aioc_outcome_error_kind(o), *msg = aioc_outcome_error_message(o);
            print_flush();
            print_error(stderr, "", kind, msg);
        }
        aioc_task_info_free(t);
    }
    return state == AIOC_STATE_CANCELLED ? EXIT_CANCELLED : EXIT_TASK_FAILED;
}

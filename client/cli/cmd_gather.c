/*
 * cmd_gather: `aioctl gather [--return-exceptions] [--timeout S] CALL...`,
 * asyncio.gather: runs the CALLs concurrently as tasks attached to this
 * aioctl, prints their output as it comes and then the list of results in
 * argument order.
 */
#define _GNU_SOURCE 1 /* asprintf */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "callword.h"
#include "cli.h"
#include "macro.h"
#include "print.h"

static const char gather_help[] =
    "Usage: aioctl gather [--return-exceptions] [--timeout S] CALL...\n"
    "\n"
    "Runs every CALL concurrently and waits for all, like asyncio.gather().\n"
    "A CALL is one shell word holding a function and its arguments, e.g.\n"
    "'demo.sleep 3'; inside it, '...', \"...\" and backslash quote as in a\n"
    "shell. A CALL of digits is the id of an existing task. Output lines are\n"
    "printed as they come, then the results as one JSON list.\n"
    "\n"
    "  -r, --return-exceptions  put failures in the list as\n"
    "                           {\"error\":KIND,\"message\":MSG} instead of failing\n"
    "  -t, --timeout S          cancel what is unfinished after S seconds\n"
    "  -h, --help               show this help\n";

/* Prints the results as one JSON list; failures (with --return-exceptions)
 * as {"error":KIND,"message":MSG}. */
static int print_results(bool json, aioc_outcome **os, size_t n) {
    _cleanup_free_ char *list = alloc_strdup("[");
    size_t len = 1;
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            char *l = alloc_realloc(list, len + 2);
            if (!l)
                return -ENOMEM;
            list = l;
            list[len++] = ',';
            list[len] = '\0';
        }
        _cleanup_free_ char *item = NULL;
        if (aioc_outcome_state(os[i]) == AIOC_STATE_DONE) {
            item = print_value_json(aioc_outcome_result(os[i]));
        } else {
            _cleanup_free_ char *k = print_json_string(aioc_outcome_error_kind(os[i]));
            _cleanup_free_ char *m = print_json_string(aioc_outcome_error_message(os[i]));
            if (!k || !m || asprintf(&item, "{\"error\":%s,\"message\":%s}", k, m) < 0)
                item = NULL;
        }
        if (!item)
            return -ENOMEM;
        size_t il = strlen(item);
        char *l = alloc_realloc(list, len + il + 2);
        if (!l)
            return -ENOMEM;
        list = l;
        memcpy(list + len, item, il + 1);
        len += il;
    }
    if (json)
        printf("{\"result\":%s]}\n", list);
    else
        printf("%s]\n", list);
    print_flush();
    return 0;
}

/* Says how many of a followed task's lines were dropped, if any. */
static void note_dropped(const aioc_outcome *o) {
    char what[48];
    snprintf(what, sizeof(what), "task %" PRIu64, aioc_outcome_task_id(o));
    print_dropped(what, aioc_outcome_output_dropped(o));
}

int cmd_gather(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"return-exceptions", no_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    unsigned flags = AIOC_GATHER_FOLLOW;
    double timeout = 0;
    int opt, code = EXIT_OK;

    int exit_now = -1;
    while ((opt = cli_getopt(c, argc, argv, "rt:h", options, &exit_now)) > 0) {
        switch (opt) {
        case 'r':
            flags |= AIOC_GATHER_RETURN_EXCEPTIONS;
            break;
        case 't':
            if (cli_parse_timeout(c, argv[0], optarg, &timeout) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 'h':
            return cli_help(gather_help);
        }
    }
    if (opt == 0)
        return exit_now;
    if (optind >= argc)
        return cli_usage(argv[0], "missing CALL");

    size_t n = (size_t)(argc - optind);
    if (n > AIOC_MAX_BATCH)
        return cli_usage(argv[0], "%zu CALLs: at most %u in one gather", n, AIOC_MAX_BATCH);
    aioc_call **calls = alloc_calloc(n, sizeof(*calls));
    aioc_outcome **os = alloc_calloc(n, sizeof(*os));
    aioc_outcome *failed = NULL;
    if (!calls || !os) {
        code = cli_fail(c, "gather", -ENOMEM);
        goto out;
    }
    for (size_t i = 0; i < n && code == EXIT_OK; i++) {
        const char *text = argv[optind + (int)i], *why;
        callword cw = {0};
        size_t pos = 0;
        int r = callword_parse(text, &cw, &why, &pos);
        if (r == -EINVAL) {
            code = cli_usage(argv[0], "CALL %zu '%s': %s at offset %zu", i + 1, text, why, pos);
            break;
        }
        if (r < 0) {
            code = cli_fail(c, "gather", r);
            break;
        }
        if (cw.task_id)
            calls[i] = aioc_call_task(cw.task_id);
        else
            calls[i] = cli_make_call(argv[0], cw.words[0], cw.words + 1, cw.n_words - 1, &code);
        if (!calls[i] && code == EXIT_OK)
            code = cli_fail(c, "gather", -ENOMEM);
        callword_done(&cw);
    }
    if (code != EXIT_OK)
        goto out;

    code = cli_connect(c);
    if (code != EXIT_OK)
        goto out;
    int r = aioc_gather(c->client, (const aioc_call *const *)calls, n, flags, timeout, os, &failed);
    if (r == -EIO && failed) {
        code = print_outcome(c->json, failed);
        note_dropped(failed);
    } else if (r == -ETIMEDOUT) {
        fprintf(stderr, "aioctl: gather: timed out after %g s; unfinished tasks were cancelled\n",
                timeout);
        code = EXIT_TIMEOUT;
    } else if (r < 0) {
        code = cli_fail(c, "gather", r);
    } else {
        r = print_results(c->json, os, n);
        if (r < 0)
            code = cli_fail(c, "gather", r);
        for (size_t i = 0; i < n; i++)
            note_dropped(os[i]);
        /* With --return-exceptions failures are results: exit 0. */
    }

out:
    for (size_t i = 0; calls && i < n; i++)
        aioc_call_free(calls[i]);
    for (size_t i = 0; os && i < n; i++)
        aioc_outcome_free(os[i]);
    free(calls);
    free(os);
    aioc_outcome_free(failed);
    return code;
}

/*
 * cmd_ps: `aioctl ps [--all]` (a table of tasks) and `aioctl show ID` (one
 * task in detail).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "macro.h"
#include "print.h"

static const char ps_help[] = "Usage: aioctl ps [--all]\n"
                              "\n"
                              "Lists unfinished tasks: ID STATE FUNCTION OWNER(uid/pid) AGE.\n"
                              "\n"
                              "  -a, --all   also list ended tasks whose outcome is still kept\n"
                              "  -h, --help  show this help\n";

static const char show_help[] =
    "Usage: aioctl show ID\n"
    "\n"
    "Shows everything known about one task as 'key: value' lines: id, state,\n"
    "function, ownership, owner, parent, times, arguments and result or error.\n";

static void print_ps_json(const aioc_task_info *t) {
    _cleanup_free_ char *f = print_json_string(aioc_task_info_function(t));
    printf("{\"task\":%" PRIu64 ",\"state\":\"%s\",\"function\":%s,\"ownership\":\"%s\","
           "\"uid\":%" PRIu32 ",\"pid\":%" PRId32 ",\"created_usec\":%" PRIu64 "}\n",
           aioc_task_info_id(t), aioc_state_name(aioc_task_info_state(t)), f ? f : "null",
           aioc_task_info_ownership(t), aioc_task_info_owner_uid(t), aioc_task_info_owner_pid(t),
           aioc_task_info_created_usec(t));
}

int cmd_ps(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    unsigned flags = 0;
    int opt;

    while ((opt = getopt_long(argc, argv, "+ah", options, NULL)) >= 0) {
        switch (opt) {
        case 'a':
            flags |= AIOC_LIST_ALL;
            break;
        case 'h':
            return cli_help(ps_help);
        default:
            return cli_bad_option(argv[0], argv);
        }
    }
    if (optind < argc)
        return cli_usage(argv[0], "unexpected argument '%s'", argv[optind]);

    int code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    aioc_task_info **tasks;
    size_t n;
    int r = aioc_list(c->client, flags, &tasks, &n);
    if (r < 0)
        return cli_fail(c, "ps", r);

    int wf = (int)strlen("FUNCTION");
    for (size_t i = 0; i < n; i++)
        wf = MAX(wf, (int)strlen(aioc_task_info_function(tasks[i])));
    if (!c->json)
        printf("%-8s %-9s %-*s %-14s %s\n", "ID", "STATE", wf, "FUNCTION", "OWNER", "AGE");
    for (size_t i = 0; i < n; i++) {
        const aioc_task_info *t = tasks[i];
        char owner[32], age[32];
        if (c->json) {
            print_ps_json(t);
            continue;
        }
        snprintf(owner, sizeof(owner), "%" PRIu32 "/%" PRId32, aioc_task_info_owner_uid(t),
                 aioc_task_info_owner_pid(t));
        const char *state =
            aioc_task_info_waiting_for(t) ? "waiting" : aioc_state_name(aioc_task_info_state(t));
        printf("%-8" PRIu64 " %-9s %-*s %-14s %s\n", aioc_task_info_id(t), state, wf,
               aioc_task_info_function(t), owner,
               print_age(aioc_task_info_created_usec(t), age, sizeof(age)));
    }
    aioc_task_info_array_free(tasks, n);
    return EXIT_OK;
}

static void show_plain(const aioc_task_info *t) {
    char buf[64];
    const aioc_outcome *o = aioc_task_info_outcome(t);
    _cleanup_free_ char *args =
        aioc_task_info_args(t) ? aioc_value_to_json(aioc_task_info_args(t)) : NULL;

    printf("id: %" PRIu64 "\n", aioc_task_info_id(t));
    printf("state: %s\n", aioc_state_name(aioc_task_info_state(t)));
    if (aioc_task_info_waiting_for(t))
        printf("waiting for: %s\n", aioc_task_info_waiting_for(t));
    printf("function: %s\n", aioc_task_info_function(t));
    printf("ownership: %s\n", aioc_task_info_ownership(t));
    printf("owner: uid %" PRIu32 ", pid %" PRId32 "\n", aioc_task_info_owner_uid(t),
           aioc_task_info_owner_pid(t));
    if (aioc_task_info_parent_id(t))
        printf("parent: %" PRIu64 "\n", aioc_task_info_parent_id(t));
    else
        printf("parent: -\n");
    printf("created: %s\n", print_time(aioc_task_info_created_usec(t), buf, sizeof(buf)));
    printf("started: %s\n", print_time(aioc_task_info_started_usec(t), buf, sizeof(buf)));
    printf("finished: %s\n", print_time(aioc_task_info_finished_usec(t), buf, sizeof(buf)));
    printf("args: %s\n", args ? args : "[]");
    uint64_t dropped = aioc_task_info_output_dropped(t);
    printf("output lines: %" PRIu64, aioc_task_info_output_lines(t));
    if (dropped)
        printf(" (the first %" PRIu64 " no longer kept)", dropped);
    printf("\n");
    if (o && aioc_outcome_state(o) == AIOC_STATE_DONE) {
        _cleanup_free_ char *v = aioc_value_to_json(aioc_outcome_result(o));
        printf("result: %s\n", v ? v : "null");
    } else if (o) {
        printf("error: %s: %s\n", aioc_outcome_error_kind(o), aioc_outcome_error_message(o));
    }
}

/* A time as a JSON string, or null when not reached. */
static char *json_time(uint64_t usec, char *buf, size_t len) {
    char t[64];
    if (usec == 0)
        snprintf(buf, len, "null");
    else
        snprintf(buf, len, "\"%s\"", print_time(usec, t, sizeof(t)));
    return buf;
}

static void show_json(const aioc_task_info *t) {
    char created[64], started[64], finished[64];
    const aioc_outcome *o = aioc_task_info_outcome(t);
    _cleanup_free_ char *f = print_json_string(aioc_task_info_function(t));
    _cleanup_free_ char *args =
        aioc_task_info_args(t) ? aioc_value_to_json(aioc_task_info_args(t)) : NULL;

    printf("{\"task\":%" PRIu64 ",\"state\":\"%s\",\"function\":%s,\"ownership\":\"%s\","
           "\"uid\":%" PRIu32 ",\"pid\":%" PRId32 ",\"parent\":%" PRIu64 ","
           "\"created\":%s,\"started\":%s,\"finished\":%s,\"args\":%s,"
           "\"output_lines\":%" PRIu64 ",\"output_dropped\":%" PRIu64,
           aioc_task_info_id(t), aioc_state_name(aioc_task_info_state(t)), f ? f : "null",
           aioc_task_info_ownership(t), aioc_task_info_owner_uid(t), aioc_task_info_owner_pid(t),
           aioc_task_info_parent_id(t),
           json_time(aioc_task_info_created_usec(t), created, sizeof(created)),
           json_time(aioc_task_info_started_usec(t), started, sizeof(started)),
           json_time(aioc_task_info_finished_usec(t), finished, sizeof(finished)),
           args ? args : "[]", aioc_task_info_output_lines(t), aioc_task_info_output_dropped(t));
    if (o && aioc_outcome_state(o) == AIOC_STATE_DONE) {
        _cleanup_free_ char *v = aioc_value_to_json(aioc_outcome_result(o));
        printf(",\"result\":%s", v ? v : "null");
    } else if (o) {
        _cleanup_free_ char *k = print_json_string(aioc_outcome_error_kind(o));
        _cleanup_free_ char *m = print_json_string(aioc_outcome_error_message(o));
        printf(",\"error\":{\"kind\":%s,\"message\":%s}", k ? k : "null", m ? m : "null");
    }
    printf("}\n");
}

int cmd_show(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {},
    };
    uint64_t id;
    int opt;

    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
        if (opt == 'h')
            return cli_help(show_help);
        return cli_bad_option(argv[0], argv);
    }
    if (optind >= argc)
        return cli_usage(argv[0], "missing task ID");
    if (optind + 1 < argc)
        return cli_usage(argv[0], "one task ID only");
    if (cli_parse_id(argv[optind], &id) < 0)
        return cli_usage(argv[0], "'%s' is not a task id (a positive number)", argv[optind]);

    int code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    aioc_task_info *t;
    int r = aioc_show(c->client, id, &t);
    if (r < 0)
        return cli_fail(c, "show", r);
    if (c->json)
        show_json(t);
    else
        show_plain(t);
    aioc_task_info_free(t);
    return EXIT_OK;
}

/*
 * cmd_ps: `aioctl ps [--all]` (a table of tasks) and `aioctl show ID` (one
 * task in detail).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "macro.h"
#include "print.h"

static const char ps_help[] =
    "Usage: aioctl ps [--all]\n"
    "\n"
    "Lists unfinished tasks, one per line: ID STATE OWNER AGE CALL. OWNER is\n"
    "the name of the user who created the task (its uid when it has none);\n"
    "CALL is the function with its arguments, shortened when long.\n"
    "\n"
    "  -a, --all   also list ended tasks whose outcome is still kept\n"
    "  -h, --help  show this help\n";

static const char show_help[] =
    "Usage: aioctl show ID\n"
    "\n"
    "Shows everything known about one task as 'key: value' lines: id, state,\n"
    "function, ownership, owner, parent, times, arguments and result or error.\n";

/* The name of user `uid`, or NULL when it has none. The last answer is
 * kept: the tasks of a list mostly have one owner, and each lookup may ask
 * a directory service. */
static const char *user_name(uint32_t uid) {
    static struct {
        /* Whether uid and name hold an answer yet. */
        bool known;
        uint32_t uid;
        /* The name, or "" when the uid has none (or one too long to keep). */
        char name[64];
    } last;

    if (!last.known || last.uid != uid) {
        const struct passwd *pw = getpwuid((uid_t)uid);
        last.known = true;
        last.uid = uid;
        last.name[0] = '\0';
        if (pw && pw->pw_name && strlen(pw->pw_name) < sizeof(last.name))
            strcpy(last.name, pw->pw_name);
    }
    return last.name[0] ? last.name : NULL;
}

/* OWNER: the user's name, else the uid, into buf. Returns buf. */
static char *owner(const aioc_task_info *t, char *buf, size_t len) {
    const char *name = user_name(aioc_task_info_owner_uid(t));
    if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%" PRIu32, aioc_task_info_owner_uid(t));
    return buf;
}

/* CALL: the call as one line, as the daemon sends it (the function and its
 * arguments, cut to 120 bytes); from an older daemon, the function alone. */
static const char *call_text(const aioc_task_info *t) {
    const char *s = aioc_task_info_call_text(t);
    return s ? s : aioc_task_info_function(t);
}

static void print_ps_json(const aioc_task_info *t) {
    _cleanup_free_ char *f = print_json_string(aioc_task_info_function(t));
    _cleanup_free_ char *call = print_json_string(call_text(t));
    const char *name = user_name(aioc_task_info_owner_uid(t));
    _cleanup_free_ char *user = name ? print_json_string(name) : NULL;

    printf("{\"task\":%" PRIu64 ",\"state\":\"%s\",\"function\":%s,\"ownership\":\"%s\","
           "\"uid\":%" PRIu32 ",\"pid\":%" PRId32 ",\"created_usec\":%" PRIu64
           ",\"user\":%s,\"call\":%s}\n",
           aioc_task_info_id(t), aioc_state_name(aioc_task_info_state(t)), f ? f : "null",
           aioc_task_info_ownership(t), aioc_task_info_owner_uid(t), aioc_task_info_owner_pid(t),
           aioc_task_info_created_usec(t), user ? user : "null", call ? call : "null");
}

/* The table: every column but the last as wide as its widest cell. */
static void print_ps_table(aioc_task_info *const *tasks, size_t n) {
    int wid = (int)strlen("ID"), wowner = (int)strlen("OWNER"), wage = (int)strlen("AGE");
    char buf[64];

    for (size_t i = 0; i < n; i++) {
        wid = MAX(wid, snprintf(buf, sizeof(buf), "%" PRIu64, aioc_task_info_id(tasks[i])));
        wowner = MAX(wowner, (int)strlen(owner(tasks[i], buf, sizeof(buf))));
        wage = MAX(wage,
                   (int)strlen(print_age(aioc_task_info_created_usec(tasks[i]), buf, sizeof(buf))));
    }
    printf("%-*s %-9s %-*s %-*s %s\n", wid, "ID", "STATE", wowner, "OWNER", wage, "AGE", "CALL");
    for (size_t i = 0; i < n; i++) {
        const aioc_task_info *t = tasks[i];
        char who[64], age[32];
        const char *state =
            aioc_task_info_waiting_for(t) ? "waiting" : aioc_state_name(aioc_task_info_state(t));
        printf("%-*" PRIu64 " %-9s %-*s %-*s %s\n", wid, aioc_task_info_id(t), state, wowner,
               owner(t, who, sizeof(who)), wage,
               print_age(aioc_task_info_created_usec(t), age, sizeof(age)), call_text(t));
    }
}

int cmd_ps(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    unsigned flags = 0;
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "ah", options, &code)) > 0) {
        if (opt == 'h')
            return cli_help(ps_help);
        flags |= AIOC_LIST_ALL;
    }
    if (opt == 0)
        return code;
    if (optind < argc)
        return cli_usage(argv[0], "unexpected argument '%s'", argv[optind]);

    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    aioc_task_info **tasks;
    size_t n;
    int r = aioc_list(c->client, flags, &tasks, &n);
    if (r < 0)
        return cli_fail(c, "ps", r);
    if (c->json)
        for (size_t i = 0; i < n; i++)
            print_ps_json(tasks[i]);
    else
        print_ps_table(tasks, n);
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
    const char *name = user_name(aioc_task_info_owner_uid(t));
    printf("owner: %s%suid %" PRIu32 "%s, pid %" PRId32 "\n", name ? name : "", name ? " (" : "",
           aioc_task_info_owner_uid(t), name ? ")" : "", aioc_task_info_owner_pid(t));
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
    const char *name = user_name(aioc_task_info_owner_uid(t));
    _cleanup_free_ char *user = name ? print_json_string(name) : NULL;

    printf("{\"task\":%" PRIu64 ",\"state\":\"%s\",\"function\":%s,\"ownership\":\"%s\","
           "\"uid\":%" PRIu32 ",\"user\":%s,\"pid\":%" PRId32 ",\"parent\":%" PRIu64 ","
           "\"created\":%s,\"started\":%s,\"finished\":%s,\"args\":%s,"
           "\"output_lines\":%" PRIu64 ",\"output_dropped\":%" PRIu64,
           aioc_task_info_id(t), aioc_state_name(aioc_task_info_state(t)), f ? f : "null",
           aioc_task_info_ownership(t), aioc_task_info_owner_uid(t), user ? user : "null",
           aioc_task_info_owner_pid(t), aioc_task_info_parent_id(t),
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
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "h", options, &code)) > 0)
        return cli_help(show_help);
    if (opt == 0)
        return code;
    code = cli_one_task_id(argc, argv, &id);
    if (code != EXIT_OK)
        return code;

    code = cli_connect(c);
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

/*
 * cmd_ps: `aioctl ps` (a table of tasks, filtered, printed page by page as
 * the daemon sends them) and `aioctl show ID` (one task in detail).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli.h"
#include "macro.h"
#include "print.h"
#include "schedopt.h"

static const char ps_help[] =
    "Usage: aioctl ps [--all] [--state STATE[,STATE...]] [--function NAME]\n"
    "                 [--owner USER] [--limit N]\n"
    "\n"
    "Lists unfinished tasks in id order, one per line: ID STATE OWNER AGE CALL.\n"
    "OWNER is the name of the user who created the task (its uid when it has\n"
    "none); CALL is the function with its arguments, shortened when long. The\n"
    "lines are printed as the daemon sends them, a page at a time. STATE says\n"
    "what a task with a schedule waits for: \"waiting (start in 42.0s)\",\n"
    "\"waiting (start at 10:00:00)\", \"waiting (retry 2/4 in 3.2s)\",\n"
    "\"waiting (after 12,13)\", \"running (attempt 2/4)\", \"failed (4 attempts)\";\n"
    "a task held by a concurrency limit is \"waiting\".\n"
    "\n"
    "  -a, --all              also list ended tasks whose outcome is still kept\n"
    "      --state STATE      only tasks in this state: pending, running, done,\n"
    "                         failed or cancelled (several: comma-separated or\n"
    "                         repeated); a finished state lists ended tasks\n"
    "                         without --all\n"
    "      --function NAME    only tasks of this function (plugin.function), or\n"
    "                         of every function of a plugin (plugin.); repeatable\n"
    "      --owner USER       only tasks of this user (a name or a uid); repeatable\n"
    "      --limit N          stop after N tasks\n"
    "  -h, --help             show this help\n";

static const char show_help[] =
    "Usage: aioctl show ID\n"
    "\n"
    "Shows everything known about one task as 'key: value' lines: id, state,\n"
    "function, ownership, owner, parent, times, arguments and result or error;\n"
    "for a task with a schedule also its attempts, next run, the tasks it runs\n"
    "after and each ended attempt (number, start, end, error kind: message);\n"
    "for a cluster task (an id from 'submit --queue', shown by any host of the\n"
    "cluster) also its queue, the host that runs or ran it and its owner host.\n";

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

/* The wall clock in microseconds since the epoch, as the daemon's times. */
static uint64_t now_usec(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* STATE: the state, and what a waiting or retrying task waits for. */
static char *status(const aioc_task_info *t, uint64_t now, char *buf, size_t len) {
    schedopt_task st = {
        .state = aioc_task_info_state(t),
        .waiting_for = aioc_task_info_waiting_for(t),
        .attempt = aioc_task_info_attempt(t),
        .max_attempts = aioc_task_info_max_attempts(t),
        .next_run_usec = aioc_task_info_next_run_usec(t),
    };
    st.after = aioc_task_info_after(t, &st.n_after);
    return schedopt_status(&st, now, buf, len);
}

/* The task ids of `after` as a JSON array (a new string), NULL on OOM. */
static char *json_ids(const aioc_task_info *t) {
    size_t n = 0;
    const uint64_t *ids = aioc_task_info_after(t, &n);
    char *buf = malloc(2 + n * 21 + 1);
    if (!buf)
        return NULL;
    size_t at = 0;
    buf[at++] = '[';
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(buf + at, "%s%" PRIu64, i ? "," : "", ids[i]);
    buf[at++] = ']';
    buf[at] = '\0';
    return buf;
}

/* The concurrency limit a waiting task is queued behind, as a JSON string
 * (NULL: none, or out of memory; printed as null). */
static char *json_waiting_for(const aioc_task_info *t) {
    const char *w = aioc_task_info_waiting_for(t);
    return w ? print_json_string(w) : NULL;
}

static void print_ps_json(const aioc_task_info *t) {
    _cleanup_free_ char *f = print_json_string(aioc_task_info_function(t));
    _cleanup_free_ char *call = print_json_string(call_text(t));
    const char *name = user_name(aioc_task_info_owner_uid(t));
    _cleanup_free_ char *user = name ? print_json_string(name) : NULL;
    _cleanup_free_ char *after = json_ids(t);
    _cleanup_free_ char *limit = json_waiting_for(t);

    printf("{\"task\":%" PRIu64 ",\"state\":\"%s\",\"function\":%s,\"ownership\":\"%s\","
           "\"uid\":%" PRIu32 ",\"pid\":%" PRId32 ",\"created_usec\":%" PRIu64
           ",\"user\":%s,\"call\":%s,\"attempt\":%" PRIu32 ",\"max_attempts\":%" PRIu32
           ",\"next_run_usec\":%" PRIu64 ",\"after\":%s,\"waiting_for\":%s}\n",
           aioc_task_info_id(t), aioc_state_name(aioc_task_info_state(t)), f ? f : "null",
           aioc_task_info_ownership(t), aioc_task_info_owner_uid(t), aioc_task_info_owner_pid(t),
           aioc_task_info_created_usec(t), user ? user : "null", call ? call : "null",
           aioc_task_info_attempt(t), aioc_task_info_max_attempts(t),
           aioc_task_info_next_run_usec(t), after ? after : "[]", limit ? limit : "null");
}

/* The table, printed a page at a time: the header once, before the first
 * row (or alone when there is none); every column but the last as wide as
 * its widest cell so far, so that a long listing only widens, never
 * narrows. */
typedef struct ps_table {
    bool header_done;
    int wid, wstate, wowner, wage;
} ps_table;

static void print_ps_header(ps_table *tb) {
    printf("%-*s %-*s %-*s %-*s %s\n", tb->wid, "ID", tb->wstate, "STATE", tb->wowner, "OWNER",
           tb->wage, "AGE", "CALL");
    tb->header_done = true;
}

static void print_ps_page(ps_table *tb, aioc_task_info *const *tasks, size_t n) {
    char buf[SCHEDOPT_STATUS_MAX];
    uint64_t now = now_usec();

    for (size_t i = 0; i < n; i++) {
        tb->wid = MAX(tb->wid, snprintf(buf, sizeof(buf), "%" PRIu64, aioc_task_info_id(tasks[i])));
        tb->wstate = MAX(tb->wstate, (int)strlen(status(tasks[i], now, buf, sizeof(buf))));
        tb->wowner = MAX(tb->wowner, (int)strlen(owner(tasks[i], buf, sizeof(buf))));
        tb->wage =
            MAX(tb->wage,
                (int)strlen(print_age(aioc_task_info_created_usec(tasks[i]), buf, sizeof(buf))));
    }
    if (n > 0 && !tb->header_done)
        print_ps_header(tb);
    for (size_t i = 0; i < n; i++) {
        const aioc_task_info *t = tasks[i];
        char who[64], age[32], state[SCHEDOPT_STATUS_MAX];
        printf("%-*" PRIu64 " %-*s %-*s %-*s ", tb->wid, aioc_task_info_id(t), tb->wstate,
               status(t, now, state, sizeof(state)), tb->wowner, owner(t, who, sizeof(who)),
               tb->wage, print_age(aioc_task_info_created_usec(t), age, sizeof(age)));
        print_line(stdout, "", call_text(t), "\n");
    }
}

/* What ps's options asked for, kept until the query can be made (--all
 * may come after the filters). Strings point into argv. */
typedef struct ps_opts {
    unsigned flags;
    /* Bit (1 << AIOC_STATE_*) for each state named. */
    unsigned states;
    const char **functions;
    size_t n_functions;
    uint32_t *owners;
    size_t n_owners;
    /* --limit, 0 when not given. */
    uint64_t limit;
} ps_opts;

static void ps_opts_done(ps_opts *o) {
    free(o->functions);
    free(o->owners);
}

/* --state's value: comma-separated state names. EXIT_OK or the usage
 * error's exit code. */
static int parse_states(cli *c, const char *value, ps_opts *o) {
    static const struct {
        const char *name;
        int state;
    } names[] = {
        {"pending", AIOC_STATE_PENDING},     {"running", AIOC_STATE_RUNNING},
        {"done", AIOC_STATE_DONE},           {"failed", AIOC_STATE_FAILED},
        {"cancelled", AIOC_STATE_CANCELLED},
    };
    const char *p = value;
    for (;;) {
        size_t len = strcspn(p, ",");
        size_t i;
        for (i = 0; i < ELEMENTSOF(names); i++)
            if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0)
                break;
        if (i == ELEMENTSOF(names))
            return cli_usage("ps",
                             "%s: '%.*s' is not a task state (pending, running, done, failed, "
                             "cancelled)",
                             c->opt_name, (int)len, p);
        o->states |= 1u << names[i].state;
        if (p[len] == '\0')
            return EXIT_OK;
        p += len + 1;
    }
}

/* --owner's value: a uid (digits) or a user name. */
static int parse_owner(cli *c, const char *value, ps_opts *o) {
    uint64_t uid = 0;
    bool digits = *value && strspn(value, "0123456789") == strlen(value);
    if (digits) {
        /* 0, 00 …: root; any other number must fit a uid. */
        bool zero = strspn(value, "0") == strlen(value);
        if (!zero && (cli_parse_id(value, &uid) < 0 || uid > UINT32_MAX))
            return cli_usage("ps", "%s: uid %s is too large", c->opt_name, value);
    } else {
        const struct passwd *pw = *value ? getpwnam(value) : NULL;
        if (!pw)
            return cli_usage("ps", "%s: no user '%s'", c->opt_name, value);
        uid = pw->pw_uid;
    }
    uint32_t *more = realloc(o->owners, (o->n_owners + 1) * sizeof(*more));
    if (!more)
        return cli_fail(c, "ps", -ENOMEM);
    o->owners = more;
    o->owners[o->n_owners++] = (uint32_t)uid;
    return EXIT_OK;
}

static int add_function(cli *c, const char *value, ps_opts *o) {
    const char **more = realloc(o->functions, (o->n_functions + 1) * sizeof(*more));
    if (!more)
        return cli_fail(c, "ps", -ENOMEM);
    o->functions = more;
    o->functions[o->n_functions++] = value;
    return EXIT_OK;
}

/* Reads ps's options into o. -1 to go on, else the exit code to return. */
static int parse_ps(cli *c, int argc, char **argv, ps_opts *o) {
    /* Long options without a letter: below CLI_OPT_JSON, as cli_getopt wants. */
    enum { OPT_STATE = 0x80, OPT_FUNCTION, OPT_OWNER, OPT_LIMIT };
    static const struct option options[] = {
        {"all", no_argument, NULL, 'a'},
        {"state", required_argument, NULL, OPT_STATE},
        {"function", required_argument, NULL, OPT_FUNCTION},
        {"owner", required_argument, NULL, OPT_OWNER},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "ah", options, &code)) > 0) {
        switch (opt) {
        case 'h':
            return cli_help(ps_help);
        case 'a':
            o->flags |= AIOC_LIST_ALL;
            code = EXIT_OK;
            break;
        case OPT_STATE:
            code = parse_states(c, optarg, o);
            break;
        case OPT_FUNCTION:
            code = add_function(c, optarg, o);
            break;
        case OPT_OWNER:
            code = parse_owner(c, optarg, o);
            break;
        case OPT_LIMIT:
            code = cli_parse_id(optarg, &o->limit) < 0
                       ? cli_usage("ps", "%s: '%s' is not a number of tasks (1 or more)",
                                   c->opt_name, optarg)
                       : EXIT_OK;
            break;
        }
        if (code != EXIT_OK)
            return code;
        code = -1;
    }
    if (opt == 0)
        return code;
    if (optind < argc)
        return cli_usage(argv[0], "unexpected argument '%s'", argv[optind]);
    return -1;
}

/* The query the options describe: *ret is new. EXIT_OK or an exit code. */
static int make_query(cli *c, const ps_opts *o, aioc_list_query **ret) {
    aioc_list_query *q = NULL;
    int r = aioc_list_query_new(o->flags, &q);
    for (int s = AIOC_STATE_PENDING; r >= 0 && s <= AIOC_STATE_CANCELLED; s++)
        if (o->states & (1u << s))
            r = aioc_list_query_add_state(q, s);
    for (size_t i = 0; r >= 0 && i < o->n_functions; i++) {
        r = aioc_list_query_add_function(q, o->functions[i]);
        if (r == -EINVAL) {
            aioc_list_query_free(q);
            return cli_usage("ps",
                             "--function: '%s' is not a function name (plugin.function, or "
                             "plugin. for every function of a plugin)",
                             o->functions[i]);
        }
    }
    for (size_t i = 0; r >= 0 && i < o->n_owners; i++)
        r = aioc_list_query_add_owner(q, o->owners[i]);
    if (r < 0) {
        aioc_list_query_free(q);
        return cli_fail(c, "ps", r);
    }
    *ret = q;
    return EXIT_OK;
}

int cmd_ps(cli *c, int argc, char **argv) {
    ps_opts o = {0};
    aioc_list_query *q = NULL;
    int code = parse_ps(c, argc, argv, &o);
    if (code >= 0) {
        /* --help shown (EXIT_OK), or a usage error. */
        ps_opts_done(&o);
        return code;
    }
    code = make_query(c, &o, &q);
    if (code == EXIT_OK)
        code = cli_connect(c);
    if (code != EXIT_OK) {
        aioc_list_query_free(q);
        ps_opts_done(&o);
        return code;
    }

    /* Page after page, each printed and let go as it comes: the first
     * lines show at once and memory stays bounded however many tasks. */
    ps_table tb = {.wid = (int)strlen("ID"),
                   .wstate = (int)strlen("cancelled"),
                   .wowner = (int)strlen("OWNER"),
                   .wage = (int)strlen("AGE")};
    uint64_t cursor = 0, left = o.limit;
    int more;
    do {
        aioc_task_info **tasks;
        size_t n;
        size_t want = o.limit ? (size_t)MIN(left, (uint64_t)SIZE_MAX) : 0;
        more = aioc_list_page(c->client, q, &cursor, want, &tasks, &n);
        if (more < 0)
            break;
        if (c->json)
            for (size_t i = 0; i < n; i++)
                print_ps_json(tasks[i]);
        else
            print_ps_page(&tb, tasks, n);
        print_flush();
        aioc_task_info_array_free(tasks, n);
        if (o.limit) {
            left -= MIN(left, (uint64_t)n);
            if (left == 0)
                more = 0;
        }
    } while (more > 0);
    aioc_list_query_free(q);
    ps_opts_done(&o);
    if (more < 0)
        return cli_fail(c, "ps", more);
    if (!c->json && !tb.header_done)
        print_ps_header(&tb);
    return EXIT_OK;
}

/* The schedule lines of show: attempts, next run, after. */
static void show_schedule(const aioc_task_info *t) {
    char buf[64], when[48];
    uint32_t max = aioc_task_info_max_attempts(t);
    uint64_t next = aioc_task_info_next_run_usec(t);
    size_t n;
    const uint64_t *after = aioc_task_info_after(t, &n);

    if (max > 1)
        printf("attempts: %" PRIu32 " of %" PRIu32 "\n", aioc_task_info_attempt(t), max);
    else if (aioc_task_info_attempt(t) > 1)
        /* A cluster task run again elsewhere after its host went silent
         * (on_interrupt = retry): no bound to give. */
        printf("attempts: %" PRIu32 "\n", aioc_task_info_attempt(t));
    if (next)
        printf("next run: %s (%s)\n", print_time(next, buf, sizeof(buf)),
               schedopt_when(next, now_usec(), when, sizeof(when)));
    if (n) {
        printf("after:");
        for (size_t i = 0; i < n; i++)
            printf(" %" PRIu64, after[i]);
        printf("\n");
    }
}

/* One line per ended attempt: "attempt N: START - END: KIND: MESSAGE". */
static void show_attempts(const aioc_task_info *t) {
    size_t n = aioc_task_info_n_attempt_records(t);
    for (size_t i = 0; i < n; i++) {
        char start[64], end[64];
        uint32_t number;
        uint64_t started, finished;
        const char *kind, *message;
        if (aioc_task_info_attempt_record(t, i, &number, &started, &finished, &kind, &message) < 0)
            break;
        printf("attempt %" PRIu32 ": %s - %s", number, print_time(started, start, sizeof(start)),
               print_time(finished, end, sizeof(end)));
        if (*kind || *message)
            print_error(stdout, ": ", kind, message);
        else
            printf("\n");
    }
}

/* A cluster task's queue and the host that runs or ran it (none while it
 * is queued); nothing for a local task. */
static void show_cluster(const aioc_task_info *t) {
    if (aioc_task_info_queue(t))
        print_line(stdout, "queue: ", aioc_task_info_queue(t), "\n");
    if (aioc_task_info_host(t))
        print_line(stdout, "host: ", aioc_task_info_host(t), "\n");
}

static void show_plain(const aioc_task_info *t) {
    char buf[64];
    const aioc_outcome *o = aioc_task_info_outcome(t);
    _cleanup_free_ char *args =
        aioc_task_info_args(t) ? print_value_json(aioc_task_info_args(t)) : NULL;

    printf("id: %" PRIu64 "\n", aioc_task_info_id(t));
    printf("state: %s\n", aioc_state_name(aioc_task_info_state(t)));
    if (aioc_task_info_waiting_for(t))
        print_line(stdout, "waiting for: ", aioc_task_info_waiting_for(t), "\n");
    show_schedule(t);
    print_line(stdout, "function: ", aioc_task_info_function(t), "\n");
    show_cluster(t);
    printf("ownership: %s\n", aioc_task_info_ownership(t));
    const char *name = user_name(aioc_task_info_owner_uid(t));
    printf("owner: %s%suid %" PRIu32 "%s, pid %" PRId32 "\n", name ? name : "", name ? " (" : "",
           aioc_task_info_owner_uid(t), name ? ")" : "", aioc_task_info_owner_pid(t));
    if (aioc_task_info_owner_host(t))
        print_line(stdout, "owner host: ", aioc_task_info_owner_host(t), "\n");
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
        _cleanup_free_ char *v = print_value_json(aioc_outcome_result(o));
        printf("result: %s\n", v ? v : "null");
    } else if (o) {
        _cleanup_free_ char *k = print_text(aioc_outcome_error_kind(o));
        _cleanup_free_ char *m = print_text(aioc_outcome_error_message(o));
        printf("error: %s: %s\n", k ? k : "?", m ? m : "?");
    }
    show_attempts(t);
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

/* show --json's schedule fields: attempt, max_attempts, next_run, after
 * and attempts (each with number, started, finished and error). */
static void show_json_schedule(const aioc_task_info *t) {
    char next[64];
    _cleanup_free_ char *after = json_ids(t);
    _cleanup_free_ char *limit = json_waiting_for(t);
    printf(",\"attempt\":%" PRIu32 ",\"max_attempts\":%" PRIu32 ",\"next_run\":%s,\"after\":%s,"
           "\"waiting_for\":%s,\"attempts\":[",
           aioc_task_info_attempt(t), aioc_task_info_max_attempts(t),
           json_time(aioc_task_info_next_run_usec(t), next, sizeof(next)), after ? after : "[]",
           limit ? limit : "null");
    size_t n = aioc_task_info_n_attempt_records(t);
    for (size_t i = 0; i < n; i++) {
        char start[64], end[64];
        uint32_t number;
        uint64_t started, finished;
        const char *kind, *message;
        if (aioc_task_info_attempt_record(t, i, &number, &started, &finished, &kind, &message) < 0)
            break;
        _cleanup_free_ char *k = print_json_string(kind);
        _cleanup_free_ char *m = print_json_string(message);
        printf("%s{\"number\":%" PRIu32 ",\"started\":%s,\"finished\":%s,\"error\":{\"kind\":%s,"
               "\"message\":%s}}",
               i ? "," : "", number, json_time(started, start, sizeof(start)),
               json_time(finished, end, sizeof(end)), k ? k : "null", m ? m : "null");
    }
    printf("]");
}

/* show --json's cluster fields, each only when set: queue, host and
 * owner_host. */
static void show_json_cluster(const aioc_task_info *t) {
    const struct {
        const char *key, *value;
    } fields[] = {
        {"queue", aioc_task_info_queue(t)},
        {"host", aioc_task_info_host(t)},
        {"owner_host", aioc_task_info_owner_host(t)},
    };
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        if (!fields[i].value)
            continue;
        _cleanup_free_ char *v = print_json_string(fields[i].value);
        printf(",\"%s\":%s", fields[i].key, v ? v : "null");
    }
}

static void show_json(const aioc_task_info *t) {
    char created[64], started[64], finished[64];
    const aioc_outcome *o = aioc_task_info_outcome(t);
    _cleanup_free_ char *f = print_json_string(aioc_task_info_function(t));
    _cleanup_free_ char *args =
        aioc_task_info_args(t) ? print_value_json(aioc_task_info_args(t)) : NULL;
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
    show_json_schedule(t);
    show_json_cluster(t);
    if (o && aioc_outcome_state(o) == AIOC_STATE_DONE) {
        _cleanup_free_ char *v = print_value_json(aioc_outcome_result(o));
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

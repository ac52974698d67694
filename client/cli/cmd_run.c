/*
 * cmd_run: `aioctl run`, `submit` and `detach`, the commands that start one
 * task from FUNC [ARG...]. Arguments are sent as text; the daemon converts
 * them by the function's declared parameter types. Each takes the schedule
 * options (schedopt.h); a `run` with a schedule is sent as a followed
 * attached Submit and an Await, since a Gather carries no schedule.
 * `submit` and `detach` also take --queue, which sends the task to a
 * cluster queue instead (aioc_submit_queue), and `submit --detach` is
 * `detach`.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "macro.h"
#include "print.h"
#include "schedopt.h"

static const char run_help[] =
    "Usage: aioctl run [--timeout S] [SCHEDULE OPTIONS] FUNC [ARG...]\n"
    "\n"
    "Runs FUNC as a task attached to this aioctl and waits for it, like\n"
    "asyncio.run(). Its output lines are printed as they come, then its result\n"
    "as JSON on the last line. Interrupting aioctl cancels the task. When\n"
    "aioctl could not keep up with the task's output and the daemon had to drop\n"
    "lines, it says how many on stderr at the end. With a schedule it waits\n"
    "for its time and its retries too; the output of every attempt is printed.\n"
    "\n"
    "  -t, --timeout S      cancel the task after S seconds (exit status 4),\n"
    "                       waiting for its start and retries included\n" SCHEDOPT_HELP
    "  -h, --help           show this help\n";

/* The help lines of --queue, for submit and detach. */
#define QUEUE_HELP                                                                                 \
    "  -q, --queue Q        send it to the cluster queue Q (1-64 of A-Z a-z 0-9 _ . -):\n"         \
    "                       any host working Q that has FUNC runs it; the id printed\n"            \
    "                       is cluster-wide (await, show, cancel, logs take it on\n"               \
    "                       any host); no schedule options with it\n"

static const char submit_help[] =
    "Usage: aioctl submit [--queue Q] [--detach] [SCHEDULE OPTIONS] FUNC [ARG...]\n"
    "\n"
    "Creates a task that outlives aioctl and keeps its result for a later\n"
    "'aioctl await ID'. Prints the task's id. The daemon keeps the task across\n"
    "its restarts (unless durability = none), schedule and attempts included.\n"
    "\n" QUEUE_HELP "      --detach         keep no result: as 'aioctl detach'\n" SCHEDOPT_HELP
    "  -h, --help           show this help\n";

static const char detach_help[] =
    "Usage: aioctl detach [--queue Q] [SCHEDULE OPTIONS] FUNC [ARG...]\n"
    "\n"
    "Starts a task nobody waits for (fire and forget): it outlives aioctl and\n"
    "its result is only logged by the daemon. Prints the task's id. The daemon\n"
    "keeps the task across its restarts (unless durability = none).\n"
    "\n" QUEUE_HELP SCHEDOPT_HELP "  -h, --help           show this help\n";

/* The `val` of --detach: apart from the schedule options' and below
 * CLI_OPT_JSON, as cli_getopt wants. */
enum {
    OPT_DETACH = 0xb0,
};

/* Each command's own options. */
static const struct option run_options[] = {
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    SCHEDOPT_OPTIONS,
    {},
};
static const struct option submit_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"help", no_argument, NULL, 'h'},
    SCHEDOPT_OPTIONS,
    {},
};
/* detach's: submit's but --detach. */
static const struct option detach_options[] = {
    {"queue", required_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    SCHEDOPT_OPTIONS,
    {},
};

/* What one of the commands takes. */
typedef struct command {
    const char *help;
    const char *shortopts;
    const struct option *options;
} command;

static const command run_command = {run_help, "+t:h", run_options};
static const command submit_command = {submit_help, "+q:h", submit_options};
static const command detach_command = {detach_help, "+q:h", detach_options};

/* What the options asked for, beyond the schedule. */
typedef struct start_opts {
    /* run's --timeout, 0 when not given. */
    double timeout;
    /* --queue's value (borrowed from argv), or NULL. */
    const char *queue;
    /* submit --detach. */
    bool detach;
    /* The first schedule option as typed ("--retries"), "" when none:
     * --queue refuses it by that name. */
    char sched_opt[64];
} start_opts;

/* 1 to AIOC_QUEUE_NAME_MAX of AIOC_QUEUE_NAME_CHARS. */
static bool queue_name_valid(const char *q) {
    size_t n = strlen(q);
    return n >= 1 && n <= AIOC_QUEUE_NAME_MAX && strspn(q, AIOC_QUEUE_NAME_CHARS) == n;
}

/* Parses the command's options (cmd), the schedule options, --help and
 * the global options, up to FUNC: the words after it are the call's,
 * options or not. *ret_sched gets the schedule asked for, or NULL. Returns
 * -1 to go on, else an exit code. */
static int parse(cli *c, int argc, char **argv, const command *cmd, start_opts *so_out,
                 aioc_schedule **ret_sched) {
    schedopt so = {0};
    char why[160];
    time_t now = time(NULL);
    int opt, code = -1;
    while ((opt = cli_getopt(c, argc, argv, cmd->shortopts, cmd->options, &code)) > 0) {
        if (opt == 'h') {
            schedopt_done(&so);
            return cli_help(cmd->help);
        }
        if (opt == 't') {
            if (cli_parse_timeout(c, argv[0], optarg, &so_out->timeout) != EXIT_OK) {
                schedopt_done(&so);
                return EXIT_USAGE;
            }
            continue;
        }
        if (opt == 'q') {
            if (!queue_name_valid(optarg)) {
                schedopt_done(&so);
                return cli_usage(argv[0],
                                 "option '%s' wants a queue name (1-%d characters of A-Z a-z "
                                 "0-9 _ . -), not '%s'",
                                 c->opt_name, AIOC_QUEUE_NAME_MAX, optarg);
            }
            so_out->queue = optarg;
            continue;
        }
        if (opt == OPT_DETACH) {
            so_out->detach = true;
            continue;
        }
        if (!so_out->sched_opt[0])
            snprintf(so_out->sched_opt, sizeof(so_out->sched_opt), "%s", c->opt_name);
        int r = schedopt_parse(&so, opt, optarg, now, why, sizeof(why));
        if (r < 0) {
            schedopt_done(&so);
            if (r == -ENOMEM)
                return cli_fail(c, argv[0], r);
            if (r == -E2BIG)
                return cli_usage(argv[0], "option '%s' %s", c->opt_name, why);
            return cli_usage(argv[0], "option '%s' %s, not '%s'", c->opt_name, why, optarg);
        }
    }
    if (opt != 0 && so_out->queue && so_out->sched_opt[0]) {
        /* A queued task runs once, as soon as a host takes it: the
         * cluster keeps no schedule. */
        schedopt_done(&so);
        return cli_usage(argv[0],
                         "option '%s' cannot be used with --queue (a queued task "
                         "takes no schedule)",
                         so_out->sched_opt);
    }
    if (opt == 0 || optind >= argc || schedopt_check(&so, why, sizeof(why)) < 0) {
        schedopt_done(&so);
        if (opt == 0)
            return code;
        if (optind >= argc)
            return cli_usage(argv[0], "missing FUNC");
        return cli_usage(argv[0], "%s", why);
    }
    int r = schedopt_build(&so, ret_sched);
    schedopt_done(&so);
    if (r < 0)
        return cli_fail(c, argv[0], r);
    return -1;
}

/* FUNC -- ARG...: the "--" only says that what follows are arguments (so
 * that words such as "-j2" read clearly as such); it is not one itself. */
static int first_arg(int argc, char **argv) {
    int i = optind + 1;
    return i < argc && strcmp(argv[i], "--") == 0 ? i + 1 : i;
}

/* A scheduled run: its two requests, and whether the followed task's
 * output has ended (the submit's last frame). */
typedef struct sched_run {
    aioc_request *submit;
    aioc_request *await;
    bool output_ended;
    /* The daemon ended the output's stream with an error (a negative
     * errno; its message is the submit's error message). */
    int stream_error;
} sched_run;

static void on_submit_event(aioc_request *req, int event, uint64_t task_id, int state,
                            void *userdata) {
    sched_run *sr = userdata;
    (void)req;
    (void)task_id;
    if (event != AIOC_EVENT_OUTPUT_END)
        return;
    sr->output_ended = true;
    if (state < 0)
        sr->stream_error = state;
}

/* Runs the client until `req` has completed, or, with req NULL, until the
 * followed output has ended: aioc_process, then poll for what it wants.
 * 0 or the errno the connection died with. */
static int drive(cli *c, const aioc_request *req, const sched_run *sr) {
    for (;;) {
        int r = aioc_process(c->client);
        if (r < 0)
            return r;
        if (req ? aioc_request_done(req) == 1 : sr->output_ended)
            return 0;
        print_flush_cb(NULL);
        struct pollfd p = {.fd = aioc_fd(c->client), .events = (short)aioc_events(c->client)};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return -errno;
    }
}

/*
 * `run` with a schedule: a Gather has no schedule, so it is a Submit of an
 * attached task with follow (its output comes to us until it ends, every
 * attempt's) and an Await of it that cancels it on timeout. The outcome of
 * an attached task is held for this connection until an Await delivers it,
 * so nothing is lost in between (docs/protocol.md, section 6). Closing
 * aioctl cancels the task, as with a plain run.
 */
static int run_scheduled(cli *c, const char *function, const aioc_call *call,
                         const aioc_schedule *sched, double timeout) {
    sched_run sr = {0};
    int code, r;

    r = aioc_start_submit_ex(c->client, call, AIOC_SUBMIT_ATTACHED | AIOC_SUBMIT_FOLLOW, sched,
                             NULL, NULL, &sr.submit);
    if (r < 0)
        return cli_fail(c, function, r);
    aioc_request_set_event_callback(sr.submit, on_submit_event, &sr);
    r = drive(c, sr.submit, &sr);
    if (r < 0) {
        code = cli_fail(c, function, r);
        goto out;
    }
    if (aioc_request_error(sr.submit) < 0) {
        code = cli_fail_request(function, sr.submit);
        goto out;
    }
    uint64_t id = aioc_request_task_id(sr.submit);
    r = aioc_start_await(c->client, &id, 1, AIOC_AWAIT_CANCEL_ON_TIMEOUT, timeout, NULL, NULL,
                         &sr.await);
    if (r >= 0)
        r = drive(c, sr.await, &sr);
    if (r < 0) {
        code = cli_fail(c, function, r);
        goto out;
    }
    r = aioc_request_error(sr.await);
    if (r == -ETIMEDOUT) {
        fprintf(stderr, "aioctl: %s: timed out after %g s; the task was cancelled\n", function,
                timeout);
        code = EXIT_TIMEOUT;
        goto out;
    }
    if (r < 0) {
        code = cli_fail_request(function, sr.await);
        goto out;
    }
    /* The outcome may come before the last output lines: print those
     * first, as a plain run does. */
    r = drive(c, NULL, &sr);
    if (r < 0) {
        code = cli_fail(c, function, r);
        goto out;
    }
    code = print_outcome(c->json, aioc_request_outcome(sr.await, 0));
    print_dropped(NULL, aioc_request_output_dropped(sr.submit));
    /* Its output stopped coming before it ended: say why. */
    if (sr.stream_error < 0) {
        _cleanup_free_ char *why = print_text(aioc_request_error_message(sr.submit));
        fprintf(stderr, "aioctl: %s: the task's output stopped coming: %s\n", function,
                why ? why : strerror(-sr.stream_error));
    }
out:
    aioc_request_free(sr.await);
    aioc_request_free(sr.submit);
    return code;
}

int cmd_run(cli *c, int argc, char **argv) {
    start_opts so = {0};
    aioc_outcome *o = NULL;
    aioc_schedule *sched = NULL;
    int code = parse(c, argc, argv, &run_command, &so, &sched);
    if (code >= 0)
        return code;
    double timeout = so.timeout;

    const char *function = argv[optind];
    int first = first_arg(argc, argv);
    aioc_call *call = cli_make_call(argv[0], function, argv + first, (size_t)(argc - first), &code);
    if (!call) {
        aioc_schedule_free(sched);
        return code;
    }
    code = cli_connect(c);
    if (code == EXIT_OK && sched) {
        code = run_scheduled(c, function, call, sched, timeout);
    } else if (code == EXIT_OK) {
        int r = aioc_run(c->client, call, timeout, &o);
        if (r == -ETIMEDOUT) {
            fprintf(stderr, "aioctl: %s: timed out after %g s; the task was cancelled\n", function,
                    timeout);
            code = EXIT_TIMEOUT;
        } else if (r < 0) {
            code = cli_fail(c, function, r);
        } else {
            code = print_outcome(c->json, o);
            /* Lines lost between the task and us: the lines printed plus
             * this are all the task printed. */
            print_dropped(NULL, aioc_outcome_output_dropped(o));
        }
    }
    aioc_outcome_free(o);
    aioc_call_free(call);
    aioc_schedule_free(sched);
    return code;
}

static int start(cli *c, int argc, char **argv, const command *cmd, unsigned ownership) {
    uint64_t id;
    start_opts so = {0};
    aioc_schedule *sched = NULL;
    int code = parse(c, argc, argv, cmd, &so, &sched);
    if (code >= 0)
        return code;
    if (so.detach)
        ownership = AIOC_SUBMIT_DETACHED;

    const char *function = argv[optind];
    int first = first_arg(argc, argv);
    aioc_call *call = cli_make_call(argv[0], function, argv + first, (size_t)(argc - first), &code);
    if (!call) {
        aioc_schedule_free(sched);
        return code;
    }
    code = cli_connect(c);
    if (code == EXIT_OK) {
        int r = so.queue ? aioc_submit_queue(c->client, so.queue, call, ownership, &id)
                         : aioc_submit_ex(c->client, call, ownership, sched, &id);
        if (r < 0)
            code = cli_fail(c, function, r);
        else
            print_id(c->json, id);
    }
    aioc_call_free(call);
    aioc_schedule_free(sched);
    return code;
}

int cmd_submit(cli *c, int argc, char **argv) {
    return start(c, argc, argv, &submit_command, AIOC_SUBMIT_SUBMITTED);
}

int cmd_detach(cli *c, int argc, char **argv) {
    return start(c, argc, argv, &detach_command, AIOC_SUBMIT_DETACHED);
}

/*
 * aiod: argv into settings, then the start-up and shutdown order. Nothing
 * else lives here.
 *
 * Start-up: settings, logging, crash handler, loop, task table, scheduler,
 * connections, plugins, listening socket, signals, READY=1.
 * Shutdown (SIGTERM/SIGINT): STOPPING=1, stop accepting and remove the
 * socket, refuse new requests, cancel every task, give them the grace period
 * to end (waiting clients get their "cancelled" outcomes), flush and close
 * connections, unload plugins, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <uv.h>

#include "alloc.h"
#include "api.h"
#include "config.h"
#include "conn.h"
#include "coro.h"
#include "crash.h"
#include "dispatch.h"
#include "limits.h"
#include "log.h"
#include "plugin.h"
#include "sched.h"
#include "sd.h"
#include "server.h"
#include "task.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "0.0.0"
#endif
#ifndef AIOD_PLUGIN_DIR
#define AIOD_PLUGIN_DIR "/usr/lib/aiod/plugins"
#endif

static uv_loop_t *loop;
static uv_signal_t sig_term, sig_int;
static uv_timer_t shutdown_timer;
static uint64_t shutdown_deadline;
static bool stopping;

static void help(void) {
    printf("Usage: aiod [OPTION]...\n"
           "Run the aiod task daemon: plugin functions as coroutines on one event loop.\n\n"
           "  -s, --socket PATH          listen on PATH (default: $AIOD_SOCKET, else\n"
           "                             /run/aiod/aiod.sock for root, else\n"
           "                             $XDG_RUNTIME_DIR/aiod/aiod.sock)\n"
           "  -p, --plugin-dir DIR       load every *.so in DIR (repeatable)\n"
           "      --no-default-plugins   do not load %s\n"
           "      --log-level LEVEL      debug, info, notice, warning, err (default info)\n"
           "      --max-frame BYTES      largest frame accepted (default %u)\n"
           "      --max-in-flight N      unanswered requests per connection (default %u)\n"
           "      --max-connections N    connections at once (default %u)\n"
           "      --max-tasks N          unfinished tasks at once (default %u)\n"
           "      --max-output-lines N   output lines kept per task (default %u)\n"
           "      --retain-count N       finished results kept (default %u)\n"
           "      --retain-seconds S     how long results are kept (default %u)\n"
           "      --shutdown-grace S     time tasks get to end on SIGTERM (default %u)\n"
           "      --stack-size BYTES     coroutine stack size (default %u)\n"
           "  -h, --help                 show this help\n"
           "      --version              show the version\n",
           AIOD_PLUGIN_DIR, LIMIT_MAX_FRAME, LIMIT_MAX_IN_FLIGHT, LIMIT_MAX_CONNECTIONS,
           LIMIT_MAX_TASKS, LIMIT_MAX_OUTPUT_LINES, LIMIT_RETAIN_COUNT, LIMIT_RETAIN_SECONDS,
           LIMIT_SHUTDOWN_GRACE, LIMIT_STACK_SIZE);
}

static int parse_u32(const char *opt, const char *s, uint32_t min, uint32_t *ret) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > UINT32_MAX || s[0] == '-') {
        fprintf(stderr, "aiod: %s: '%s' is not a number between %u and %u\n", opt, s, min,
                UINT32_MAX);
        return -EINVAL;
    }
    *ret = (uint32_t)v;
    return 0;
}

enum {
    OPT_NO_DEFAULT = 256,
    OPT_LOG_LEVEL,
    OPT_MAX_FRAME,
    OPT_MAX_IN_FLIGHT,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_TASKS,
    OPT_MAX_OUTPUT,
    OPT_RETAIN_COUNT,
    OPT_RETAIN_SECONDS,
    OPT_GRACE,
    OPT_STACK,
    OPT_VERSION,
};

/* 1 to run, 0 to exit successfully (help, version), <0 on a usage error. */
static int parse_argv(int argc, char **argv) {
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"no-default-plugins", no_argument, NULL, OPT_NO_DEFAULT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"max-in-flight", required_argument, NULL, OPT_MAX_IN_FLIGHT},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-tasks", required_argument, NULL, OPT_MAX_TASKS},
        {"max-output-lines", required_argument, NULL, OPT_MAX_OUTPUT},
        {"retain-count", required_argument, NULL, OPT_RETAIN_COUNT},
        {"retain-seconds", required_argument, NULL, OPT_RETAIN_SECONDS},
        {"shutdown-grace", required_argument, NULL, OPT_GRACE},
        {"stack-size", required_argument, NULL, OPT_STACK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {},
    };
    const char *socket_flag = NULL;
    uint32_t v;
    int c;
    while ((c = getopt_long(argc, argv, "s:p:h", opts, NULL)) >= 0) {
        int r = 0;
        switch (c) {
        case 's':
            socket_flag = optarg;
            break;
        case 'p':
            r = config_add_plugin_dir(optarg);
            break;
        case OPT_NO_DEFAULT:
            cfg.default_plugin_dir = false;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_from_string(optarg, &cfg.log_level) < 0) {
                fprintf(stderr, "aiod: --log-level: unknown level '%s' (try debug, info, "
                                "notice, warning, err)\n",
                        optarg);
                return -EINVAL;
            }
            break;
        case OPT_MAX_FRAME:
            r = parse_u32("--max-frame", optarg, 1024, &cfg.max_frame);
            break;
        case OPT_MAX_IN_FLIGHT:
            r = parse_u32("--max-in-flight", optarg, 1, &cfg.max_in_flight);
            break;
        case OPT_MAX_CONNECTIONS:
            r = parse_u32("--max-connections", optarg, 1, &cfg.max_connections);
            break;
        case OPT_MAX_TASKS:
            r = parse_u32("--max-tasks", optarg, 1, &cfg.max_tasks);
            break;
        case OPT_MAX_OUTPUT:
            r = parse_u32("--max-output-lines", optarg, 1, &cfg.max_output_lines);
            break;
        case OPT_RETAIN_COUNT:
            r = parse_u32("--retain-count", optarg, 0, &cfg.retain_count);
            break;
        case OPT_RETAIN_SECONDS:
            r = parse_u32("--retain-seconds", optarg, 0, &cfg.retain_seconds);
            break;
        case OPT_GRACE:
            r = parse_u32("--shutdown-grace", optarg, 0, &cfg.shutdown_grace);
            break;
        case OPT_STACK:
            r = parse_u32("--stack-size", optarg, 16384, &v);
            cfg.stack_size = v;
            break;
        case 'h':
            help();
            return 0;
        case OPT_VERSION:
            printf("aiod %s (protocol %u, plugin ABI %u.%u)\n", AIOD_VERSION,
                   AIOD_PROTOCOL_VERSION, AIOD_ABI_MAJOR, AIOD_ABI_MINOR);
            return 0;
        default:
            fprintf(stderr, "Try 'aiod --help' for more information.\n");
            return -EINVAL;
        }
        if (r < 0)
            return r;
    }
    if (optind < argc) {
        fprintf(stderr, "aiod: unexpected argument '%s'; try 'aiod --help'\n", argv[optind]);
        return -EINVAL;
    }
    int r = config_resolve_socket(socket_flag);
    if (r == -ENOENT) {
        fprintf(stderr, "aiod: no socket path: pass --socket PATH, set AIOD_SOCKET, or set "
                        "XDG_RUNTIME_DIR\n");
        return r;
    }
    return r < 0 ? r : 1;
}

static void finish_shutdown(void) {
    uv_timer_stop(&shutdown_timer);
    uv_close((uv_handle_t *)&shutdown_timer, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    conn_close_all();
    sd_done();
    if (task_count_unfinished() > 0) {
        log_warning("%zu tasks did not end within the grace period; exiting anyway",
                    task_count_unfinished());
        uv_stop(loop);
    }
}

static void on_shutdown_tick(uv_timer_t *h) {
    (void)h;
    if (task_count_unfinished() == 0 || uv_now(loop) >= shutdown_deadline)
        finish_shutdown();
}

static void on_signal(uv_signal_t *h, int signum) {
    (void)h;
    if (stopping)
        return;
    stopping = true;
    log_info("received %s, shutting down", strsignal(signum));
    sd_stopping();
    server_stop();
    dispatch_set_shutting_down();

    /* Collect first: cancelling changes the table. */
    size_t st = 0, n = 0;
    void *cur = NULL;
    task *t;
    size_t total = task_count_unfinished();
    task **ts = alloc_malloc((total ? total : 1) * sizeof(*ts));
    while (ts && n < total && (t = task_next(&st, &cur)))
        if (!task_finished(t))
            ts[n++] = task_ref(t);
    for (size_t i = 0; i < n; i++) {
        sched_cancel(ts[i]);
        task_unref(ts[i]);
    }
    free(ts);
    shutdown_deadline = uv_now(loop) + (uint64_t)cfg.shutdown_grace * 1000u;
    uv_timer_start(&shutdown_timer, on_shutdown_tick, 0, 10);
}

static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv) {
    config_defaults();
    int r = parse_argv(argc, argv);
    if (r <= 0) {
        config_done();
        return r == 0 ? EXIT_SUCCESS : 2;
    }
    log_setup(cfg.log_level);
    r = crash_install();
    if (r < 0)
        log_warning_errno(r, "cannot install the crash handler, ignoring");
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    coro_configure(cfg.stack_size, LIMIT_STACK_POOL);

    loop = uv_default_loop();
    int exit_code = EXIT_FAILURE;
    if (task_table_init(loop) < 0 || sched_init(loop) < 0 || conn_init(loop) < 0 ||
        plugin_registry_init(api_table()) < 0) {
        log_error("out of memory at start-up");
        goto out;
    }
    for (size_t i = 0; i < cfg.n_plugin_dirs; i++)
        plugin_load_dir(cfg.plugin_dirs[i]);
    if (cfg.default_plugin_dir)
        plugin_load_dir(AIOD_PLUGIN_DIR);
    if (plugin_count() == 0)
        log_warning("no plugins loaded: nothing can be called (see --plugin-dir)");

    if (server_start(loop, cfg.socket_path) < 0)
        goto out;
    uv_timer_init(loop, &shutdown_timer);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);

    log_info("aiod %s ready: %zu plugins, pid %d", AIOD_VERSION, plugin_count(), (int)getpid());
    sd_ready(loop);
    uv_run(loop, UV_RUN_DEFAULT);
    exit_code = EXIT_SUCCESS;
    log_info("stopped");

out:
    server_stop();
    conn_abort_all();
    sched_done();
    task_table_done();
    conn_done();
    sd_done();
    /* Close whatever is left (connections, timers) and let the callbacks run. */
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    plugin_registry_done();
    coro_pool_clear();
    uv_loop_close(loop);
    uv_library_shutdown();
    config_done();
    return exit_code;
}

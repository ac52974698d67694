/*
 * aiod: argv into settings, then the start-up and shutdown order. Nothing
 * else lives here.
 *
 * Start-up: settings (defaults, settings file, flags), logging, crash
 * handler, loop, task table, scheduler, connections, plugins, listening
 * socket, signals, READY=1.
 * Reload (SIGHUP, or a Reload request: reload.c): settings and plugins.
 * Shutdown (SIGTERM/SIGINT): STOPPING=1, stop accepting and remove the
 * socket, refuse new requests, cancel every task, give them the grace period
 * to end (waiting clients get their "cancelled" outcomes), flush and close
 * connections, unload plugins, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "alloc.h"
#include "pbvalue.h"
#include "base/memcheck.h"
#include "api/api.h"
#include "api/pool.h"
#include "cluster/cluster.h"
#include "system/cluster_cfg.h"
#include "system/config.h"
#include "net/conn.h"
#include "net/wire.h"
#include "core/coro.h"
#include "app/crash.h"
#include "app/hugeheap.h"
#include "request/dispatch.h"
#include "base/aiod_limits.h"
#include "core/idle.h"
#include "system/idstore.h"
#include "system/store.h"
#include "core/limit.h"
#include "core/reclaim.h"
#include "system/log.h"
#include "host/registry.h"
#include "system/policy.h"
#include "api/process.h"
#include "api/qitems.h"
#include "api/signal.h"
#include "net/refuse.h"
#include "app/reload.h"
#include "core/finish.h"
#include "core/group.h"
#include "core/persist.h"
#include "core/plan.h"
#include "core/run.h"
#include "core/sched.h"
#include "request/serve.h"
#include "system/identity.h"
#include "system/sd.h"
#include "system/stall.h"
#include "net/server.h"
#include "core/task.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "0.0.0"
#endif
#ifndef AIOD_PLUGIN_DIR
#define AIOD_PLUGIN_DIR "/usr/lib/aiod/plugins"
#endif

static uv_loop_t *loop;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t shutdown_timer;
static uint64_t shutdown_deadline;
static bool stopping;
/* --check-config: validate the settings, print them, exit. */
static bool check_config;
/* --state-recover=fresh: a damaged store is moved aside. */
static bool state_recover_fresh;
/* The settings file (or a flag) is invalid. */
static bool bad_settings;

static void help(void) {
    printf("Usage: aiod [OPTION]...\n"
           "Run the aiod task daemon: plugin functions as coroutines on one event loop.\n\n"
           "  -s, --socket PATH          listen on PATH (default: $AIOD_SOCKET, else\n"
           "                             /run/aiod/aiod.sock for root, else\n"
           "                             $XDG_RUNTIME_DIR/aiod/aiod.sock)\n"
           "  -c, --config PATH          settings file (default: $AIOD_CONFIG, else %s;\n"
           "                             see aiod.conf(5); flags override it)\n"
           "      --check-config         check the settings file, print the settings, exit\n"
           "  -p, --plugin-dir DIR       load every *.so in DIR (repeatable; replaces the\n"
           "                             settings file's plugin_dir list)\n"
           "      --no-default-plugins   do not load %s\n"
           "      --state-dir DIR        keep the task ids and the state store in DIR\n"
           "                             (default: $STATE_DIRECTORY, else /var/lib/aiod for\n"
           "                             root, else $XDG_STATE_HOME/aiod or\n"
           "                             ~/.local/state/aiod)\n"
           "      --durability HOW       what an acknowledged task survives: fsync (default:\n"
           "                             power loss), os (a crash of aiod), none (nothing)\n"
           "      --state-recover=fresh  move a damaged state store aside, start empty\n"
           "      --log-level LEVEL      emerg, alert, crit, err, warning, notice, info\n"
           "                             (default) or debug\n"
           "      --log-outcomes WHICH   task outcomes logged: all (default), failures, none\n"
           "      --max-write-queue BYTES  bytes queued for one client (default %u)\n"
           "      --max-write-queue-total BYTES  bytes queued for all clients together;\n"
           "                             the largest queues are dropped first (default %u)\n"
           "      --max-read-buffer-total BYTES  bytes of unfinished requests held for all\n"
           "                             clients together; the longest stalled is dropped\n"
           "                             first (default %u)\n"
           "      --max-frame BYTES      largest frame accepted (default %u)\n"
           "      --max-in-flight N      requests one connection may have waiting (await,\n"
           "                             gather, followed logs) (default %u)\n"
           "      --max-connections N    connections at once (default %u)\n"
           "      --max-tasks N          unfinished tasks at once (default %u)\n"
           "      --max-output-lines N   output lines kept per task (default %u)\n"
           "      --output-hold-ms MS    how long aioctl run's output, unread, may hold\n"
           "                             back the task's output (default %u)\n"
           "      --retain-count N       finished results kept (default %u)\n"
           "      --retain-seconds S     how long results are kept (default %u)\n"
           "      --retain-bytes BYTES   memory the kept results may hold together; the\n"
           "                             oldest are forgotten first (default %zu)\n"
           "      --shutdown-grace S     time tasks get to end on SIGTERM (default %u)\n"
           "      --stack-size BYTES     coroutine stack size (default %u)\n"
           "      --stall-warning-ms MS  report an event loop held this long while it is\n"
           "                             held (default %u; 0: off)\n"
           "  -h, --help                 show this help\n"
           "      --version              show the version\n"
           "\n"
           "SIGHUP (or 'aioctl reload') re-reads the settings and the plugin directories.\n"
           "Exit status: 0 clean stop; 1 failure; 2 usage error; 65 unusable state store;\n"
           "78 invalid settings (the file's or a flag's).\n",
           AIOD_CONFIG_FILE, AIOD_PLUGIN_DIR, LIMIT_MAX_WRITE_QUEUE, LIMIT_MAX_WRITE_QUEUE_TOTAL,
           LIMIT_MAX_READ_BUFFER_TOTAL, LIMIT_MAX_FRAME, LIMIT_MAX_IN_FLIGHT, LIMIT_MAX_CONNECTIONS,
           LIMIT_MAX_TASKS, LIMIT_MAX_OUTPUT_LINES, LIMIT_OUTPUT_HOLD_MS, LIMIT_RETAIN_COUNT,
           LIMIT_RETAIN_SECONDS, LIMIT_RETAIN_BYTES, LIMIT_SHUTDOWN_GRACE, LIMIT_STACK_SIZE,
           LIMIT_STALL_WARNING_MS);
}

static void refuse_start(const char *err);

/* A flag that sets a settings-file key. A value it refuses makes the
 * settings invalid, as the same line in the file would: exit 78. */
/* A settings error said before logging is set up (it stops the start):
 * at error priority when stderr is the journal, so that `journalctl -p err`
 * shows why aiod exited 78, not at the journal's default, info. */
static void early_error(const char *msg) {
    fprintf(stderr, "%saiod: %s\n", log_stderr_is_journal() ? "<3>" : "", msg);
}

static int set(const char *flag, const char *key, const char *value) {
    char why[300];
    int r = config_override(key, value, why, sizeof(why));
    if (r == -ENOMEM)
        fprintf(stderr, "aiod: out of memory\n");
    else if (r < 0) {
        char err[400];
        snprintf(err, sizeof(err), "%s: %s", flag, why);
        early_error(err);
        bad_settings = true;
        if (!check_config)
            refuse_start(err);
    }
    return r;
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
    OPT_RETAIN_BYTES,
    OPT_GRACE,
    OPT_STACK,
    OPT_VERSION,
    OPT_CHECK_CONFIG,
    OPT_MAX_WRITE_QUEUE,
    OPT_MAX_WRITE_QUEUE_TOTAL,
    OPT_MAX_READ_BUFFER_TOTAL,
    OPT_OUTPUT_HOLD,
    OPT_STATE_DIR,
    OPT_LOG_OUTCOMES,
    OPT_STALL_WARNING,
    OPT_DURABILITY,
    OPT_STATE_RECOVER,
};

/* Exit status for invalid settings at start (sysexits' EX_CONFIG): the unit
 * does not restart on it (RestartPreventExitStatus=). */
#define EXIT_BAD_SETTINGS EX_CONFIG
/* The state store cannot be used (damaged, newer, in use by another
 * daemon): restarting would not help either (sysexits' EX_DATAERR). */
#define EX_CONFIG_STORE EX_DATAERR

/* The settings are invalid at start: say so where an administrator looks
 * (STATUS=, the journal through stderr) and to every client already waiting
 * on an activation socket. */
static void refuse_start(const char *err) {
    char msg[800];
    snprintf(msg, sizeof(msg),
             "aiod cannot start: %s; fix the settings (the file, or the flags aiod is started "
             "with; aiod --check-config checks them) and call again",
             err);
    int n = refuse_waiting_clients(msg);
    if (n > 0)
        fprintf(stderr, "aiod: told %d waiting client%s why\n", n, n == 1 ? "" : "s");
    sd_notifyf(0, "STATUS=Invalid settings: %s", err);
}

/* 1 to run, 0 to exit successfully (help, version), <0 on a usage error. */
static int parse_argv(int argc, char **argv) {
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"no-default-plugins", no_argument, NULL, OPT_NO_DEFAULT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"max-in-flight", required_argument, NULL, OPT_MAX_IN_FLIGHT},
        {"max-write-queue", required_argument, NULL, OPT_MAX_WRITE_QUEUE},
        {"max-write-queue-total", required_argument, NULL, OPT_MAX_WRITE_QUEUE_TOTAL},
        {"max-read-buffer-total", required_argument, NULL, OPT_MAX_READ_BUFFER_TOTAL},
        {"output-hold-ms", required_argument, NULL, OPT_OUTPUT_HOLD},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"max-tasks", required_argument, NULL, OPT_MAX_TASKS},
        {"max-output-lines", required_argument, NULL, OPT_MAX_OUTPUT},
        {"retain-count", required_argument, NULL, OPT_RETAIN_COUNT},
        {"retain-seconds", required_argument, NULL, OPT_RETAIN_SECONDS},
        {"retain-bytes", required_argument, NULL, OPT_RETAIN_BYTES},
        {"shutdown-grace", required_argument, NULL, OPT_GRACE},
        {"stack-size", required_argument, NULL, OPT_STACK},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"log-outcomes", required_argument, NULL, OPT_LOG_OUTCOMES},
        {"stall-warning-ms", required_argument, NULL, OPT_STALL_WARNING},
        {"durability", required_argument, NULL, OPT_DURABILITY},
        {"state-recover", required_argument, NULL, OPT_STATE_RECOVER},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {},
    };
    /* Flags that set a settings-file key of the same meaning. */
    static const struct {
        int opt;
        const char *flag, *key;
    } keyed[] = {
        {'p', "--plugin-dir", "plugin_dir"},
        {OPT_LOG_LEVEL, "--log-level", "log_level"},
        {OPT_MAX_FRAME, "--max-frame", "max_frame"},
        {OPT_MAX_IN_FLIGHT, "--max-in-flight", "max_in_flight"},
        {OPT_MAX_WRITE_QUEUE, "--max-write-queue", "max_write_queue"},
        {OPT_MAX_WRITE_QUEUE_TOTAL, "--max-write-queue-total", "max_write_queue_total"},
        {OPT_MAX_READ_BUFFER_TOTAL, "--max-read-buffer-total", "max_read_buffer_total"},
        {OPT_OUTPUT_HOLD, "--output-hold-ms", "output_hold_ms"},
        {OPT_MAX_CONNECTIONS, "--max-connections", "max_connections"},
        {OPT_MAX_TASKS, "--max-tasks", "max_tasks"},
        {OPT_MAX_OUTPUT, "--max-output-lines", "max_output_lines"},
        {OPT_RETAIN_COUNT, "--retain-count", "retain_count"},
        {OPT_RETAIN_SECONDS, "--retain-seconds", "retain_seconds"},
        {OPT_RETAIN_BYTES, "--retain-bytes", "retain_bytes"},
        {OPT_GRACE, "--shutdown-grace", "shutdown_grace"},
        {OPT_STACK, "--stack-size", "stack_size"},
        {OPT_STATE_DIR, "--state-dir", "state_dir"},
        {OPT_LOG_OUTCOMES, "--log-outcomes", "log_outcomes"},
        {OPT_STALL_WARNING, "--stall-warning-ms", "stall_warning_ms"},
        {OPT_DURABILITY, "--durability", "durability"},
    };
    const char *socket_flag = NULL, *config_flag = NULL;
    /* --check-config changes what a bad flag before it means (exit 1, no
     * refusal sent to waiting clients): known before any flag is read. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--check-config") == 0)
            check_config = true;
    int c;
    while ((c = getopt_long(argc, argv, "s:c:p:h", opts, NULL)) >= 0) {
        int r = 0;
        bool done = false;
        for (size_t i = 0; i < ELEMENTSOF(keyed); i++)
            if (keyed[i].opt == c) {
                r = set(keyed[i].flag, keyed[i].key, optarg);
                done = true;
            }
        if (done) {
            if (r < 0)
                return r;
            continue;
        }
        switch (c) {
        case 's':
            socket_flag = optarg;
            break;
        case 'c':
            config_flag = optarg;
            break;
        case OPT_CHECK_CONFIG:
            check_config = true;
            break;
        case OPT_STATE_RECOVER:
            if (strcmp(optarg, "fresh") != 0) {
                fprintf(stderr, "aiod: --state-recover: '%s' is not 'fresh'\n", optarg);
                return -EINVAL;
            }
            state_recover_fresh = true;
            break;
        case OPT_NO_DEFAULT:
            r = set("--no-default-plugins", "default_plugins", "no");
            break;
        case 'h':
            help();
            return 0;
        case OPT_VERSION:
            printf("aiod %s (protocol %u, plugin ABI %u.%u)\n", AIOD_VERSION, AIOD_PROTOCOL_VERSION,
                   AIOD_ABI_MAJOR, AIOD_ABI_MINOR);
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

    /* The settings file: --config PATH must exist; $AIOD_CONFIG and the
     * built-in default may be absent. */
    const char *env = getenv("AIOD_CONFIG");
    int r = config_flag ? config_set_file(config_flag, true)
                        : config_set_file(env && *env ? env : AIOD_CONFIG_FILE, false);
    if (r < 0) {
        fprintf(stderr, "aiod: out of memory\n");
        return r;
    }
    char err[600];
    r = config_load(err, sizeof(err));
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, sizeof(err), "out of memory");
        early_error(err);
        bad_settings = r != -ENOMEM;
        if (!check_config)
            refuse_start(err);
        return r;
    }
    if (limit_load_rules(cfg.limits, cfg.n_limits) < 0) {
        fprintf(stderr, "aiod: out of memory\n");
        return -ENOMEM;
    }
    if (check_config) {
        /* Where the store would be opened; none found is said by a start. */
        if (config_resolve_state_dir() == -ENOMEM) {
            fprintf(stderr, "aiod: out of memory\n");
            return -ENOMEM;
        }
        /* A start reads the password file before it connects (exit 78
         * if it cannot): so does the check. */
        if (cfg.cluster && cfg.cluster_password_file) {
            char pw[1024], why[600];
            if (cluster_password_read(cfg.cluster_password_file, pw, sizeof(pw), why, sizeof(why)) <
                0) {
                fprintf(stderr, "aiod: %s\n", why);
                bad_settings = true;
                return -EINVAL;
            }
            explicit_bzero(pw, sizeof(pw));
        }
        config_print_source(stdout);
        config_dump(stdout);
        return 0;
    }

    r = config_resolve_socket(socket_flag);
    if (r == -ENOENT && getenv("LISTEN_FDS"))
        r = 0; /* socket activation: the path is not needed */
    if (r == -ENOENT) {
        fprintf(stderr, "aiod: no socket path: pass --socket PATH, set AIOD_SOCKET, or set "
                        "XDG_RUNTIME_DIR\n");
        return r;
    }
    return r < 0 ? r : 1;
}

static const int soft_signals[] = {SIGHUP, SIGUSR1, SIGUSR2};
static const int stop_signals[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT};

static void ignore_signals(const int *sigs, size_t n) {
    for (size_t i = 0; i < n; i++)
        signal(sigs[i], SIG_IGN);
}

static void finish_shutdown(void) {
    uv_timer_stop(&shutdown_timer);
    uv_close((uv_handle_t *)&shutdown_timer, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    /* Closing the handlers put the default actions back: a SIGHUP or a
     * second SIGTERM would kill the daemon in the middle of its plugins'
     * fini and its last store write. The stop is under way: ignored. */
    ignore_signals(stop_signals, ELEMENTSOF(stop_signals));
    conn_close_all();
    /* Its connections would keep the loop alive. */
    cluster_stop();
    sd_done();
    if (task_count_unfinished() > 0)
        log_warning("%zu tasks did not end within the grace period; exiting anyway",
                    task_count_unfinished());
    /* A pool thread blocked in a cancelled task's call (to_thread) would
     * hold the loop, and the exit, until the call returns: maybe never. */
    if (pool_in_flight() > 0)
        log_warning("%u thread pool calls of cancelled tasks were still running at the end of "
                    "the grace period; exiting without them",
                    pool_in_flight());
    if (task_count_unfinished() > 0 || pool_in_flight() > 0)
        uv_stop(loop);
}

static void on_shutdown_tick(uv_timer_t *h) {
    (void)h;
    static bool said;
    size_t unwritten = cluster_outcomes_unwritten();
    if (uv_now(loop) >= shutdown_deadline) {
        if (unwritten > 0)
            log_warning("the outcomes of %zu cluster tasks did not reach Redis within the grace "
                        "period: those tasks stay running there, for on_interrupt to settle",
                        unwritten);
        finish_shutdown();
        return;
    }
    /* A cancelled task's call in a pool thread gets the grace too: its
     * argument is released on the loop once it returns. */
    if (task_count_unfinished() > 0 || pool_in_flight() > 0)
        return;
    /* A task that ended here is settled in Redis only once its outcome is
     * written (after its last output lines): dropped now, it would be
     * claimed later and failed as interrupted, or run again. */
    if (unwritten == 0) {
        finish_shutdown();
        return;
    }
    if (!said) {
        log_info("waiting for the outcomes of %zu cluster tasks to reach Redis", unwritten);
        said = true;
    }
}

static void on_hup(uv_signal_t *h, int signum) {
    (void)h;
    char err[600];
    reload_result res;
    signal_deliver(signum); /* to the plugins' tasks that wait for it */
    if (stopping)
        log_notice("SIGHUP while shutting down, ignoring");
    else
        reload_run("SIGHUP", &res, err, sizeof(err));
}

static void on_signal(uv_signal_t *h, int signum) {
    (void)h;
    if (stopping)
        return;
    stopping = true;
    /* Tasks waiting for the signal learn of it before the cancellation
     * below reaches them. */
    signal_deliver(signum);
    log_info("received %s, shutting down", strsignal(signum));
    sd_stopping();
    server_stop();
    dispatch_set_shutting_down();
    /* What the stop cuts off keeps its stored state (persist.h), and its
     * queued tasks stay running in Redis, for on_interrupt to decide. */
    persist_freeze();
    cluster_freeze();

    /* Collect first: cancelling changes the table. */
    size_t n = 0;
    size_t total = task_count_unfinished();
    task **ts = alloc_malloc((total ? total : 1) * sizeof(*ts));
    for (task *t = task_first(); ts && n < total && t; t = task_after(t))
        if (!task_finished(t))
            ts[n++] = task_ref(t);
    /* Their CancelledError says who cancelled them: an attached run's
     * client prints it. */
    char why[80];
    snprintf(why, sizeof(why), "task was cancelled: aiod is stopping (SIG%s)",
             sigabbrev_np(signum) ? sigabbrev_np(signum) : "?");
    for (size_t i = 0; i < n; i++) {
        task_cancel_msg(ts[i], why);
        task_unref(ts[i]);
    }
    free(ts);
    shutdown_deadline = uv_now(loop) + (uint64_t)cfg.shutdown_grace * 1000u;
    uv_timer_start(&shutdown_timer, on_shutdown_tick, 0, 10);
}

/*
 * Raises the soft open-file limit to the hard one, then makes max_connections
 * fit in it: LIMIT_FD_RESERVE descriptors and a quarter of the limit stay for
 * the daemon itself and what its tasks open, the rest may be connections.
 * If max_connections asks for more, it is lowered (and said so); the
 * listener also refuses connections over that room after a reload that
 * raises max_connections again (server_set_fd_cap).
 */
static void fit_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warning_errno(-errno, "cannot raise the open-file limit to %llu, ignoring",
                              (unsigned long long)want);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    unsigned long long nofile = (unsigned long long)rl.rlim_cur;
    unsigned long long reserve = LIMIT_FD_RESERVE + nofile / LIMIT_FD_RESERVE_DIVISOR;
    unsigned long long room = nofile > reserve ? nofile - reserve : 0;
    unsigned cap = room > UINT32_MAX ? UINT32_MAX : room < 1 ? 1 : (unsigned)room;
    server_set_fd_cap(cap, nofile);
    if (cfg.max_connections <= cap)
        return;
    log_warning("max_connections is %u, but the open-file limit (RLIMIT_NOFILE) is %llu and "
                "%llu descriptors are kept for the daemon and its tasks: max_connections "
                "lowered to %u (raise LimitNOFILE= or ulimit -n to allow more)",
                cfg.max_connections, nofile, reserve, cap);
    cfg.max_connections = cap;
}

/* Nothing the daemon starts may read its memory or keep its privileges:
 * non-dumpable (no ptrace, /proc/PID/mem or core of it by its own uid), and
 * no ambient capabilities (the unit grants CAP_SETUID/CAP_SETGID for
 * proc_user; ambient ones would pass to every program started). */
static void harden_process(void) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        log_warning_errno(-errno, "cannot make the daemon non-dumpable, ignoring");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        log_warning_errno(-errno, "cannot clear the ambient capabilities, ignoring");
    /* And no inheritable ones (systemd sets them with the ambient ones):
     * with them a program with file-inheritable capabilities would get the
     * daemon's at exec. Dropping needs no privilege. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};
    if (syscall(SYS_capget, &hdr, data) == 0 && (data[0].inheritable || data[1].inheritable)) {
        data[0].inheritable = data[1].inheritable = 0;
        if (syscall(SYS_capset, &hdr, data) < 0)
            log_warning_errno(-errno, "cannot clear the inheritable capabilities, ignoring");
    }
}

/* The last block of ids reserved: the state store records its end too,
 * so that a removed next-id cannot bring back ids no row holds any more
 * (attached tasks, ended detached ones, pruned outcomes). */
static uint64_t ids_reserved_first, ids_reserved_end;

/* The id source for task.c: blocks reserved in the state directory. */
static int reserve_ids(uint64_t *first, uint64_t *end) {
    char err[600];
    int r = idstore_reserve(first, end, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    ids_reserved_first = *first;
    ids_reserved_end = *end;
    if (persist_enabled())
        store_put_meta("ids_reserved_end", ids_reserved_end);
    return 0;
}

/* Opens the state directory and takes the first block of ids. */
static int open_state(void) {
    int r = config_resolve_state_dir();
    if (r == -ENOENT)
        return log_error_errno(r, "no state directory: pass --state-dir DIR, or set "
                                  "STATE_DIRECTORY, XDG_STATE_HOME or HOME");
    if (r < 0)
        return log_error_errno(r, "out of memory");
    char err[600];
    r = idstore_open(cfg.state_dir, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    r = task_set_id_source(reserve_ids);
    if (r < 0)
        log_error("cannot keep task ids unique without %s/next-id; refusing to start",
                  cfg.state_dir);
    return r;
}

/* Moves the id counter past the ids in the store, should next-id be behind
 * them (removed, or restored from an older backup): ids are never reused. */
static int skip_stored_ids(char *err, size_t err_len) {
    uint64_t max = 0, reserved_end = 0;
    if (store_max_id(&max) < 0) {
        snprintf(err, err_len, "the state store %s: cannot read its highest task id", store_path());
        return -EIO;
    }
    if (store_get_meta("ids_reserved_end", &reserved_end) == 0 && reserved_end > max + 1)
        max = reserved_end - 1;
    /* The block taken at open_state is what counts: next-id, removed,
     * was made again and moved past that block already. */
    if (max < ids_reserved_first)
        return 0;
    int r = idstore_skip_past(max, err, err_len);
    if (r < 0)
        return r;
    log_warning("%s/next-id was behind the ids the state store records (up to id %llu): moved "
                "past them, so that no id is used twice",
                cfg.state_dir, (unsigned long long)max);
    /* The block taken at open_state may hold stored ids: a new one. */
    r = task_set_id_source(reserve_ids);
    if (r < 0)
        snprintf(err, err_len, "cannot reserve task ids past %llu in %s/next-id",
                 (unsigned long long)max, cfg.state_dir);
    return r;
}

/* Opens the state store and reads the tasks back (after the plugins are
 * loaded: a task needs its function). */
static int open_store(void) {
    if (cfg.durability == DURABILITY_NONE) {
        log_info("durability = none: tasks are kept in memory only");
        /* Its tasks would come back, unannounced, at a later start with
         * os or fsync. */
        char db[4200];
        snprintf(db, sizeof(db), "%s/tasks.db", cfg.state_dir);
        if (access(db, F_OK) == 0)
            log_warning("durability = none: the state store %s is left unread; the tasks it "
                        "holds come back when aiod starts again with durability os or fsync "
                        "(move it aside to drop them)",
                        db);
        return 0;
    }
    char err[1200] = ""; /* store_open writes it only to say something */
    int r = store_open(cfg.state_dir, cfg.durability == DURABILITY_FSYNC ? STORE_FSYNC : STORE_OS,
                       state_recover_fresh, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    if (state_recover_fresh && *err)
        log_warning("%s", err);
    /* Damage found while the rows are read (a bad record, a bad page) is
     * found before any task is restored, so that the store can still be
     * moved aside as a whole. */
    if (state_recover_fresh) {
        r = persist_check(err, sizeof(err));
        if (r == -EBADMSG) {
            r = store_start_over(err, sizeof(err));
            if (r >= 0)
                log_warning("%s", err);
        }
        if (r < 0) {
            log_error("%s", err);
            store_close();
            return r;
        }
    }
    r = skip_stored_ids(err, sizeof(err));
    if (r >= 0)
        r = persist_start(loop, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        store_close();
        return r;
    }
    run_set_start_gate(persist_gate);
    store_put_meta("ids_reserved_end", ids_reserved_end);
    return 0;
}

/* The live counts of the systemd status line. */
static void status_counts(sd_counts *ret) {
    ret->running = task_count_running();
    ret->unfinished = task_count_unfinished();
    ret->finished_total = (unsigned long long)task_count_finished_total();
    ret->connections = conn_count();
}

/* Busy while a task runs: tasks that only wait (a delay, a dependency, a
 * limit) hold no stack, and a daemon holding them for days kept every
 * burst's memory. */
static bool tasks_busy(void) {
    return task_count_running() > 0;
}

/* What the slabs keep for the next burst goes back once the daemon is idle. */
static void release_caches(void) {
    task_cache_release();
    group_cache_release();
    qitems_cache_release();
    wire_cache_release();
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Freed value nodes the loop thread keeps: a queue's items and the values
 * around them are made and freed millions of times a second, and a node
 * from this cache costs a pointer's move where malloc and free cost tens of
 * nanoseconds. A memory checker must see each free instead. */
#define LOOP_VALUE_NODES 64

int main(int argc, char **argv) {
    hugeheap_setup(argv);
#ifndef AIOD_ASAN
    if (!RUNNING_ON_VALGRIND)
        pbvalue_node_cache(LOOP_VALUE_NODES);
#endif
    /* Memory freed after a burst of tasks stays in the heap for the next
     * one instead of going back to the kernel and being faulted in again
     * (on some VMs a fault costs several microseconds); the idle timer's
     * malloc_trim(0) still hands it back once the daemon is idle
     * (core/idle.c). Blocks up to 256 MiB (the arrays of a gather of a
     * million children) come from the heap too, where they are reused,
     * rather than from mmap, where every use faults them in afresh. */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
    /* One heap for every thread. A big frame is unpacked on a pool thread
     * (request/offload.c) into some 30 MB of nodes; in a heap of that
     * thread's own, that memory stayed there once freed, out of the loop's
     * reach (its threshold above is never met), and the hostile battery's
     * RSS went from 98 to 128-167 MiB. In the one heap it is the loop's
     * again (83 MiB). The price: the store thread's and the pool's
     * allocations share the loop's lock, and durable submits run 12-15 %
     * slower (docs/benchmarks.md). */
    mallopt(M_ARENA_MAX, 1);
    /* SIGHUP (reload) and SIGUSR1/SIGUSR2 (plugins') mean nothing until the
     * loop's handlers are in place: ignored meanwhile, they no longer kill
     * a daemon that is still loading its plugins and its state store
     * (`systemctl reload` right after `start`). The handlers replace this;
     * a program exec'd later starts with them at their default. */
    ignore_signals(soft_signals, ELEMENTSOF(soft_signals));
    config_defaults();
    int r = parse_argv(argc, argv);
    if (r <= 0) {
        config_done();
        /* 2: usage error; 78: the settings are invalid; 1: the settings are
         * wrong (--check-config), or another failure. */
        if (r == 0)
            return EXIT_SUCCESS;
        if (check_config)
            return r == -EINVAL && !bad_settings ? 2 : EXIT_FAILURE;
        return r == -EINVAL && !bad_settings ? 2 : bad_settings ? EXIT_BAD_SETTINGS : 1;
    }
    log_setup(cfg.log_level);
    harden_process();
    r = crash_install();
    if (r < 0)
        log_warning_errno(r, "cannot install the crash handler, ignoring");
    signal(SIGPIPE, SIG_IGN);
    fit_fd_limit();
    coro_configure(cfg.stack_size);

    loop = uv_default_loop();
    sd_init(loop, status_counts);
    int exit_code = EXIT_FAILURE;
    dispatch_set_reload_handler(reload_handle);
    /* Replies of the tasks that just ran leave in the same loop iteration. */
    if (task_table_init(loop) < 0 || sched_init(loop) < 0 ||
        run_init(loop, api_table(), conn_flush_all) < 0) {
        log_error("out of memory at start-up");
        goto out;
    }
    /* Between the two on purpose: libuv runs the prepare and check handles
     * started last first, so the detector's check (the loop runs again)
     * comes before the drain of run.c, and its prepare (the loop is about to
     * wait) after the flush of conn.c. */
    stall_start(loop, cfg.stall_warning_ms);
    if (conn_init(loop, session_handlers()) < 0 || plugin_registry_init(api_table()) < 0) {
        log_error("out of memory at start-up");
        goto out;
    }
    r = open_state();
    if (r < 0) {
        sd_notifyf(0, "STATUS=Cannot use the state directory %s; see the journal",
                   cfg.state_dir ? cfg.state_dir : "(none)");
        /* A damaged next-id or a directory another user owns wants a
         * person; anything else (not mounted yet, say) may pass. */
        if (r == -EBADMSG || r == -EPERM)
            exit_code = EX_CONFIG_STORE;
        goto out;
    }
    idle_init(loop, tasks_busy, release_caches);
    plugin_sync_counts counts;
    reload_sync_plugins(&counts);
    if (plugin_count() == 0)
        log_warning("no plugins loaded: nothing can be called (see --plugin-dir)");

    if (server_start(loop, cfg.socket_path) < 0)
        goto out;
    /* After the socket (a second daemon is told the socket is in use) and
     * before the loop runs: clients wait in the backlog while the tasks
     * are read back. */
    finish_set_retry_hook(plan_retry);
    stall_not_serving();
    if ((r = open_store()) < 0) {
        sd_notifyf(0, "STATUS=Cannot use the state store in %s; see the journal", cfg.state_dir);
        /* What waits for an administrator (damage, a newer or busy store,
         * another owner) exits 65, which the unit does not restart; a full
         * disk, or anything else that may pass, exits 1, which it does. */
        bool needs_admin = r == -EBADMSG || r == -EPROTO || r == -EBUSY || r == -EPERM ||
                           r == -EACCES || r == -ENOTDIR || r == -ELOOP || r == -EEXIST;
        /* As for invalid settings: a client left queued on an activation
         * socket would have systemd start us again and again. */
        char msg[600];
        if (r == -ENOSPC)
            snprintf(msg, sizeof(msg),
                     "aiod cannot start now: the disk holding its state store in %s is full; "
                     "it starts again once there is room",
                     cfg.state_dir);
        else
            snprintf(msg, sizeof(msg),
                     "aiod cannot start: its state store in %s cannot be used (see the daemon's "
                     "log: journalctl -u aiod)%s",
                     cfg.state_dir, needs_admin ? "; an administrator must repair or move it" : "");
        int n = refuse_waiting_on(server_listen_fd(), msg);
        if (n > 0)
            log_info("told %d waiting client%s why", n, n == 1 ? "" : "s");
        exit_code = needs_admin ? EX_CONFIG_STORE : EXIT_FAILURE;
        goto out;
    }
    /* After the plugins (a host serves the functions it loaded) and the
     * store, before the loop: it connects in the background. */
    if (cluster_start(loop) < 0) {
        sd_notifyf(0, "STATUS=Cannot join the cluster; see the journal");
        exit_code = EXIT_BAD_SETTINGS;
        goto out;
    }
    uv_timer_init(loop, &shutdown_timer);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_hup, on_hup, SIGHUP);
    if (signal_start() < 0)
        log_warning("cannot catch SIGUSR1 and SIGUSR2 for plugins");

    log_info("aiod %s ready: %zu plugins, pid %d", AIOD_VERSION, plugin_count(), (int)getpid());
    sd_ready();
    uv_run(loop, UV_RUN_DEFAULT);
    exit_code = EXIT_SUCCESS;
    log_info("stopped");

out:
    stall_stop();
    server_stop();
    cluster_stop();
    conn_abort_all();
    signal_done();
    ignore_signals(stop_signals, ELEMENTSOF(stop_signals)); /* signal_done put USR1/2 back */
    run_done();
    plan_done();
    sched_done();
    idle_done();
    persist_done();
    task_table_done();
    conn_done();
    wire_done();
    sd_done();
    /* Children that ignored SIGTERM through the grace period are killed
     * now, so none outlives the daemon. */
    proc_shutdown();
    /* A pool thread still in a plugin's code: the loop would wait for it,
     * the plugins' fini and unloading would pull their state and code from
     * under it, and libuv's own destructor joins its threads at exit. The
     * process ends without any of it (_exit; the state store is closed
     * already); the kernel takes the rest. */
    if (pool_in_flight() > 0) {
        uv_walk(loop, close_walk, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        fflush(NULL);
        _exit(exit_code);
    }
    /* The plugins close their own handles first (fd watches, a weak one
     * the stop did not wait for), with their callbacks; then whatever is
     * left (connections, timers) is closed, and the callbacks run. */
    plugin_registry_fini();
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    /* The loop is done: big values still let go are freed at once. */
    reclaim_set_loop(NULL);
    plugin_registry_done();
    idstore_close();
    limit_done();
    policy_done();
    identity_done();
    coro_pool_clear();
    uv_loop_close(loop);
    uv_library_shutdown();
    config_done();
    pbvalue_node_cache(0);
    return exit_code;
}

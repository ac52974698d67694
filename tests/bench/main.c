/*
 * aiod-bench: options, orchestration and the results table. It starts its
 * own aiod (daemon.c), drives it with the raw client (client.c) and the same
 * clients against a bare echo server (echo.c), measures coroutine switches
 * (switch.c), runs Python asyncio's gather for reference, compares asyncio's
 * primitives (queue, lock, event, TaskGroup) run inside aiod by the bench
 * plugin with the same workloads in Python asyncio, measures durable
 * submits and restarts against fdatasync (durable.c), and prints, for every
 * figure, ours, the limit (or reference), the ratio and the target.
 * A workload that fails is reported as "failed: reason" and the others run.
 * Exit status: 0 when every workload ran (targets missed or not), 1 when one
 * failed, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <aioc.h>

#include "bench.h"

#ifndef AIOD_BENCH_AIOD
#define AIOD_BENCH_AIOD "aiod"
#endif
#ifndef AIOD_BENCH_PLUGINS
#define AIOD_BENCH_PLUGINS "."
#endif
#ifndef AIOD_BENCH_SRC
#define AIOD_BENCH_SRC "."
#endif

/* ---------------------------------------------------------------- options */

static struct {
    const char *aiod;
    const char *plugins;
    const char *python;
    const char *asyncio_script;
    const char *prims_script;
    /* The prims section: pairs through a queue of maxsize 1 (the unbounded
     * queue moves 10x as many), lock contenders and their rounds, event
     * waiters, TaskGroup children. */
    uint64_t queue_n, lock_tasks, lock_rounds, event_n, group_n;
    uint64_t latency_n;
    uint64_t pipeline_n;
    unsigned depth;
    uint64_t sleepers[4];
    size_t n_sleepers;
    uint64_t spawn_n;
    /* Extra arguments for every aiod started (--aiod-arg). */
    const char *aiod_args[16];
    size_t n_aiod_args;
    uint64_t switch_n;
    double idle_s;
    unsigned batch;
    const char *only;
    const char *connect;
    double sleep_s;
    /* The durability section. */
    uint64_t durable_n, durable_latency_n, durable_store;
    const char *durable_dir;
    bool quick;
} opt = {
    .aiod = AIOD_BENCH_AIOD,
    .plugins = AIOD_BENCH_PLUGINS,
    .python = "python3",
    .asyncio_script = AIOD_BENCH_SRC "/asyncio_gather.py",
    .prims_script = AIOD_BENCH_SRC "/asyncio_prims.py",
    .queue_n = 100000,
    .lock_tasks = 1000,
    .lock_rounds = 100,
    .event_n = 100000,
    .group_n = 1000000,
    .latency_n = 100000,
    .pipeline_n = 300000,
    .depth = 256,
    .sleepers = {100000, 1000000},
    .n_sleepers = 2,
    .spawn_n = 1000000,
    .switch_n = 10000000,
    .idle_s = 2.0,
    .batch = 100000,
    .sleep_s = 1.0,
    .durable_n = 500000,
    .durable_latency_n = 5000,
    .durable_store = 1000000,
    .durable_dir = "/var/tmp",
};

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: aiod-bench [OPTION]...\n"
        "Benchmark aiod against the physical limit (a bare echo server with the same\n"
        "framing) and print ours / limit / ratio / target for every figure.\n\n"
        "      --quick             a tiny configuration (smoke test)\n"
        "      --only LIST         sections: idle,latency,throughput,spawn,prims,sleep,\n"
        "                          switch,durable\n"
        "      --aiod PATH         the daemon (default %s)\n"
        "      --plugin-dir DIR    where bench.so is (default %s)\n"
        "      --latency-n N       round trips for latency (default 100000)\n"
        "      --pipeline-n N      tasks per client for throughput (default 300000)\n"
        "      --depth N           requests in flight per client (default 256)\n"
        "      --sleepers LIST     concurrent sleeping tasks (default 100000,1000000)\n"
        "      --sleep-seconds S   how long each of them sleeps (default 1)\n"
        "      --spawn N           children of the in-daemon spawn+gather (default 1000000)\n"
        "      --switch-n N        ping-pong iterations, 4 switches each (default 10000000)\n"
        "      --queue-n N         prims: put/get pairs through a queue of maxsize 1\n"
        "                          (default 100000; the unbounded queue moves 10x N)\n"
        "      --lock-tasks N      prims: tasks contending for one lock (default 1000)\n"
        "      --lock-rounds N     prims: acquisitions by each of them (default 100)\n"
        "      --event-n N         prims: tasks waiting on one event (default 100000)\n"
        "      --taskgroup N       prims: children of one TaskGroup (default 1000000)\n"
        "      --durable-n N       submits per durability throughput run, split among\n"
        "                          the clients (default 500000)\n"
        "      --durable-latency-n N  one-at-a-time durable submits (default 5000)\n"
        "      --durable-store N   tasks in the store of the restart (default 1000000)\n"
        "      --durable-dir DIR   where the state stores and the fdatasync probe go; a\n"
        "                          disk, not tmpfs (default /var/tmp)\n"
        "      --python PATH       Python for the asyncio reference (default /usr/bin/python3;\n"
        "                          \"none\" skips it)\n"
        "      --connect PATH      only drive the server at PATH (a peer speaking the same\n"
        "                          framing, no hello) with the latency and throughput\n"
        "                          clients; print \"name value\" lines\n"
        "      --aiod-arg ARG      pass ARG to every aiod started (repeatable), e.g.\n"
        "                          --aiod-arg=--retain-count=100\n"
        "  -q, --quiet             no progress lines on stderr\n"
        "  -h, --help              this help\n",
        AIOD_BENCH_AIOD, AIOD_BENCH_PLUGINS);
}

static bool section(const char *name) {
    if (!opt.only)
        return true;
    size_t n = strlen(name);
    for (const char *p = opt.only; (p = strstr(p, name)); p += n)
        if ((p == opt.only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return true;
    return false;
}

static uint64_t parse_count(const char *s, const char *what) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6, end++;
    if (errno || *end || v < 1) {
        fprintf(stderr, "aiod-bench: bad %s: %s\n", what, s);
        exit(2);
    }
    return (uint64_t)v;
}

static void parse_args(int argc, char **argv) {
    enum {
        O_QUICK = 256,
        O_ONLY,
        O_AIOD,
        O_PLUG,
        O_LAT,
        O_PIPE,
        O_DEPTH,
        O_SLEEP,
        O_SPAWN,
        O_SWITCH,
        O_PY,
        O_SLEEPS,
        O_CONNECT,
        O_AIOD_ARG,
        O_DUR_N,
        O_DUR_LAT,
        O_DUR_STORE,
        O_DUR_DIR,
        O_QUEUE_N,
        O_LOCK_TASKS,
        O_LOCK_ROUNDS,
        O_EVENT_N,
        O_GROUP_N
    };
    static const struct option longopts[] = {
        {"quick", no_argument, NULL, O_QUICK},
        {"only", required_argument, NULL, O_ONLY},
        {"aiod", required_argument, NULL, O_AIOD},
        {"plugin-dir", required_argument, NULL, O_PLUG},
        {"latency-n", required_argument, NULL, O_LAT},
        {"pipeline-n", required_argument, NULL, O_PIPE},
        {"depth", required_argument, NULL, O_DEPTH},
        {"sleepers", required_argument, NULL, O_SLEEP},
        {"spawn", required_argument, NULL, O_SPAWN},
        {"switch-n", required_argument, NULL, O_SWITCH},
        {"python", required_argument, NULL, O_PY},
        {"sleep-seconds", required_argument, NULL, O_SLEEPS},
        {"connect", required_argument, NULL, O_CONNECT},
        {"aiod-arg", required_argument, NULL, O_AIOD_ARG},
        {"durable-n", required_argument, NULL, O_DUR_N},
        {"durable-latency-n", required_argument, NULL, O_DUR_LAT},
        {"durable-store", required_argument, NULL, O_DUR_STORE},
        {"durable-dir", required_argument, NULL, O_DUR_DIR},
        {"queue-n", required_argument, NULL, O_QUEUE_N},
        {"lock-tasks", required_argument, NULL, O_LOCK_TASKS},
        {"lock-rounds", required_argument, NULL, O_LOCK_ROUNDS},
        {"event-n", required_argument, NULL, O_EVENT_N},
        {"taskgroup", required_argument, NULL, O_GROUP_N},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case O_QUICK:
            opt.quick = true;
            opt.latency_n = 2000;
            opt.pipeline_n = 5000;
            opt.sleepers[0] = 1000;
            opt.n_sleepers = 1;
            opt.spawn_n = 10000;
            opt.switch_n = 100000;
            opt.idle_s = 0.3;
            opt.python = "none";
            opt.durable_n = 2000;
            opt.durable_latency_n = 200;
            opt.durable_store = 4000;
            opt.queue_n = 1000;
            opt.lock_tasks = 10;
            opt.lock_rounds = 10;
            opt.event_n = 1000;
            opt.group_n = 10000;
            break;
        case O_ONLY:
            opt.only = optarg;
            break;
        case O_AIOD:
            opt.aiod = optarg;
            break;
        case O_PLUG:
            opt.plugins = optarg;
            break;
        case O_LAT:
            opt.latency_n = parse_count(optarg, "--latency-n");
            break;
        case O_PIPE:
            opt.pipeline_n = parse_count(optarg, "--pipeline-n");
            break;
        case O_DEPTH:
            opt.depth = (unsigned)parse_count(optarg, "--depth");
            break;
        case O_SPAWN:
            opt.spawn_n = parse_count(optarg, "--spawn");
            break;
        case O_SWITCH:
            opt.switch_n = parse_count(optarg, "--switch-n");
            break;
        case O_PY:
            opt.python = optarg;
            break;
        case O_DUR_N:
            opt.durable_n = parse_count(optarg, "--durable-n");
            break;
        case O_DUR_LAT:
            opt.durable_latency_n = parse_count(optarg, "--durable-latency-n");
            break;
        case O_DUR_STORE:
            opt.durable_store = parse_count(optarg, "--durable-store");
            break;
        case O_DUR_DIR:
            opt.durable_dir = optarg;
            break;
        case O_QUEUE_N:
            opt.queue_n = parse_count(optarg, "--queue-n");
            break;
        case O_LOCK_TASKS:
            opt.lock_tasks = parse_count(optarg, "--lock-tasks");
            break;
        case O_LOCK_ROUNDS:
            opt.lock_rounds = parse_count(optarg, "--lock-rounds");
            break;
        case O_EVENT_N:
            opt.event_n = parse_count(optarg, "--event-n");
            break;
        case O_GROUP_N:
            opt.group_n = parse_count(optarg, "--taskgroup");
            break;
        case O_CONNECT:
            opt.connect = optarg;
            break;
        case O_AIOD_ARG:
            if (opt.n_aiod_args == sizeof(opt.aiod_args) / sizeof(opt.aiod_args[0])) {
                fprintf(stderr, "aiod-bench: too many --aiod-arg\n");
                exit(2);
            }
            opt.aiod_args[opt.n_aiod_args++] = optarg;
            break;
        case O_SLEEPS:
            opt.sleep_s = strtod(optarg, NULL);
            if (opt.sleep_s <= 0 || opt.sleep_s > 3600) {
                fprintf(stderr, "aiod-bench: bad --sleep-seconds: %s\n", optarg);
                exit(2);
            }
            break;
        case O_SLEEP: {
            opt.n_sleepers = 0;
            char *copy = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && opt.n_sleepers < 4;
                 t = strtok_r(NULL, ",", &save))
                opt.sleepers[opt.n_sleepers++] = parse_count(t, "--sleepers");
            free(copy);
            break;
        }
        case 'q':
            bench_verbose = false;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        usage(stderr);
        exit(2);
    }
}

/* ---------------------------------------------------------------- the table */

#define MAX_ROWS 64
static row rows[MAX_ROWS];
static size_t n_rows;
static char notes[MAX_ROWS][400];
static size_t n_notes;
static bool any_failed;

row *add_row(const char *name) {
    if (n_rows == MAX_ROWS)
        n_rows--;
    row *r = &rows[n_rows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->limit, sizeof(r->limit), "-");
    snprintf(r->ratio, sizeof(r->ratio), "-");
    snprintf(r->target, sizeof(r->target), "-");
    r->met = "-";
    return r;
}

void add_note(const char *fmt, ...) {
    if (n_notes == MAX_ROWS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes[n_notes++], sizeof(notes[0]), fmt, ap);
    va_end(ap);
}

void fail_row(row *r, const char *reason) {
    snprintf(r->ours, sizeof(r->ours), "failed (note %zu)", n_notes + 1);
    r->met = "no";
    add_note("%s: failed: %s", r->name, reason);
    any_failed = true;
}

void fmt_int(char *buf, size_t len, uint64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

static void fmt_bytes(char *buf, size_t len, uint64_t v) {
    if (v >= 1024u * 1024u)
        snprintf(buf, len, "%.1f MiB", (double)v / (1024.0 * 1024.0));
    else
        snprintf(buf, len, "%.1f KiB", (double)v / 1024.0);
}

static void print_table(void) {
    static const char *head[] = {"figure", "ours", "limit / reference", "ratio", "target", "met"};
    size_t w[6];
    for (int i = 0; i < 6; i++)
        w[i] = strlen(head[i]);
    for (size_t i = 0; i < n_rows; i++) {
        const char *cols[] = {rows[i].name,  rows[i].ours,   rows[i].limit,
                              rows[i].ratio, rows[i].target, rows[i].met};
        for (int j = 0; j < 6; j++)
            if (strlen(cols[j]) > w[j])
                w[j] = strlen(cols[j]);
    }
    printf("\n");
    for (int j = 0; j < 6; j++)
        printf("| %-*s ", (int)w[j], head[j]);
    printf("|\n");
    for (int j = 0; j < 6; j++) {
        printf("|");
        for (size_t k = 0; k < w[j] + 2; k++)
            putchar('-');
    }
    printf("|\n");
    for (size_t i = 0; i < n_rows; i++) {
        const char *cols[] = {rows[i].name,  rows[i].ours,   rows[i].limit,
                              rows[i].ratio, rows[i].target, rows[i].met};
        for (int j = 0; j < 6; j++)
            printf("| %-*s ", (int)w[j], cols[j]);
        printf("|\n");
    }
    for (size_t i = 0; i < n_notes; i++)
        printf("\n%zu. %s", i + 1, notes[i]);
    if (n_notes)
        printf("\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- helpers */

const char *yes(bool b) {
    return b ? "yes" : "no";
}

static int start_daemon(bench_daemon *d, uint64_t max_tasks, char *err, size_t err_len) {
    char mt[32];
    snprintf(mt, sizeof(mt), "%llu", (unsigned long long)max_tasks);
    const char *extra[20];
    size_t n = 0;
    if (max_tasks) {
        extra[n++] = "--max-tasks";
        extra[n++] = mt;
    }
    for (size_t i = 0; i < opt.n_aiod_args; i++)
        extra[n++] = opt.aiod_args[i];
    extra[n] = NULL;
    int r = daemon_start(d, opt.aiod, opt.plugins, extra, err, err_len);
    if (r == 0)
        bench_log("aiod pid %d on %s", (int)d->pid, d->socket);
    return r;
}

/* ---------------------------------------------------------------- sections */

/* After load the window starts 1.5 s later: aiod hands memory back once, a
 * second after its last task ended (malloc_trim and the run stack), and
 * that is part of going idle, not of being idle. */
static void idle_rows(bench_daemon *d, const char *when, double settle_s) {
    sleep_s(settle_s);
    uint64_t t0 = proc_cpu_ticks(d->pid);
    sleep_s(opt.idle_s);
    uint64_t t1 = proc_cpu_ticks(d->pid);
    uint64_t rss = proc_rss(d->pid), anon = proc_rss_anon(d->pid);
    long hz = sysconf(_SC_CLK_TCK);
    char name[96];
    snprintf(name, sizeof(name), "idle CPU %s (ms over %.1f s)", when, opt.idle_s);
    row *r = add_row(name);
    snprintf(r->ours, sizeof(r->ours), "%.0f", (double)(t1 - t0) * 1000.0 / (double)hz);
    snprintf(r->target, sizeof(r->target), "0");
    r->met = yes(t1 == t0);
    snprintf(name, sizeof(name), "idle RSS %s", when);
    r = add_row(name);
    fmt_bytes(r->ours, sizeof(r->ours), rss);
    snprintf(r->target, sizeof(r->target), "<= 4 MiB");
    r->met = yes(rss && rss <= 4u * 1024u * 1024u);
    /* What of it is the daemon's own: the rest is pages of shared libraries
     * (libc alone is about 1.5 MiB) that every process using them shares. */
    snprintf(name, sizeof(name), "idle RSS %s: private (RssAnon)", when);
    r = add_row(name);
    fmt_bytes(r->ours, sizeof(r->ours), anon);
}

typedef struct measured {
    bench_result lat, lat_lib, tp[2];
} measured;

static const unsigned client_counts[2] = {1, 4};
/* Set while rpc_section measures latency itself, interleaved. */
static bool aiod_and_echo_interleaved;

/*
 * Latency of aiod and of the echo server in alternating blocks, so that both
 * see the same machine (on a VM the cost of a cross-CPU wakeup varies from
 * one minute to the next and would otherwise land on one side only).
 */
#define LAT_BLOCKS 10
static void interleaved_latency(const char *aiod_path, const char *echo_path, const bench_req *req,
                                uint64_t n, bench_result *ours, bench_result *lim) {
    uint64_t per = n / LAT_BLOCKS ? n / LAT_BLOCKS : 1;
    uint64_t total = per * LAT_BLOCKS;
    uint64_t *so = malloc(total * sizeof(*so)), *sl = malloc(total * sizeof(*sl));
    bench_result r;
    ours->ok = lim->ok = so && sl;
    bench_log("aiod and echo: latency, %llu round trips each in %d alternating blocks",
              (unsigned long long)total, LAT_BLOCKS);
    for (int b = 0; b < LAT_BLOCKS && ours->ok && lim->ok; b++) {
        bench_latency_samples(aiod_path, true, req, per, per / 10 + 50, &r, so + b * per);
        if (!r.ok)
            *ours = r;
        bench_latency_samples(echo_path, false, req, per, per / 10 + 50, &r, sl + b * per);
        if (!r.ok)
            *lim = r;
    }
    if (ours->ok) {
        ours->count = total;
        ours->p50_ns = bench_quantile(so, total, 0.50);
        ours->p99_ns = bench_quantile(so, total, 0.99);
    }
    if (lim->ok) {
        lim->count = total;
        lim->p50_ns = bench_quantile(sl, total, 0.50);
        lim->p99_ns = bench_quantile(sl, total, 0.99);
    }
    free(so);
    free(sl);
}

/*
 * The same, with the client and the servers pinned: all on CPU 0, then the
 * client on CPU 0 and the servers on CPU 1. Left to itself the scheduler
 * may keep a server on the client's CPU or on the other one, for the whole
 * run, and on a VM whose idle CPUs halt the second costs some 50 us a round
 * trip, whichever the server: the unpinned figures then compare placements
 * more than servers.
 */
static struct {
    bool run;
    bench_result ours[2], lim[2];
} placed;

static int pin_all(int client, int server, pid_t aiod_pid, pid_t echo_pid) {
    int r = bench_pin(0, client);
    if (r == 0)
        r = bench_pin(aiod_pid, server);
    if (r == 0)
        r = bench_pin(echo_pid, server);
    return r;
}

static void placed_latency(const char *aiod_path, const char *echo_path, const bench_req *req,
                           pid_t aiod_pid, pid_t echo_pid) {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    placed.run = true;
    for (int apart = 0; apart < 2; apart++) {
        bench_log("latency pinned: the client on CPU 0, the servers on CPU %d", apart);
        int r = pin_all(0, apart, aiod_pid, echo_pid);
        if (r < 0) {
            for (int i = apart; i < 2; i++) {
                placed.ours[i].ok = false;
                snprintf(placed.ours[i].reason, sizeof(placed.ours[i].reason),
                         "cannot pin to CPUs 0 and 1: %s", strerror(-r));
            }
            break;
        }
        interleaved_latency(aiod_path, echo_path, req, opt.latency_n / 2, &placed.ours[apart],
                            &placed.lim[apart]);
    }
    pin_all(-1, -1, aiod_pid, echo_pid);
}

static void run_clients(const char *path, bool aiod, const bench_req *req, measured *m,
                        uint8_t **template_out, size_t *template_len) {
    const char *who = aiod ? "aiod" : "echo";
    if (section("latency")) {
        if (!aiod_and_echo_interleaved) {
            bench_log("%s: latency, %llu round trips", who, (unsigned long long)opt.latency_n);
            bench_latency(path, aiod, req, opt.latency_n, opt.latency_n / 10 + 100, &m->lat,
                          template_out, template_len);
        }
        if (aiod) {
            uint64_t n = opt.latency_n / 5 ? opt.latency_n / 5 : 1;
            bench_log("%s: latency through libaioclient, %llu round trips", who,
                      (unsigned long long)n);
            bench_latency_libaioclient(path, "bench.noop", n, n / 10 + 10, &m->lat_lib);
        }
    }
    if (section("throughput")) {
        for (int i = 0; i < 2; i++) {
            bench_log("%s: throughput, %u client(s) x %llu tasks, %u in flight each", who,
                      client_counts[i], (unsigned long long)opt.pipeline_n, opt.depth);
            bench_pipeline(path, aiod, req, client_counts[i], opt.depth, opt.pipeline_n, &m->tp[i]);
        }
    }
}

/* A reply like aiod's, for when aiod gave none: request 128, Outcomes with
 * one done outcome (task 128, null result); 16 bytes. */
static uint8_t synthetic_reply[] = {0x08, 0x80, 0x01, 0x2a, 0x0b, 0x0a, 0x09, 0x08,
                                    0x80, 0x01, 0x10, 0x03, 0x1a, 0x02, 0x0a, 0x00};

static void rpc_section(void) {
    char err[300];
    bench_daemon d;
    measured ours = {0}, lim = {0};
    bench_req req = {0};
    bool daemon_ok = start_daemon(&d, 0, err, sizeof(err)) == 0;
    aiod_and_echo_interleaved = daemon_ok;
    if (breq_gather(&req, "bench.noop", 1, false, 0, false, 0) < 0) {
        fprintf(stderr, "aiod-bench: out of memory\n");
        exit(1);
    }
    uint8_t *tmpl = NULL;
    size_t tmpl_len = 0;
    if (daemon_ok) {
        if (section("idle"))
            idle_rows(&d, "at start", 0.2);
        /* aiod's reply to bench.noop becomes the echo server's reply. */
        bench_result warm;
        bench_latency(d.socket, true, &req, 200, 100, &warm, &tmpl, &tmpl_len);
        run_clients(d.socket, true, &req, &ours, NULL, NULL);
    }
    char why[300];
    snprintf(why, sizeof(why), "%s", err);
    if (daemon_ok && !daemon_alive(&d, why, sizeof(why)))
        daemon_ok = false;

    /* The limit: the same clients against the echo server, replying with a
     * frame of the size of aiod's reply. */
    char echo_path[320];
    snprintf(echo_path, sizeof(echo_path), "%s/echo.sock", d.dir);
    if (!daemon_ok)
        snprintf(echo_path, sizeof(echo_path), "/tmp/aiod-bench-echo.%d.sock", (int)getpid());
    bool have_tmpl = tmpl != NULL;
    pid_t echo = -1;
    if (section("latency") || section("throughput")) {
        echo = echo_start(echo_path, have_tmpl ? tmpl : synthetic_reply,
                          have_tmpl ? tmpl_len : sizeof(synthetic_reply));
        if (echo > 0) {
            bench_log("echo server pid %d, reply payload %zu bytes, request payload %zu bytes",
                      (int)echo, have_tmpl ? tmpl_len : sizeof(synthetic_reply), req.len + 2);
            run_clients(echo_path, false, &req, &lim, NULL, NULL);
            if (daemon_ok && section("latency")) {
                interleaved_latency(d.socket, echo_path, &req, opt.latency_n, &ours.lat, &lim.lat);
                placed_latency(d.socket, echo_path, &req, d.pid, echo);
            }
            echo_stop(echo);
        }
        unlink(echo_path);
    }
    if (daemon_ok && section("idle") && (section("latency") || section("throughput")))
        idle_rows(&d, "after load", 1.5);
    if (daemon_ok) {
        if (ours.lat.ok == false || ours.tp[0].ok == false || ours.tp[1].ok == false) {
            daemon_explain(&d, ours.lat.reason, sizeof(ours.lat.reason));
        }
        daemon_stop(&d);
    } else if (*d.dir) {
        daemon_stop(&d);
    }

    if (section("latency")) {
        const char *names[2] = {"latency p50 (us)", "latency p99 (us)"};
        for (int q = 0; q < 2; q++) {
            row *r = add_row(names[q]);
            uint64_t o = q ? ours.lat.p99_ns : ours.lat.p50_ns;
            uint64_t l = q ? lim.lat.p99_ns : lim.lat.p50_ns;
            if (echo > 0 && lim.lat.ok)
                snprintf(r->limit, sizeof(r->limit), "%.1f", (double)l / 1e3);
            else
                snprintf(r->limit, sizeof(r->limit), "echo failed");
            if (q == 0)
                snprintf(r->target, sizeof(r->target), "<= 1.3x limit");
            if (!daemon_ok) {
                fail_row(r, why);
                continue;
            }
            if (!ours.lat.ok) {
                fail_row(r, ours.lat.reason);
                continue;
            }
            snprintf(r->ours, sizeof(r->ours), "%.1f", (double)o / 1e3);
            if (l) {
                double ratio = (double)o / (double)l;
                snprintf(r->ratio, sizeof(r->ratio), "%.2fx", ratio);
                if (q == 0)
                    r->met = yes(ratio <= 1.3);
            }
        }
        for (int apart = 0; placed.run && apart < 2; apart++) {
            row *r = add_row(apart ? "latency p50, client and server on two CPUs (us)"
                                   : "latency p50, client and server on one CPU (us)");
            const bench_result *o = &placed.ours[apart], *l = &placed.lim[apart];
            if (!o->ok || !l->ok) {
                fail_row(r, !o->ok ? o->reason : l->reason);
                continue;
            }
            snprintf(r->ours, sizeof(r->ours), "%.1f (p99 %.1f)", (double)o->p50_ns / 1e3,
                     (double)o->p99_ns / 1e3);
            snprintf(r->limit, sizeof(r->limit), "%.1f (p99 %.1f)", (double)l->p50_ns / 1e3,
                     (double)l->p99_ns / 1e3);
            if (l->p50_ns)
                snprintf(r->ratio, sizeof(r->ratio), "%.2fx",
                         (double)o->p50_ns / (double)l->p50_ns);
        }
        row *r = add_row("latency p50 via libaioclient (us)");
        if (daemon_ok && ours.lat_lib.ok) {
            snprintf(r->ours, sizeof(r->ours), "%.1f (p99 %.1f)", (double)ours.lat_lib.p50_ns / 1e3,
                     (double)ours.lat_lib.p99_ns / 1e3);
            if (lim.lat.p50_ns) {
                snprintf(r->limit, sizeof(r->limit), "%.1f", (double)lim.lat.p50_ns / 1e3);
                snprintf(r->ratio, sizeof(r->ratio), "%.2fx",
                         (double)ours.lat_lib.p50_ns / (double)lim.lat.p50_ns);
            }
        } else {
            fail_row(r, daemon_ok ? ours.lat_lib.reason : why);
        }
    }
    if (section("throughput")) {
        for (int i = 0; i < 2; i++) {
            char name[64];
            snprintf(name, sizeof(name), "throughput %u client%s (tasks/s)", client_counts[i],
                     client_counts[i] > 1 ? "s" : "");
            row *r = add_row(name);
            const bench_result *o = &ours.tp[i], *l = &lim.tp[i];
            double lr = l->ok && l->elapsed_ns ? (double)l->count * 1e9 / (double)l->elapsed_ns : 0;
            if (lr > 0)
                fmt_int(r->limit, sizeof(r->limit), (uint64_t)lr);
            else
                snprintf(r->limit, sizeof(r->limit), "echo failed");
            snprintf(r->target, sizeof(r->target),
                     i == 0 ? ">= 0.5x limit" : ">= 1,000,000 tasks/s");
            if (!daemon_ok || !o->ok) {
                fail_row(r, daemon_ok ? o->reason : why);
                continue;
            }
            double or = o->elapsed_ns ? (double)o->count * 1e9 / (double)o->elapsed_ns : 0;
            fmt_int(r->ours, sizeof(r->ours), (uint64_t) or);
            if (lr > 0)
                snprintf(r->ratio, sizeof(r->ratio), "%.2fx", or / lr);
            r->met = i == 0 ? (lr > 0 ? yes(or >= 0.5 * lr) : "-") : yes(or >= 1e6);
        }
    }
    free(tmpl);
    breq_free(&req);
}

/* Runs the asyncio script: its last line is "seconds S rss_peak B". */
static bool asyncio_gather(uint64_t n, double sleep, double *seconds, char *err, size_t len) {
    if (!strcmp(opt.python, "none")) {
        bench_note(err, len, "skipped (--python none)");
        return false;
    }
    if (access(opt.asyncio_script, R_OK) != 0) {
        bench_note(err, len, "%s: %s", opt.asyncio_script, strerror(errno));
        return false;
    }
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' --n %llu --sleep %g 2>&1", opt.python, opt.asyncio_script,
             (unsigned long long)n, sleep);
    bench_log("asyncio: %s", cmd);
    FILE *p = popen(cmd, "r");
    if (!p) {
        bench_note(err, len, "popen: %s", strerror(errno));
        return false;
    }
    char line[512], last[512] = "";
    while (fgets(line, sizeof(line), p))
        snprintf(last, sizeof(last), "%s", line);
    int st = pclose(p);
    last[strcspn(last, "\n")] = 0;
    if (st != 0 || sscanf(last, "seconds %lf", seconds) != 1) {
        bench_note(err, len, "%s failed: %s", opt.python, last);
        return false;
    }
    return true;
}

/* Page faults (minor and major) the process has taken so far, from
 * /proc/PID/stat (fields 10 and 12), or UINT64_MAX when unreadable. The
 * daemon is a child we exec, so getrusage of ours would not see them. */
static uint64_t proc_faults(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return UINT64_MAX;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name, which may hold spaces: field 3 is right
     * after the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long minflt, cminflt, majflt;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %llu %llu", &minflt, &cminflt,
                     &majflt) != 3)
        return UINT64_MAX;
    return minflt + majflt;
}

/* One spawn+gather of opt.spawn_n in daemon d: fills the time row (and its
 * ratio to asyncio's `py` seconds when py_ok) and the page-fault row. */
static double spawn_run(bench_daemon *d, row *r_time, row *r_faults) {
    double s = -1;
    bench_req req = {0};
    breq_gather(&req, "bench.spawn_gather", 1, false, 0, true, (int64_t)opt.spawn_n);
    bench_result res;
    bench_log("aiod: one task spawning and gathering %llu children",
              (unsigned long long)opt.spawn_n);
    uint64_t f0 = proc_faults(d->pid);
    bench_batch(d->socket, &req, 1, &res);
    uint64_t f1 = proc_faults(d->pid);
    if (!res.ok) {
        daemon_explain(d, res.reason, sizeof(res.reason));
        fail_row(r_time, res.reason);
        snprintf(r_faults->ours, sizeof(r_faults->ours), "n/a");
    } else {
        s = (double)res.elapsed_ns / 1e9;
        snprintf(r_time->ours, sizeof(r_time->ours), "%.3f", s);
        if (f0 != UINT64_MAX && f1 != UINT64_MAX && f1 >= f0)
            snprintf(r_faults->ours, sizeof(r_faults->ours), "%.3f (%llu)",
                     (double)(f1 - f0) / (double)opt.spawn_n, (unsigned long long)(f1 - f0));
        else
            snprintf(r_faults->ours, sizeof(r_faults->ours), "n/a (no /proc)");
    }
    breq_free(&req);
    return s;
}

/*
 * The in-daemon spawn+gather, twice in the same daemon: the first run is the
 * figure against asyncio; the second shows whether the daemon reuses the
 * memory of the first (page faults per task near zero) or faults it in again.
 * Each time row is followed by the daemon's page faults per task (minor and
 * major, total in parentheses) during that run.
 */
static void spawn_section(void) {
    char err[300], name[96], nbuf[32];
    fmt_int(nbuf, sizeof(nbuf), opt.spawn_n);
    snprintf(name, sizeof(name), "in-daemon spawn+gather %s (s)", nbuf);
    row *r = add_row(name);
    snprintf(r->target, sizeof(r->target), "asyncio/ours >= 10x");
    snprintf(name, sizeof(name), "in-daemon spawn+gather %s: page faults per task", nbuf);
    row *r_pf = add_row(name);
    snprintf(name, sizeof(name), "in-daemon spawn+gather %s, again in that daemon (s)", nbuf);
    row *r2 = add_row(name);
    snprintf(name, sizeof(name), "in-daemon spawn+gather %s, again: page faults per task", nbuf);
    row *r2_pf = add_row(name);

    /* The daemon first, then asyncio (see prims_section for why). */
    bench_daemon d;
    if (start_daemon(&d, opt.spawn_n * 2 + 16, err, sizeof(err)) < 0) {
        fail_row(r, err);
        return;
    }
    double s1 = spawn_run(&d, r, r_pf);
    double s2 = spawn_run(&d, r2, r2_pf);
    daemon_stop(&d);
    /* The second run has no target of its own. */
    snprintf(r2->target, sizeof(r2->target), "-");

    double py = 0;
    char pyerr[300];
    bool py_ok = asyncio_gather(opt.spawn_n, 0, &py, pyerr, sizeof(pyerr));
    if (py_ok) {
        snprintf(r->limit, sizeof(r->limit), "%.3f (asyncio sleep(0))", py);
        snprintf(r2->limit, sizeof(r2->limit), "%.3f (asyncio sleep(0))", py);
        if (s1 > 0) {
            snprintf(r->ratio, sizeof(r->ratio), "%.1fx faster", py / s1);
            r->met = yes(py / s1 >= 10);
        }
        if (s2 > 0)
            snprintf(r2->ratio, sizeof(r2->ratio), "%.1fx faster", py / s2);
    } else {
        snprintf(r->limit, sizeof(r->limit), "asyncio: n/a");
        add_note("%s: asyncio reference: %s", r->name, pyerr);
    }
    r2->met = "-";
}

/* ---------------------------------------------------------------- prims */

/* The workloads of the prims section, in the order they run: the bench
 * plugin's function and its arguments, and the name of the same workload in
 * asyncio_prims.py, whose sizes are passed on its command line. */
enum { PRIM_QUEUE1, PRIM_QUEUE0, PRIM_LOCK, PRIM_EVENT, PRIM_GROUP, N_PRIMS };

typedef struct prim {
    const char *py_name;
    const char *function;
    int64_t args[2];
    size_t n_args;
    /* What is counted (pairs, acquisitions, ...): figures in count/s when
     * rate, else in seconds. */
    uint64_t count;
    bool rate;
    char name[128];
    /* asyncio's seconds, ours for the first and second run in one daemon,
     * and the daemon's page faults during each. */
    bool py_ok, ok[2];
    double py_s, s[2];
    uint64_t faults[2];
} prim;

/* Runs asyncio_prims.py once for every workload; fills py_s of those it
 * reported and the Python version into `version`. false with the reason in
 * err when the script could not run (then no py_ok is set). */
static bool asyncio_prims(prim *p, char *version, size_t vlen, char *err, size_t len) {
    if (!strcmp(opt.python, "none")) {
        bench_note(err, len, "skipped (--python none)");
        return false;
    }
    if (access(opt.prims_script, R_OK) != 0) {
        bench_note(err, len, "%s: %s", opt.prims_script, strerror(errno));
        return false;
    }
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "'%s' '%s' --queue1-n %llu --queue0-n %llu --lock-tasks %llu --lock-rounds %llu "
             "--event-n %llu --group-n %llu 2>&1",
             opt.python, opt.prims_script, (unsigned long long)opt.queue_n,
             (unsigned long long)(opt.queue_n * 10), (unsigned long long)opt.lock_tasks,
             (unsigned long long)opt.lock_rounds, (unsigned long long)opt.event_n,
             (unsigned long long)opt.group_n);
    bench_log("asyncio: %s", cmd);
    FILE *f = popen(cmd, "r");
    if (!f) {
        bench_note(err, len, "popen: %s", strerror(errno));
        return false;
    }
    char line[512], last[512] = "";
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        snprintf(last, sizeof(last), "%s", line);
        char name[32];
        double secs;
        unsigned long long count;
        if (!strncmp(line, "python ", 7)) {
            snprintf(version, vlen, "%.150s", line + 7);
            continue;
        }
        if (sscanf(line, "%31s seconds %lf count %llu", name, &secs, &count) != 3)
            continue;
        for (int i = 0; i < N_PRIMS; i++)
            if (!strcmp(name, p[i].py_name) && count == p[i].count && secs > 0) {
                p[i].py_ok = true;
                p[i].py_s = secs;
            }
    }
    int st = pclose(f);
    if (st != 0) {
        bench_note(err, len, "%s exited with status %d: %s", opt.python, st, last);
        return false;
    }
    return true;
}

/* Runs one workload in the daemon through libaioclient: the seconds it
 * measured inside (its result), and the daemon's page faults meanwhile. */
static bool prim_run(bench_daemon *d, aioc_client *cl, prim *p, int k, char *err, size_t len) {
    aioc_call *call = aioc_call_new(p->function);
    for (size_t i = 0; call && i < p->n_args; i++)
        if (aioc_call_arg(call, aioc_value_int(p->args[i])) < 0) {
            aioc_call_free(call);
            call = NULL;
        }
    if (!call) {
        bench_note(err, len, "out of memory");
        return false;
    }
    bench_log("aiod: %s (%s)", p->name, k ? "again" : "first run");
    uint64_t f0 = proc_faults(d->pid);
    aioc_outcome *o = NULL;
    int r = aioc_run(cl, call, 0, &o);
    uint64_t f1 = proc_faults(d->pid);
    aioc_call_free(call);
    bool ok = false;
    if (r < 0)
        bench_note(err, len, "aioc_run: %s", strerror(-r));
    else if (aioc_outcome_state(o) != AIOC_STATE_DONE)
        bench_note(err, len, "%s: %s: %s", aioc_state_name(aioc_outcome_state(o)),
                   aioc_outcome_error_kind(o), aioc_outcome_error_message(o));
    else if (aioc_value_type(aioc_outcome_result(o)) != AIOC_TYPE_DOUBLE)
        bench_note(err, len, "the result is not a double");
    else {
        p->s[k] = aioc_value_get_double(aioc_outcome_result(o));
        p->faults[k] = f0 != UINT64_MAX && f1 != UINT64_MAX && f1 >= f0 ? f1 - f0 : UINT64_MAX;
        ok = p->s[k] > 0;
        if (!ok)
            bench_note(err, len, "it measured %g s", p->s[k]);
    }
    aioc_outcome_free(o);
    return ok;
}

static void prim_figure(char *buf, size_t len, const prim *p, double s) {
    if (p->rate)
        fmt_int(buf, len, (uint64_t)((double)p->count / s));
    else
        snprintf(buf, len, s < 1 ? "%.4f" : "%.3f", s);
}

/*
 * asyncio's primitives in the daemon (the bench plugin's prim_* functions,
 * each timed inside with loop_time) against the same workloads in Python
 * asyncio (asyncio_prims.py, timed inside with loop.time()), run in this
 * same run. Each workload runs twice in one daemon: the first run is the
 * figure against asyncio (asyncio's is a first run too); the second, in
 * parentheses, shows what reusing the daemon's memory gives. Page faults
 * per item are the daemon's during the first run.
 */
static void prims_section(void) {
    char err[300], n1[32], n2[32];
    prim p[N_PRIMS] = {
        [PRIM_QUEUE1] =
            {"queue1", "bench.prim_queue", {(int64_t)opt.queue_n, 1}, 2, opt.queue_n, true},
        [PRIM_QUEUE0] = {"queue0",
                         "bench.prim_queue",
                         {(int64_t)opt.queue_n * 10, 0},
                         2,
                         opt.queue_n * 10,
                         true},
        [PRIM_LOCK] = {"lock",
                       "bench.prim_lock",
                       {(int64_t)opt.lock_tasks, (int64_t)opt.lock_rounds},
                       2,
                       opt.lock_tasks * opt.lock_rounds,
                       true},
        [PRIM_EVENT] = {"event", "bench.prim_event", {(int64_t)opt.event_n}, 1, opt.event_n, false},
        [PRIM_GROUP] =
            {"taskgroup", "bench.prim_taskgroup", {(int64_t)opt.group_n}, 1, opt.group_n, false},
    };
    fmt_int(n1, sizeof(n1), opt.queue_n);
    snprintf(p[PRIM_QUEUE1].name, sizeof(p[0].name), "Queue put/get, maxsize 1, %s pairs (pairs/s)",
             n1);
    fmt_int(n1, sizeof(n1), opt.queue_n * 10);
    snprintf(p[PRIM_QUEUE0].name, sizeof(p[0].name), "Queue put/get, unbounded, %s pairs (pairs/s)",
             n1);
    fmt_int(n1, sizeof(n1), opt.lock_tasks);
    fmt_int(n2, sizeof(n2), opt.lock_rounds);
    snprintf(p[PRIM_LOCK].name, sizeof(p[0].name), "Lock, %s tasks x %s acquisitions (per s)", n1,
             n2);
    fmt_int(n1, sizeof(n1), opt.event_n);
    snprintf(p[PRIM_EVENT].name, sizeof(p[0].name), "Event waking %s waiters (s)", n1);
    fmt_int(n1, sizeof(n1), opt.group_n);
    snprintf(p[PRIM_GROUP].name, sizeof(p[0].name), "TaskGroup of %s children (s)", n1);

    row *r[N_PRIMS];
    for (int i = 0; i < N_PRIMS; i++) {
        r[i] = add_row(p[i].name);
        snprintf(r[i]->target, sizeof(r[i]->target), ">= 10x asyncio");
    }
    char pf_name[128];
    fmt_int(n1, sizeof(n1), opt.group_n);
    snprintf(pf_name, sizeof(pf_name), "TaskGroup of %s children: page faults per child", n1);
    row *r_pf = add_row(pf_name);

    uint64_t most = opt.group_n;
    if (opt.event_n > most)
        most = opt.event_n;
    if (opt.lock_tasks > most)
        most = opt.lock_tasks;
    bench_daemon d;
    aioc_client *cl = NULL;
    bool daemon_ok = start_daemon(&d, most * 2 + 16, err, sizeof(err)) == 0;
    if (daemon_ok) {
        int rc = aioc_connect(d.socket, &cl);
        if (rc < 0) {
            bench_note(err, sizeof(err), "aioc_connect: %s", strerror(-rc));
            daemon_stop(&d);
            daemon_ok = false;
        }
    }
    /* The daemon runs first, then asyncio: each on a machine the other
     * has left (a 1 GB Python run right before leaves memory too
     * fragmented for the daemon's huge pages, which costs it direct
     * compaction). */
    char daemon_err[N_PRIMS][300];
    for (int i = 0; i < N_PRIMS; i++) {
        daemon_err[i][0] = 0;
        if (!daemon_ok) {
            snprintf(daemon_err[i], sizeof(daemon_err[i]), "%s", err);
            continue;
        }
        for (int k = 0; k < 2; k++)
            if (!(p[i].ok[k] = prim_run(&d, cl, &p[i], k, err, sizeof(err)))) {
                daemon_explain(&d, err, sizeof(err));
                snprintf(daemon_err[i], sizeof(daemon_err[i]), "%s", err);
                break;
            }
    }
    aioc_close(cl);
    cl = NULL;
    if (daemon_ok)
        daemon_stop(&d);

    char version[160] = "?", pyerr[300] = "";
    bool py_ran = asyncio_prims(p, version, sizeof(version), pyerr, sizeof(pyerr));
    if (py_ran)
        add_note("prims: asyncio is Python %s, tests/bench/asyncio_prims.py, in this run with the "
                 "same sizes, after the daemon's runs; both sides timed inside (loop_time, "
                 "loop.time())",
                 version);
    else
        add_note("prims: asyncio reference: %s", pyerr);

    for (int i = 0; i < N_PRIMS; i++) {
        if (p[i].py_ok) {
            prim_figure(r[i]->limit, sizeof(r[i]->limit), &p[i], p[i].py_s);
            snprintf(r[i]->limit + strlen(r[i]->limit), sizeof(r[i]->limit) - strlen(r[i]->limit),
                     " (asyncio)");
        } else {
            snprintf(r[i]->limit, sizeof(r[i]->limit), "asyncio: n/a");
        }
        if (!p[i].ok[0]) {
            fail_row(r[i], daemon_err[i]);
            continue;
        }
        char again[32] = "failed";
        if (p[i].ok[1])
            prim_figure(again, sizeof(again), &p[i], p[i].s[1]);
        prim_figure(r[i]->ours, sizeof(r[i]->ours), &p[i], p[i].s[0]);
        snprintf(r[i]->ours + strlen(r[i]->ours), sizeof(r[i]->ours) - strlen(r[i]->ours),
                 " (again %s)", again);
        if (p[i].py_ok) {
            double ratio = p[i].py_s / p[i].s[0];
            snprintf(r[i]->ratio, sizeof(r[i]->ratio), "%.1fx", ratio);
            r[i]->met = yes(ratio >= 10);
        }
        char pf[64] = "n/a";
        if (p[i].faults[0] != UINT64_MAX)
            snprintf(pf, sizeof(pf), "%llu (%.4f per item)", (unsigned long long)p[i].faults[0],
                     (double)p[i].faults[0] / (double)p[i].count);
        if (p[i].ok[1] && p[i].py_ok)
            add_note("%s: again in the same daemon %.1fx asyncio; the daemon's page faults in the "
                     "first run: %s",
                     p[i].name, p[i].py_s / p[i].s[1], pf);
        else
            add_note("%s: the daemon's page faults in the first run: %s", p[i].name, pf);
    }
    const prim *g = &p[PRIM_GROUP];
    if (g->ok[0] && g->faults[0] != UINT64_MAX) {
        snprintf(r_pf->ours, sizeof(r_pf->ours), "%.3f (%llu)",
                 (double)g->faults[0] / (double)g->count, (unsigned long long)g->faults[0]);
        if (g->ok[1] && g->faults[1] != UINT64_MAX)
            snprintf(r_pf->limit, sizeof(r_pf->limit), "again: %.3f (%llu)",
                     (double)g->faults[1] / (double)g->count, (unsigned long long)g->faults[1]);
    } else {
        snprintf(r_pf->ours, sizeof(r_pf->ours), "n/a");
    }
}

static void sleep_section(uint64_t n) {
    char err[300], nbuf[32], name[128];
    fmt_int(nbuf, sizeof(nbuf), n);
    snprintf(name, sizeof(name), "%s sleeping %g s: s beyond the sleep", nbuf, opt.sleep_s);
    row *r_time = add_row(name);
    snprintf(r_time->target, sizeof(r_time->target), "<= 2 s");
    snprintf(name, sizeof(name), "%s sleeping %g s: daemon peak RSS", nbuf, opt.sleep_s);
    row *r_rss = add_row(name);
    snprintf(name, sizeof(name), "%s sleeping %g s: bytes per task", nbuf, opt.sleep_s);
    row *r_bpt = add_row(name);
    snprintf(r_bpt->target, sizeof(r_bpt->target), "<= 2048");

    bench_daemon d;
    uint64_t max_tasks = n + n / 2 + 16;
    if (start_daemon(&d, max_tasks, err, sizeof(err)) < 0) {
        fail_row(r_time, err);
        snprintf(r_rss->ours, sizeof(r_rss->ours), "failed");
        snprintf(r_bpt->ours, sizeof(r_bpt->ours), "failed");
        return;
    }
    sleep_s(0.2);
    uint64_t base = proc_rss(d.pid);
    proc_reset_hwm(d.pid);
    size_t nreq = (size_t)((n + opt.batch - 1) / opt.batch);
    bench_req *reqs = calloc(nreq, sizeof(*reqs));
    for (size_t i = 0; i < nreq; i++) {
        uint64_t k = i + 1 < nreq ? opt.batch : n - (uint64_t)opt.batch * i;
        if (breq_gather(&reqs[i], "bench.sleep1", (size_t)k, true, opt.sleep_s, false, 0) < 0) {
            fprintf(stderr, "aiod-bench: out of memory\n");
            exit(1);
        }
    }
    bench_log("aiod: %llu tasks sleeping %g s, %zu gather requests", (unsigned long long)n,
              opt.sleep_s, nreq);
    rss_sampler *s = rss_sampler_start(d.pid);
    bench_result res;
    bench_batch(d.socket, reqs, nreq, &res);
    uint64_t peak = rss_sampler_stop(s);
    uint64_t hwm = proc_hwm(d.pid);
    if (hwm > peak)
        peak = hwm;
    for (size_t i = 0; i < nreq; i++)
        breq_free(&reqs[i]);
    free(reqs);

    fmt_bytes(r_rss->ours, sizeof(r_rss->ours), peak);
    fmt_bytes(r_rss->limit, sizeof(r_rss->limit), base);
    snprintf(r_rss->limit + strlen(r_rss->limit), sizeof(r_rss->limit) - strlen(r_rss->limit),
             " at start");
    uint64_t grown = peak > base ? peak - base : 0;
    if (res.ok) {
        double beyond = (double)res.elapsed_ns / 1e9 - opt.sleep_s;
        snprintf(r_time->ours, sizeof(r_time->ours), "%.3f", beyond);
        r_time->met = yes(beyond <= 2.0);
        snprintf(r_bpt->ours, sizeof(r_bpt->ours), "%llu", (unsigned long long)(grown / n));
        r_bpt->met = yes(grown / n <= 2048);
    } else {
        char reason[400];
        snprintf(reason, sizeof(reason), "%llu of %llu tasks done after %.3f s; first error: %s",
                 (unsigned long long)res.count, (unsigned long long)n, (double)res.elapsed_ns / 1e9,
                 res.reason);
        daemon_explain(&d, reason, sizeof(reason));
        fail_row(r_time, reason);
        snprintf(r_bpt->ours, sizeof(r_bpt->ours), "failed (note %zu)", n_notes);
        r_bpt->met = "no";
    }
    daemon_stop(&d);
}

static void switch_section(void) {
    switch_result sw;
    bench_log("coroutine switches: %llu ping-pongs", (unsigned long long)opt.switch_n);
    bench_switch(opt.switch_n, &sw);
    row *r = add_row("coroutine switch (ns)");
    snprintf(r->target, sizeof(r->target), "no system call");
    if (!sw.ok) {
        fail_row(r, sw.reason);
        return;
    }
    snprintf(r->ours, sizeof(r->ours), "%.1f", sw.ns_per_switch);
    snprintf(r->limit, sizeof(r->limit), "%.1f (getppid syscall)", sw.ns_per_syscall);
    snprintf(r->ratio, sizeof(r->ratio), "%.2fx", sw.ns_per_switch / sw.ns_per_syscall);
    r = add_row("system calls during switches");
    if (sw.syscalls >= 0) {
        snprintf(r->ours, sizeof(r->ours), "%ld (ptrace)", sw.syscalls);
        r->met = yes(sw.syscalls == 0);
    } else {
        snprintf(r->ours, sizeof(r->ours), "n/a");
        add_note("system calls during switches: not counted: %s", sw.reason);
    }
    snprintf(r->limit, sizeof(r->limit), "%llu switches, %ld vol. ctx sw.",
             (unsigned long long)(sw.switches < 4000000 ? sw.switches : 4000000), sw.nvcsw);
    snprintf(r->target, sizeof(r->target), "0");
}

/* Drives a peer server with the same clients; "name value" lines. */
static int connect_mode(void) {
    bench_req req = {0};
    measured m = {0};
    if (breq_gather(&req, "bench.noop", 1, false, 0, false, 0) < 0)
        return 1;
    run_clients(opt.connect, false, &req, &m, NULL, NULL);
    breq_free(&req);
    int rc = 0;
    if (section("latency")) {
        if (m.lat.ok)
            printf("latency_p50_us %.1f\nlatency_p99_us %.1f\n", (double)m.lat.p50_ns / 1e3,
                   (double)m.lat.p99_ns / 1e3);
        else
            printf("latency failed: %s\n", m.lat.reason), rc = 1;
    }
    if (section("throughput")) {
        for (int i = 0; i < 2; i++) {
            const bench_result *r = &m.tp[i];
            if (r->ok && r->elapsed_ns)
                printf("throughput_%u %.0f\n", client_counts[i],
                       (double)r->count * 1e9 / (double)r->elapsed_ns);
            else
                printf("throughput_%u failed: %s\n", client_counts[i], r->reason), rc = 1;
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- main */

static void print_machine(void) {
    struct utsname u;
    uname(&u);
    char model[128] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    p += 1 + strspn(p + 1, " \t");
                    p[strcspn(p, "\n")] = 0;
                    snprintf(model, sizeof(model), "%s", p);
                }
                break;
            }
        }
        fclose(f);
    }
    printf("aiod-bench: %ld CPUs (%s), %s %s%s\n", sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname,
           u.release, opt.quick ? ", --quick" : "");
}

int main(int argc, char **argv) {
    /* Debian's Python, the peer the issue names, rather than one on PATH. */
    if (access("/usr/bin/python3", X_OK) == 0)
        opt.python = "/usr/bin/python3";
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (opt.connect)
        return connect_mode();
    print_machine();
    if (section("idle") || section("latency") || section("throughput"))
        rpc_section();
    if (section("spawn"))
        spawn_section();
    if (section("prims"))
        prims_section();
    if (section("sleep"))
        for (size_t i = 0; i < opt.n_sleepers; i++)
            sleep_section(opt.sleepers[i]);
    if (section("switch"))
        switch_section();
    if (section("durable")) {
        durable_cfg dc = {
            .aiod = opt.aiod,
            .plugins = opt.plugins,
            .dir = opt.durable_dir,
            .n = opt.durable_n,
            .depth = opt.depth,
            .latency_n = opt.durable_latency_n,
            .store_n = opt.durable_store,
            .aiod_args = opt.aiod_args,
            .n_aiod_args = opt.n_aiod_args,
        };
        durable_section(&dc);
    }
    print_table();
    durable_print_targets();
    return any_failed ? 1 : 0;
}

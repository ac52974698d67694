/*
 * aiod-cluster-bench: options, orchestration and the report. One Redis for
 * the whole run; first the limit (a bare hiredis loop on that Redis), then
 * for 1, 2 and 3 hosts the throughput of no-op queued tasks, the latency of
 * a queued task against a local one on one host, and the scaling of
 * sleeping tasks bounded by each host's cluster_capacity from 1 to 3 hosts.
 * Between configurations the hosts are stopped and Redis emptied. Every
 * figure is printed as a row "figure | ours | limit / reference | ratio |
 * target | met" (Markdown, as docs/benchmarks.md keeps them). A workload
 * that fails is reported as "failed: reason" and the others still run.
 * Exit status: 0 when every workload ran (targets met or not), 1 when one
 * failed, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cluster.h"

/* bench.cmake defines where the build put aiod, bench.so and demo.so. */
#if !defined(AIOD_BENCH_AIOD) || !defined(AIOD_BENCH_PLUGINS) || !defined(AIOD_DAEMON_PLUGINS)
#error "build aiod-cluster-bench with tests/bench/bench.cmake"
#endif

/* ---------------------------------------------------------------- options */

static struct {
    const char *aiod, *bench_plugins, *plugins, *redis_server, *only, *tmp;
    /* Entries of each bare loop; no-op tasks per host configuration. */
    uint64_t limit_n, noop_n;
    unsigned batch, depth, noop_capacity;
    uint64_t latency_n;
    /* Sleeping tasks per configuration, how long each sleeps, and each
     * host's cluster_capacity for them. */
    uint64_t sleep_n;
    double sleep_s;
    unsigned sleep_capacity;
} opt = {
    .aiod = AIOD_BENCH_AIOD,
    .bench_plugins = AIOD_BENCH_PLUGINS,
    .plugins = AIOD_DAEMON_PLUGINS,
    .redis_server = "redis-server",
    .limit_n = 200000,
    .noop_n = 50000,
    .batch = 256,
    .depth = 256,
    .noop_capacity = 64,
    .latency_n = 2000,
    .sleep_n = 3000,
    .sleep_s = 0.05,
    .sleep_capacity = 20,
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: aiod-cluster-bench [OPTION]...\n"
            "Benchmark aiod hosts sharing a queue through one Redis (started here, on\n"
            "loopback) against a bare hiredis client of the same Redis, and print\n"
            "ours / limit / ratio / target for every figure.\n\n"
            "      --quick              a tiny configuration (smoke test)\n"
            "      --only LIST          sections: limit,throughput,latency,scaling\n"
            "                           (throughput needs limit for its ratio)\n"
            "      --aiod PATH          the daemon (default %s)\n"
            "      --bench-plugins DIR  where bench.so is (default %s)\n"
            "      --plugins DIR        where demo.so is (default %s)\n"
            "      --redis-server PATH  (default redis-server)\n"
            "      --limit-n N          entries through the bare loop (default 200000)\n"
            "      --batch N            its pipelined batch (default 256)\n"
            "      --noop-n N           no-op tasks per host count (default 50000)\n"
            "      --depth N            submits in flight per host (default 256)\n"
            "      --noop-capacity N    cluster_capacity for no-op tasks (default 64)\n"
            "      --latency-n N        round trips each, local and queued (default 2000)\n"
            "      --sleep-n N          sleeping tasks per host count (default 3000)\n"
            "      --sleep-seconds S    how long each sleeps (default 0.05)\n"
            "      --sleep-capacity N   cluster_capacity for them (default 20)\n"
            "  -q, --quiet              no progress lines on stderr\n"
            "  -h, --help               this help\n",
            AIOD_BENCH_AIOD, AIOD_BENCH_PLUGINS, AIOD_DAEMON_PLUGINS);
}

/* A positive count, with an optional k (1e3) or M (1e6) suffix. */
static uint64_t count_arg(const char *s, const char *what) {
    unsigned long long v = 0;
    char suffix = 0, extra = 0;
    int got = *s >= '0' && *s <= '9' ? sscanf(s, "%llu%c%c", &v, &suffix, &extra) : 0;
    uint64_t scale = suffix == 'k' ? 1000u : suffix == 'M' ? 1000000u : 0u;
    if (got == 1)
        scale = 1;
    if (got < 1 || got > 2 || scale == 0 || v == 0 || v > UINT32_MAX) {
        fprintf(stderr, "aiod-cluster-bench: bad --%s: %s\n", what, s);
        exit(2);
    }
    return (uint64_t)v * scale;
}

static bool wanted(const char *name) {
    if (!opt.only)
        return true;
    size_t n = strlen(name);
    for (const char *p = opt.only; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* The options that take a value, as data: each writes one field of opt. */
enum arg_kind { ARG_PATH, ARG_COUNT, ARG_UINT, ARG_SECONDS };
static const struct {
    const char *name;
    enum arg_kind kind;
    void *dst;
} valued[] = {
    {"only", ARG_PATH, &opt.only},
    {"aiod", ARG_PATH, &opt.aiod},
    {"bench-plugins", ARG_PATH, &opt.bench_plugins},
    {"plugins", ARG_PATH, &opt.plugins},
    {"redis-server", ARG_PATH, &opt.redis_server},
    {"limit-n", ARG_COUNT, &opt.limit_n},
    {"batch", ARG_UINT, &opt.batch},
    {"noop-n", ARG_COUNT, &opt.noop_n},
    {"depth", ARG_UINT, &opt.depth},
    {"noop-capacity", ARG_UINT, &opt.noop_capacity},
    {"latency-n", ARG_COUNT, &opt.latency_n},
    {"sleep-n", ARG_COUNT, &opt.sleep_n},
    {"sleep-seconds", ARG_SECONDS, &opt.sleep_s},
    {"sleep-capacity", ARG_UINT, &opt.sleep_capacity},
};
#define N_VALUED (sizeof(valued) / sizeof(valued[0]))

static void set_valued(size_t i, const char *arg) {
    switch (valued[i].kind) {
    case ARG_PATH:
        *(const char **)valued[i].dst = arg;
        break;
    case ARG_COUNT:
        *(uint64_t *)valued[i].dst = count_arg(arg, valued[i].name);
        break;
    case ARG_UINT:
        *(unsigned *)valued[i].dst = (unsigned)count_arg(arg, valued[i].name);
        break;
    case ARG_SECONDS: {
        char *end;
        double v = strtod(arg, &end);
        if (*end || !(v > 0 && v <= 60)) {
            fprintf(stderr, "aiod-cluster-bench: bad --%s: %s\n", valued[i].name, arg);
            exit(2);
        }
        *(double *)valued[i].dst = v;
        break;
    }
    }
}

static void parse_args(int argc, char **argv) {
    /* getopt_long returns the index into `valued` for those, these after. */
    enum { O_QUICK = N_VALUED, O_COUNT };
    struct option longopts[O_COUNT + 3];
    for (size_t i = 0; i < N_VALUED; i++)
        longopts[i] = (struct option){valued[i].name, required_argument, NULL, (int)i};
    longopts[O_QUICK] = (struct option){"quick", no_argument, NULL, O_QUICK};
    longopts[O_COUNT] = (struct option){"quiet", no_argument, NULL, 'q'};
    longopts[O_COUNT + 1] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[O_COUNT + 2] = (struct option){NULL, 0, NULL, 0};
    int c;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if (c >= 0 && (size_t)c < N_VALUED) {
            set_valued((size_t)c, optarg);
        } else if (c == O_QUICK) {
            opt.limit_n = 5000;
            opt.noop_n = 1000;
            opt.latency_n = 100;
            opt.sleep_n = 200;
        } else if (c == 'q') {
            bench_verbose = false;
        } else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || opt.batch > 10000) {
        usage(stderr);
        exit(2);
    }
}

/* ---------------------------------------------------------------- the report */

/* Rows are printed as they are measured (stdout, Markdown); notes after. */
static bool failed_any;
static char report_notes[32][1000];
static unsigned n_report_notes;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    if (n_report_notes == sizeof(report_notes) / sizeof(report_notes[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report_notes[n_report_notes++], sizeof(report_notes[0]), fmt, ap);
    va_end(ap);
}

/* One row. `target_ratio` > 0: met when ratio >= it (ratio = ours / ref,
 * or ref / ours when lower_better); 0: no target. ref 0: no reference. */
static void report(const char *figure, const char *unit, double ours, double ref,
                   const char *ref_name, double target_ratio, bool lower_better) {
    char o[48], l[64] = "-", q[24] = "-", t[24] = "-";
    const char *met = "-";
    snprintf(o, sizeof(o), unit[0] == '%' ? "%.1f" : ours >= 100 ? "%.0f" : "%.2f", ours);
    if (ref > 0) {
        snprintf(l, sizeof(l), ref >= 100 ? "%s%.0f" : "%s%.2f", ref_name, ref);
        double ratio = lower_better ? (ours > 0 ? ref / ours : 0) : ours / ref;
        snprintf(q, sizeof(q), "%.2f", ratio);
        if (target_ratio > 0) {
            snprintf(t, sizeof(t), ">= %.2f", target_ratio);
            met = ratio >= target_ratio ? "yes" : "no";
        }
    }
    printf("| %s (%s) | %s | %s | %s | %s | %s |\n", figure, unit, o, l, q, t, met);
    fflush(stdout);
}

static void report_failed(const char *figure, const char *reason) {
    printf("| %s | failed (note %u) | - | - | - | no |\n", figure, n_report_notes + 1);
    fflush(stdout);
    note("%s: failed: %s", figure, reason);
    failed_any = true;
}

static double per_s(uint64_t n, uint64_t ns) {
    return ns ? (double)n * 1e9 / (double)ns : 0;
}

/* ---------------------------------------------------------------- sections */

/* Where a flow's time went, for the notes. */
static void flow_note(const char *figure, const cb_flow *f) {
    double s = (double)f->elapsed_ns / 1e9;
    note("%s: %llu tasks in %.2f s, their submits acknowledged after %.2f s (%.0f/s); CPU "
         "busy: Redis %.0f %%, the hosts together %.0f %%; Redis per task: %s",
         figure, (unsigned long long)f->n, s, (double)f->submit_ns / 1e9, per_s(f->n, f->submit_ns),
         100 * f->redis_cpu_s / s, 100 * f->hosts_cpu_s / s, f->redis_stats);
}

static double limit_section(const cb_redis *r, size_t entry) {
    double best = 0;
    unsigned best_c = 0;
    for (unsigned clients = 1; clients <= CB_MAX_HOSTS; clients++) {
        cb_limit l;
        bench_log("limit: %llu entries of %zu bytes, %u producer(s) and %u consumer(s), "
                  "batches of %u",
                  (unsigned long long)opt.limit_n, entry, clients, clients, opt.batch);
        cb_limit_run(r, opt.limit_n, clients, opt.batch, entry, &l);
        char figure[96];
        snprintf(figure, sizeof(figure), "bare XADD/XREADGROUP/XACK, %u+%u connections", clients,
                 clients);
        if (!l.ok) {
            report_failed(figure, l.reason);
            continue;
        }
        double v = per_s(l.n, l.elapsed_ns);
        report(figure, "entries/s", v, 0, "", 0, false);
        if (v > best)
            best = v, best_c = clients;
    }
    if (best > 0)
        note("limit: the best bare loop, %u producer(s) and as many consumers: %.0f entries/s "
             "(entries of %zu bytes, "
             "the size of a packed QueuedTask of bench.noop)",
             best_c, best, entry);
    return best;
}

static void throughput_section(const cb_host_cfg *cfg, const cb_redis *r, double limit) {
    for (unsigned n = 1; n <= CB_MAX_HOSTS; n++) {
        char figure[96], err[300];
        snprintf(figure, sizeof(figure), "queued no-op tasks, %u host(s)", n);
        cb_hosts h;
        if (cb_redis_do(r, "FLUSHALL", NULL, err, sizeof(err)) < 0 ||
            cb_hosts_start(&h, cfg, r, n, "bench.noop", err, sizeof(err)) < 0) {
            report_failed(figure, err);
            continue;
        }
        bench_log("throughput: %llu bench.noop through %u host(s), %u in flight each",
                  (unsigned long long)opt.noop_n, n, opt.depth);
        cb_flow f;
        cb_flow_run(&h, r, "bench.noop", false, 0, opt.noop_n, opt.depth, 120, &f);
        cb_hosts_stop(&h);
        if (!f.ok) {
            report_failed(figure, f.reason);
            continue;
        }
        report(figure, "tasks/s", per_s(f.n, f.elapsed_ns), limit, "bare loop ", 0.5, false);
        flow_note(figure, &f);
    }
}

static void latency_section(const cb_host_cfg *cfg, const cb_redis *r) {
    char err[300];
    cb_hosts h;
    if (cb_redis_do(r, "FLUSHALL", NULL, err, sizeof(err)) < 0 ||
        cb_hosts_start(&h, cfg, r, 1, "bench.noop", err, sizeof(err)) < 0) {
        report_failed("queued submit+await", err);
        return;
    }
    bench_log("latency: %llu submit+await round trips each, local and queued, on one host",
              (unsigned long long)opt.latency_n);
    cb_latency l;
    cb_latency_run(&h, "bench.noop", opt.latency_n, &l);
    cb_hosts_stop(&h);
    if (!l.ok) {
        report_failed("queued submit+await", l.reason);
        return;
    }
    static const char *const name[2] = {"p50", "p99"};
    for (int i = 0; i < 2; i++) {
        char figure[64];
        snprintf(figure, sizeof(figure), "queued submit+await %s", name[i]);
        report(figure, "us", (double)l.queued[i] / 1e3, (double)l.local[i] / 1e3, "local ", 0,
               false);
    }
    char figure[64];
    snprintf(figure, sizeof(figure), "awaits that missed the end, of %llu queued",
             (unsigned long long)l.n);
    printf("| %s | %llu (local: %llu) | - | - | 0 | %s |\n", figure,
           (unsigned long long)l.missed[1], (unsigned long long)l.missed[0],
           l.missed[0] + l.missed[1] ? "no" : "yes");
    note("latency: %llu round trips each; overhead of a queued task over a local one: "
         "p50 +%.1f us, p99 +%.1f us",
         (unsigned long long)l.n, ((double)l.queued[0] - (double)l.local[0]) / 1e3,
         ((double)l.queued[1] - (double)l.local[1]) / 1e3);
}

static void scaling_section(const cb_host_cfg *noop_cfg, const cb_redis *r) {
    cb_host_cfg cfg = *noop_cfg;
    cfg.capacity = opt.sleep_capacity;
    double one = 0;
    /* What capacity allows one host: capacity tasks every sleep. */
    double bound = (double)opt.sleep_capacity / opt.sleep_s;
    for (unsigned n = 1; n <= CB_MAX_HOSTS; n += CB_MAX_HOSTS - 1) {
        char figure[128], err[300];
        snprintf(figure, sizeof(figure), "demo.sleep(%g) tasks, capacity %u, %u host(s)",
                 opt.sleep_s, opt.sleep_capacity, n);
        cb_hosts h;
        if (cb_redis_do(r, "FLUSHALL", NULL, err, sizeof(err)) < 0 ||
            cb_hosts_start(&h, &cfg, r, n, "demo.sleep", err, sizeof(err)) < 0) {
            report_failed(figure, err);
            continue;
        }
        bench_log("scaling: %llu demo.sleep(%g) through %u host(s)",
                  (unsigned long long)opt.sleep_n, opt.sleep_s, n);
        cb_flow f;
        double timeout = (double)opt.sleep_n / bound * 3 + 30;
        cb_flow_run(&h, r, "demo.sleep", true, opt.sleep_s, opt.sleep_n, opt.depth, timeout, &f);
        cb_hosts_stop(&h);
        if (!f.ok) {
            report_failed(figure, f.reason);
            continue;
        }
        double v = per_s(f.n, f.elapsed_ns);
        if (n == 1) {
            one = v;
            report(figure, "tasks/s", v, bound, "capacity bound ", 0, false);
        } else if (one > 0) {
            report(figure, "tasks/s", v, one, "1 host ", 2.5, false);
        } else {
            report(figure, "tasks/s", v, 0, "", 0, false);
        }
        flow_note(figure, &f);
    }
}

static void print_header(const cb_redis *r) {
    struct utsname u;
    uname(&u);
    printf("aiod-cluster-bench: %s %s, %ld CPUs, redis-server %s on 127.0.0.1 (appendonly yes, "
           "appendfsync everysec, no RDB), hosts with durability os\n\n",
           u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN), cb_redis_version(r));
    printf("| figure | ours | limit / reference | ratio | target | met |\n");
    printf("|---|---|---|---|---|---|\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/aiod-cluster-bench.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "aiod-cluster-bench: mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    cb_redis r;
    char err[300];
    if (cb_redis_start(&r, opt.redis_server, dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "aiod-cluster-bench: %s\n", err);
        rmdir(dir);
        return 1;
    }
    bench_log("redis-server pid %d on 127.0.0.1:%d", (int)r.proc.pid, r.port);
    print_header(&r);

    cb_host_cfg cfg = {opt.aiod, opt.bench_plugins, opt.plugins, dir, opt.noop_capacity};
    double limit = 0;
    if (wanted("limit"))
        limit = limit_section(&r, cb_queued_task_size("bench.noop"));
    if (wanted("throughput"))
        throughput_section(&cfg, &r, limit);
    if (wanted("latency"))
        latency_section(&cfg, &r);
    if (wanted("scaling"))
        scaling_section(&cfg, &r);

    for (unsigned i = 0; i < n_report_notes; i++)
        printf("%s%u. %s\n", i ? "" : "\n", i + 1, report_notes[i]);
    fflush(stdout);
    cb_redis_stop(&r);
    for (unsigned i = 1; i <= CB_MAX_HOSTS; i++) {
        char conf[300];
        snprintf(conf, sizeof(conf), "%s/h%u.conf", dir, i);
        unlink(conf);
    }
    rmdir(dir);
    return failed_any ? 1 : 0;
}

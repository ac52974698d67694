/*
 * aiod-bench: the durability section (issue 14). One aiod per durability
 * setting (none, os, fsync), each on a fresh state directory under
 * cfg->dir, which must be a real file system (not tmpfs): pipelined
 * SUBMITTED tasks of bench.noop with 1 and 4 clients, timing the Submitted
 * replies (sent only once the task's record is committed). The physical
 * limit is measured in the same run and the same directory: a 4 KiB pwrite
 * and fdatasync in a loop (syncs per second, and one sync's latency). Then
 * the latency of one durable submit at a time (fsync) in blocks alternating
 * with blocks of fdatasync, and the restart time of an aiod whose store
 * holds cfg->store_n finished tasks.
 *
 * Between runs the daemon is let finish every task it was given (ListTasks
 * of pending and running tasks until none), so each run starts on an idle
 * daemon; the tasks' own commits (RUNNING, DONE, pruning) overlap the
 * submits as they would in use.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "aiod-pb.h"
#include "bench.h"

#define PROBE_FILE_BYTES (1024u * 1024u)
#define PROBE_WRITE 4096u
#define PROBE_SECONDS 1.0
#define DRAIN_TIMEOUT_S 600.0
#define LAT_BLOCKS 10
#define TMPFS_MAGIC_ 0x01021994

/* The targets. */
#define TARGET_OS_RATIO 0.5
#define TARGET_FSYNC_4 100000.0
#define TARGET_LAT_RATIO 2.0
#define TARGET_RESTART_S 3.0

static const unsigned clients[2] = {1, 4};
static const char *const settings[3] = {"none", "os", "fsync"};

/* ---------------------------------------------------------------- the probe */

typedef struct probe {
    int fd;
    uint8_t buf[PROBE_WRITE];
    off_t off;
    char path[400];
} probe;

/* A 1 MiB file written and synced once; each probe overwrites the next
 * 4 KiB of it, as SQLite's log is overwritten from its start after a
 * checkpoint (the file's size does not change, so fdatasync need not
 * write the inode). */
static int probe_open(probe *p, const char *dir, char *err, size_t len) {
    memset(p, 0, sizeof(*p));
    snprintf(p->path, sizeof(p->path), "%s/fdatasync.probe", dir);
    p->fd = open(p->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (p->fd < 0) {
        bench_note(err, len, "%s: %s", p->path, strerror(errno));
        return -1;
    }
    memset(p->buf, 0xa5, sizeof(p->buf));
    for (off_t o = 0; o < PROBE_FILE_BYTES; o += PROBE_WRITE)
        if (pwrite(p->fd, p->buf, PROBE_WRITE, o) != PROBE_WRITE) {
            bench_note(err, len, "%s: write: %s", p->path, strerror(errno));
            return -1;
        }
    if (fsync(p->fd) < 0) {
        bench_note(err, len, "%s: fsync: %s", p->path, strerror(errno));
        return -1;
    }
    return 0;
}

static void probe_close(probe *p) {
    if (p->fd >= 0)
        close(p->fd);
    if (*p->path)
        unlink(p->path);
    p->fd = -1;
}

/* One small write and its fdatasync; the time taken, or 0 on error. */
static uint64_t probe_once(probe *p) {
    uint64_t t0 = bench_now_ns();
    p->buf[0]++;
    if (pwrite(p->fd, p->buf, PROBE_WRITE, p->off) != PROBE_WRITE || fdatasync(p->fd) < 0)
        return 0;
    p->off = (p->off + PROBE_WRITE) % PROBE_FILE_BYTES;
    uint64_t t = bench_now_ns() - t0;
    return t ? t : 1;
}

/* Syncs per second over `seconds`; 0 on error. What the daemons before
 * left unwritten is written first (syncfs), so that the probe's flushes
 * carry only its own writes. */
static double probe_rate(probe *p, double seconds) {
    syncfs(p->fd);
    uint64_t start = bench_now_ns(), end = start + (uint64_t)(seconds * 1e9), n = 0, now;
    do {
        if (!probe_once(p))
            return 0;
        n++;
    } while ((now = bench_now_ns()) < end);
    return (double)n * 1e9 / (double)(now - start);
}

/* ---------------------------------------------------------------- helpers */

/* Waits until the daemon has no pending or running task. */
static int drain(const char *socket, double *seconds, char *err, size_t len) {
    uint64_t t0 = bench_now_ns();
    bench_conn *c = bconn_open(socket, true, err, len);
    if (!c)
        return -1;
    int r;
    for (;;) {
        size_t n = 0;
        if ((r = bconn_list(c, true, 1, &n)) < 0) {
            bench_note(err, len, "ListTasks: %s", strerror(-r));
            break;
        }
        if (n == 0)
            break;
        if ((double)(bench_now_ns() - t0) / 1e9 > DRAIN_TIMEOUT_S) {
            bench_note(err, len, "tasks still unfinished after %.0f s", DRAIN_TIMEOUT_S);
            r = -1;
            break;
        }
        sleep_s(0.01);
    }
    bconn_close(c);
    *seconds = (double)(bench_now_ns() - t0) / 1e9;
    return r < 0 ? -1 : 0;
}

/* "state store: N commits wrote M records (X per commit, at most K)" */
typedef struct store_stats {
    bool ok;
    unsigned long long commits, records, most;
    double per_commit;
} store_stats;

static void read_store_stats(const bench_daemon *d, store_stats *s) {
    char line[512];
    memset(s, 0, sizeof(*s));
    if (!daemon_log_find(d, "state store: ", line, sizeof(line)))
        return;
    const char *p = strstr(line, "state store: ");
    s->ok = sscanf(p, "state store: %llu commits wrote %llu records (%lf per commit, at most %llu)",
                   &s->commits, &s->records, &s->per_commit, &s->most) == 4;
}

/* Starts aiod at log level warning, as the other sections do, or with info
 * at info (aiod's default), where the state store logs its figures and
 * every SUBMITTED task's end is logged too (a line per task). */
static int start(bench_daemon *d, const durable_cfg *cfg, const char *base, const char *state_dir,
                 bool info, const char *const *more, char *err, size_t len) {
    const char *extra[40];
    size_t n = 0;
    if (info) {
        extra[n++] = "--log-level";
        extra[n++] = "info";
    }
    for (size_t i = 0; more && more[i] && n < 20; i++)
        extra[n++] = more[i];
    for (size_t i = 0; i < cfg->n_aiod_args && n < 39; i++)
        extra[n++] = cfg->aiod_args[i];
    extra[n] = NULL;
    int r = daemon_start_in(d, base, state_dir, cfg->aiod, cfg->plugins, extra, err, len);
    if (r == 0)
        bench_log("aiod pid %d on %s", (int)d->pid, d->socket);
    return r;
}

static double rate(const bench_result *r) {
    return r->ok && r->elapsed_ns ? (double)r->count * 1e9 / (double)r->elapsed_ns : 0;
}

/* ---------------------------------------------------------------- results */

typedef struct setting_result {
    bool ok[2];
    char reason[2][400];
    double rate[2];
    /* fsync: the probe's syncs/s measured just before each run. */
    double syncs[2];
    double drain_s[2];
    store_stats stats;
} setting_result;

static struct {
    char line[6][300];
    size_t n;
} targets;

static void target(bool measured, bool pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void target(bool measured, bool pass, const char *fmt, ...) {
    if (targets.n == sizeof(targets.line) / sizeof(targets.line[0]))
        return;
    char *l = targets.line[targets.n++];
    int k = snprintf(l, sizeof(targets.line[0]), "%-5s ",
                     !measured ? "n/a"
                     : pass    ? "PASS"
                               : "MISS");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l + k, sizeof(targets.line[0]) - (size_t)k, fmt, ap);
    va_end(ap);
}

void durable_print_targets(void) {
    if (!targets.n)
        return;
    printf("\nissue 14 targets (a miss is reported, not an error):\n");
    for (size_t i = 0; i < targets.n; i++)
        printf("  %s\n", targets.line[i]);
    fflush(stdout);
}

/* ---------------------------------------------------------------- throughput */

/* Throughput with 1 and 4 clients (or only clients[only] when only >= 0);
 * with pr, the probe's syncs/s just before each run. */
static void run_setting(const durable_cfg *cfg, const char *base, const char *how, bool info,
                        int only, probe *pr, setting_result *out) {
    char err[300];
    bench_daemon d;
    const char *more[] = {"--durability", how, NULL};
    memset(out, 0, sizeof(*out));
    if (start(&d, cfg, base, NULL, info, more, err, sizeof(err)) < 0) {
        for (int i = 0; i < 2; i++)
            snprintf(out->reason[i], sizeof(out->reason[i]), "%s", err);
        return;
    }
    bench_req req = {0};
    if (breq_submit(&req, "bench.noop", AIOD__OWNERSHIP__SUBMITTED) < 0) {
        fprintf(stderr, "aiod-bench: out of memory\n");
        exit(1);
    }
    /* Warm-up: the store's file and the daemon's caches. */
    bench_result res;
    double s;
    bench_pipeline(d.socket, true, &req, 1, cfg->depth, cfg->n / 20 + 100, &res);
    bool ok = res.ok && drain(d.socket, &s, res.reason, sizeof(res.reason)) == 0;
    for (int i = 0; i < 2 && ok; i++) {
        if (only >= 0 && i != only)
            continue;
        if (pr) {
            bench_log("fdatasync probe, %.1f s", PROBE_SECONDS);
            out->syncs[i] = probe_rate(pr, PROBE_SECONDS);
        }
        uint64_t per = cfg->n / clients[i] ? cfg->n / clients[i] : 1;
        bench_log("aiod --durability %s: %u client(s) x %" PRIu64 " submits, %u in flight each",
                  how, clients[i], per, cfg->depth);
        bench_pipeline(d.socket, true, &req, clients[i], cfg->depth, per, &res);
        if (res.ok && drain(d.socket, &out->drain_s[i], res.reason, sizeof(res.reason)) < 0)
            res.ok = false;
        if (!res.ok) {
            snprintf(out->reason[i], sizeof(out->reason[i]), "%s", res.reason);
            daemon_explain(&d, out->reason[i], sizeof(out->reason[i]));
            ok = false;
            break;
        }
        out->ok[i] = true;
        out->rate[i] = rate(&res);
        bench_log("  %.0f submits/s; the tasks all ended %.2f s after the last reply", out->rate[i],
                  out->drain_s[i]);
    }
    if (!ok && !*out->reason[0]) {
        snprintf(out->reason[0], sizeof(out->reason[0]), "warm-up: %s", res.reason);
        daemon_explain(&d, out->reason[0], sizeof(out->reason[0]));
    }
    if (!out->ok[1] && !*out->reason[1] && only < 0)
        snprintf(out->reason[1], sizeof(out->reason[1]), "not run: %.380s", out->reason[0]);
    daemon_stop_keep(&d);
    read_store_stats(&d, &out->stats);
    if (out->stats.ok)
        bench_log("aiod --durability %s: %llu commits wrote %llu records (%.1f per commit)", how,
                  out->stats.commits, out->stats.records, out->stats.per_commit);
    daemon_remove_dir(&d);
    breq_free(&req);
}

/* ---------------------------------------------------------------- latency */

typedef struct latency_result {
    bool ok;
    char reason[400];
    uint64_t p50, p99, sync_p50, sync_p99;
    uint64_t n;
    store_stats stats;
} latency_result;

static void run_latency(const durable_cfg *cfg, const char *base, probe *pr, latency_result *out) {
    char err[400];
    bench_daemon d;
    const char *more[] = {"--durability", "fsync", NULL};
    memset(out, 0, sizeof(*out));
    if (start(&d, cfg, base, NULL, true, more, err, sizeof(err)) < 0) {
        snprintf(out->reason, sizeof(out->reason), "%s", err);
        return;
    }
    bench_req req = {0};
    if (breq_submit(&req, "bench.noop", AIOD__OWNERSHIP__SUBMITTED) < 0) {
        fprintf(stderr, "aiod-bench: out of memory\n");
        exit(1);
    }
    uint64_t per = cfg->latency_n / LAT_BLOCKS ? cfg->latency_n / LAT_BLOCKS : 1;
    uint64_t total = per * LAT_BLOCKS;
    uint64_t *so = malloc(total * sizeof(*so)), *sl = malloc(total * sizeof(*sl));
    if (!so || !sl) {
        fprintf(stderr, "aiod-bench: out of memory\n");
        exit(1);
    }
    bench_log("aiod --durability fsync: %" PRIu64 " submits one at a time and %" PRIu64
              " fdatasyncs, in %d alternating blocks",
              total, total, LAT_BLOCKS);
    out->ok = true;
    for (int b = 0; b < LAT_BLOCKS && out->ok; b++) {
        bench_result r;
        bench_latency_samples(d.socket, true, &req, per, per / 10 + 5, &r, so + b * per);
        if (!r.ok) {
            out->ok = false;
            snprintf(out->reason, sizeof(out->reason), "%s", r.reason);
            daemon_explain(&d, out->reason, sizeof(out->reason));
            break;
        }
        for (uint64_t i = 0; i < per; i++)
            if (!(sl[b * per + i] = probe_once(pr))) {
                out->ok = false;
                snprintf(out->reason, sizeof(out->reason), "fdatasync probe: %s", strerror(errno));
                break;
            }
    }
    if (out->ok) {
        out->n = total;
        out->p50 = bench_quantile(so, total, 0.50);
        out->p99 = bench_quantile(so, total, 0.99);
        out->sync_p50 = bench_quantile(sl, total, 0.50);
        out->sync_p99 = bench_quantile(sl, total, 0.99);
    }
    free(so);
    free(sl);
    daemon_stop_keep(&d);
    read_store_stats(&d, &out->stats);
    daemon_remove_dir(&d);
    breq_free(&req);
}

/* ---------------------------------------------------------------- restart */

/* One start of aiod on a stored state directory. */
typedef struct restart_one {
    bool ok;
    /* exec to READY=1, and to the answer of a hello and a ListTasks. */
    double ready_s, answer_s;
    /* The daemon's own "N tasks restored in S s". */
    bool have_restored;
    unsigned long long restored;
    double restored_s;
    double stop_s;
} restart_one;

typedef struct restart_result {
    bool ok;
    char reason[400];
    uint64_t stored;
    double fill_s, fill_rate, stop_s;
    /* With the store's file in the page cache (as the first daemon left
     * it), and after its pages were dropped (POSIX_FADV_DONTNEED). */
    restart_one warm, cold;
} restart_result;

/* Drops the store's pages from the page cache (only this file's). */
static void drop_cache(const char *state) {
    static const char *const names[] = {"tasks.db", "tasks.db-wal"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[400];
        snprintf(p, sizeof(p), "%s/%s", state, names[i]);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static void restart_once(const durable_cfg *cfg, const char *base, const char *state,
                         const char *count, const char *secs, restart_one *out, char *reason,
                         size_t reason_len) {
    char err[300];
    bench_daemon d;
    /* Every stored task is kept: retain_bytes too is lifted, since a million
     * outcomes are some 400 MB in memory. */
    const char *args[] = {
        "--retain-count", count, "--retain-seconds", secs, "--retain-bytes", "64G", NULL};
    memset(out, 0, sizeof(*out));
    uint64_t t0 = bench_now_ns();
    if (start(&d, cfg, base, state, true, args, err, sizeof(err)) < 0) {
        snprintf(reason, reason_len, "restart: %s", err);
        return;
    }
    out->ready_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_conn *c = bconn_open(d.socket, true, err, sizeof(err));
    size_t n = 0;
    int r = c ? bconn_list(c, false, 1, &n) : -1;
    out->answer_s = (double)(bench_now_ns() - t0) / 1e9;
    bconn_close(c);
    if (r < 0 || n != 1) {
        if (c)
            bench_note(err, sizeof(err), "ListTasks after the restart: %s",
                       r < 0 ? strerror(-r) : "no task listed");
        snprintf(reason, reason_len, "restart: %s", err);
        daemon_explain(&d, reason, reason_len);
    } else {
        out->ok = true;
    }
    char line[512];
    if (daemon_log_find(&d, "tasks restored in", line, sizeof(line))) {
        /* "aiod[PID]: info: state store PATH: N tasks restored in S s": the
         * count follows the last ": " before "tasks restored" (the path may
         * hold one). */
        const char *p = strstr(line, ": ");
        const char *q = strstr(line, " tasks restored in");
        while (p && q) {
            const char *nx = strstr(p + 2, ": ");
            if (!nx || nx > q)
                break;
            p = nx;
        }
        out->have_restored =
            p && sscanf(p, ": %llu tasks restored in %lf s", &out->restored, &out->restored_s) == 2;
    }
    t0 = bench_now_ns();
    daemon_stop(&d);
    out->stop_s = (double)(bench_now_ns() - t0) / 1e9;
}

static void run_restart(const durable_cfg *cfg, const char *base, restart_result *out) {
    char err[300], state[320], count[32], secs[] = "100000";
    bench_daemon d;
    memset(out, 0, sizeof(*out));
    snprintf(state, sizeof(state), "%s/store", base);
    if (mkdir(state, 0700) < 0) {
        bench_note(out->reason, sizeof(out->reason), "mkdir %s: %s", state, strerror(errno));
        return;
    }
    uint64_t per = (cfg->store_n + 3) / 4;
    out->stored = per * 4;
    snprintf(count, sizeof(count), "%" PRIu64, out->stored);
    /* The tasks stay in the store: every one of them is retained. */
    const char *fill_args[] = {
        "--durability", "os", "--retain-count", count, "--retain-seconds", secs, "--retain-bytes",
        "64G",          NULL};
    if (start(&d, cfg, base, state, false, fill_args, err, sizeof(err)) < 0) {
        snprintf(out->reason, sizeof(out->reason), "filling the store: %s", err);
        state_dir_remove(state);
        return;
    }
    bench_req req = {0};
    if (breq_submit(&req, "bench.noop", AIOD__OWNERSHIP__SUBMITTED) < 0) {
        fprintf(stderr, "aiod-bench: out of memory\n");
        exit(1);
    }
    bench_log("aiod --durability os: storing %" PRIu64 " tasks (4 clients)", out->stored);
    bench_result res;
    uint64_t t0 = bench_now_ns();
    bench_pipeline(d.socket, true, &req, 4, cfg->depth, per, &res);
    double drained = 0;
    if (res.ok && drain(d.socket, &drained, res.reason, sizeof(res.reason)) < 0)
        res.ok = false;
    breq_free(&req);
    out->fill_s = (double)(bench_now_ns() - t0) / 1e9;
    out->fill_rate = rate(&res);
    if (!res.ok) {
        snprintf(out->reason, sizeof(out->reason), "filling the store: %s", res.reason);
        daemon_explain(&d, out->reason, sizeof(out->reason));
        daemon_stop(&d);
        state_dir_remove(state);
        return;
    }
    t0 = bench_now_ns();
    daemon_stop(&d);
    out->stop_s = (double)(bench_now_ns() - t0) / 1e9;

    /* The restarts: the same store, every task retained again. */
    bench_log("aiod: restart on a store of %" PRIu64 " tasks", out->stored);
    restart_once(cfg, base, state, count, secs, &out->warm, out->reason, sizeof(out->reason));
    if (out->warm.ok) {
        drop_cache(state);
        bench_log("aiod: restart on a store of %" PRIu64 " tasks, not in the page cache",
                  out->stored);
        restart_once(cfg, base, state, count, secs, &out->cold, out->reason, sizeof(out->reason));
    }
    out->ok = out->warm.ok && out->cold.ok;
    state_dir_remove(state);
}

/* ---------------------------------------------------------------- the section */

static void fmt_rate(char *buf, size_t len, double v) {
    fmt_int(buf, len, (uint64_t)(v + 0.5));
}

void durable_section(const durable_cfg *cfg) {
    char base[300], err[300];
    snprintf(base, sizeof(base), "%s/aiod-bench-durable.XXXXXX", cfg->dir);
    if (!mkdtemp(base)) {
        bench_note(err, sizeof(err), "mkdtemp %s: %s", base, strerror(errno));
        fail_row(add_row("durability"), err);
        return;
    }
    struct statfs sf;
    if (statfs(base, &sf) == 0 && (unsigned long)sf.f_type == TMPFS_MAGIC_)
        add_note("durability: %s is on tmpfs: fdatasync does nothing there, so the fsync figures "
                 "are not durable ones (use --durable-dir on a disk)",
                 cfg->dir);
    probe pr;
    bool probe_ok = probe_open(&pr, base, err, sizeof(err)) == 0;

    setting_result set[3], info;
    for (int k = 0; k < 3; k++)
        run_setting(cfg, base, settings[k], false, -1, k == 2 && probe_ok ? &pr : NULL, &set[k]);
    /* fsync, 4 clients, at aiod's default log level: its log gives the
     * state store's own figures, and the cost of the line per task. */
    run_setting(cfg, base, "fsync", true, 1, probe_ok ? &pr : NULL, &info);
    latency_result lat = {0};
    if (probe_ok)
        run_latency(cfg, base, &pr, &lat);
    else
        snprintf(lat.reason, sizeof(lat.reason), "fdatasync probe: %s", err);
    restart_result rs;
    run_restart(cfg, base, &rs);
    probe_close(&pr);
    rmdir(base);

    /* Throughput rows. */
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 2; i++) {
            char name[96];
            snprintf(name, sizeof(name), "submit %u client%s, durability %s (tasks/s)", clients[i],
                     clients[i] > 1 ? "s" : "", settings[k]);
            row *r = add_row(name);
            const setting_result *s = &set[k];
            if (k == 1) {
                snprintf(r->target, sizeof(r->target), ">= 0.5x none");
                if (set[0].ok[i]) {
                    fmt_rate(r->limit, sizeof(r->limit), set[0].rate[i]);
                    snprintf(r->limit + strlen(r->limit), sizeof(r->limit) - strlen(r->limit),
                             " (none)");
                }
            }
            if (k == 2) {
                if (s->syncs[i] > 0)
                    snprintf(r->limit, sizeof(r->limit), "%.0f fdatasync/s", s->syncs[i]);
                else if (!probe_ok)
                    snprintf(r->limit, sizeof(r->limit), "probe failed");
                if (i == 1)
                    snprintf(r->target, sizeof(r->target), ">= 100,000 tasks/s");
            }
            if (!s->ok[i]) {
                fail_row(r, s->reason[i]);
                continue;
            }
            fmt_rate(r->ours, sizeof(r->ours), s->rate[i]);
            if (k == 1 && set[0].ok[i] && set[0].rate[i] > 0) {
                double q = s->rate[i] / set[0].rate[i];
                snprintf(r->ratio, sizeof(r->ratio), "%.2fx", q);
                r->met = yes(q >= TARGET_OS_RATIO);
            }
            if (k == 2) {
                if (s->syncs[i] > 0)
                    snprintf(r->ratio, sizeof(r->ratio), "%.1f tasks/sync",
                             s->rate[i] / s->syncs[i]);
                if (i == 1)
                    r->met = yes(s->rate[i] >= TARGET_FSYNC_4);
            }
        }
    }
    row *r = add_row("submit 4 clients, fsync, --log-level info (tasks/s)");
    if (info.syncs[1] > 0)
        snprintf(r->limit, sizeof(r->limit), "%.0f fdatasync/s", info.syncs[1]);
    if (!info.ok[1]) {
        fail_row(r, info.reason[1]);
    } else {
        fmt_rate(r->ours, sizeof(r->ours), info.rate[1]);
        if (info.syncs[1] > 0)
            snprintf(r->ratio, sizeof(r->ratio), "%.1f tasks/sync", info.rate[1] / info.syncs[1]);
    }
    r = add_row("  its records per commit (aiod's log)");
    const store_stats *st = &info.stats;
    if (st->ok) {
        snprintf(r->ours, sizeof(r->ours), "%.1f (at most %llu)", st->per_commit, st->most);
        snprintf(r->limit, sizeof(r->limit), "%llu commits", st->commits);
        if (info.ok[1])
            add_note("durability fsync at log level info: aiod wrote %llu records in %llu commits "
                     "over the warm-up and the run (a SUBMITTED no-op task writes 2: running, "
                     "with its submit, and done; the pruning of retained outcomes adds deletes); "
                     "the figures "
                     "above are at log level warning, like the other sections, since at info aiod "
                     "logs a line for every SUBMITTED task that ends",
                     st->records, st->commits);
    } else {
        snprintf(r->ours, sizeof(r->ours), "not logged");
    }

    /* Latency rows. */
    const char *lnames[2] = {"durable submit p50, fsync, 1 at a time (us)",
                             "durable submit p99, fsync, 1 at a time (us)"};
    for (int q = 0; q < 2; q++) {
        r = add_row(lnames[q]);
        if (q == 0)
            snprintf(r->target, sizeof(r->target), "<= 2x fdatasync");
        if (!lat.ok) {
            fail_row(r, lat.reason);
            continue;
        }
        uint64_t o = q ? lat.p99 : lat.p50, l = q ? lat.sync_p99 : lat.sync_p50;
        snprintf(r->ours, sizeof(r->ours), "%.1f", (double)o / 1e3);
        snprintf(r->limit, sizeof(r->limit), "%.1f (fdatasync %s)", (double)l / 1e3,
                 q ? "p99" : "p50");
        if (l) {
            snprintf(r->ratio, sizeof(r->ratio), "%.2fx", (double)o / (double)l);
            if (q == 0)
                r->met = yes((double)o <= TARGET_LAT_RATIO * (double)l);
        }
    }
    if (lat.ok && lat.stats.ok) {
        uint64_t per = lat.n / LAT_BLOCKS, tasks = lat.n + LAT_BLOCKS * (per / 10 + 5);
        add_note("durable submit latency (aiod at log level info): %llu commits of %.1f records "
                 "(at most %llu) for the %" PRIu64 " tasks submitted, %.2f commits per task: a "
                 "task's record goes with its submit, its outcome with the next submit's commit",
                 lat.stats.commits, lat.stats.per_commit, lat.stats.most, tasks,
                 (double)lat.stats.commits / (double)tasks);
    }

    /* Restart rows. */
    char nbuf[32], name[96];
    fmt_int(nbuf, sizeof(nbuf), rs.stored);
    for (int k = 0; k < 2; k++) {
        const restart_one *o = k ? &rs.cold : &rs.warm;
        snprintf(name, sizeof(name), "restart with %s stored tasks%s (s)", nbuf,
                 k ? ", cold cache" : "");
        r = add_row(name);
        snprintf(r->target, sizeof(r->target), "<= 3 s");
        if (!o->ok) {
            if (k == 0 || rs.warm.ok)
                fail_row(r, rs.reason);
            else
                snprintf(r->ours, sizeof(r->ours), "not run");
            continue;
        }
        snprintf(r->ours, sizeof(r->ours), "%.3f", o->answer_s);
        if (o->have_restored)
            snprintf(r->limit, sizeof(r->limit), "%.3f restoring (aiod's log)", o->restored_s);
        r->met = yes(o->answer_s <= TARGET_RESTART_S);
        if (!o->have_restored || o->restored != rs.stored)
            add_note("%s: aiod's log %s", r->name,
                     o->have_restored ? "restored a different number of tasks"
                                      : "has no \"tasks restored\" line");
    }
    if (rs.warm.ok)
        add_note("restart: exec to READY=1 %.3f s, to a hello and a ListTasks answered %.3f s "
                 "(cold cache: %.3f and %.3f s); aiod restored %llu of %" PRIu64 " tasks; the "
                 "store was filled at %.0f submits/s (os, 4 clients; %.1f s with the tasks' "
                 "ends); the daemons stopped in %.2f, %.2f and %.2f s",
                 rs.warm.ready_s, rs.warm.answer_s, rs.cold.ready_s, rs.cold.answer_s,
                 rs.warm.restored, rs.stored, rs.fill_rate, rs.fill_s, rs.stop_s, rs.warm.stop_s,
                 rs.cold.stop_s);

    /* The targets, PASS or MISS. */
    for (int i = 0; i < 2; i++) {
        bool m = set[0].ok[i] && set[1].ok[i] && set[0].rate[i] > 0;
        double q = m ? set[1].rate[i] / set[0].rate[i] : 0;
        target(m, q >= TARGET_OS_RATIO,
               "durability os >= 50%% of none, %u client%s: %.0f vs %.0f submits/s (%.0f%%)",
               clients[i], clients[i] > 1 ? "s" : "", set[1].rate[i], set[0].rate[i], q * 100);
    }
    target(set[2].ok[1], set[2].rate[1] >= TARGET_FSYNC_4,
           "durability fsync >= 100,000 submits/s with 4 clients: %.0f (%.0f fdatasync/s, "
           "%.1f tasks per sync)",
           set[2].rate[1], set[2].syncs[1],
           set[2].syncs[1] > 0 ? set[2].rate[1] / set[2].syncs[1] : 0);
    target(lat.ok && lat.sync_p50, (double)lat.p50 <= TARGET_LAT_RATIO * (double)lat.sync_p50,
           "durable submit p50 <= 2x one fdatasync: %.1f us vs %.1f us (%.2fx)",
           (double)lat.p50 / 1e3, (double)lat.sync_p50 / 1e3,
           lat.sync_p50 ? (double)lat.p50 / (double)lat.sync_p50 : 0);
    target(rs.warm.ok, rs.warm.answer_s <= TARGET_RESTART_S,
           "restart with %" PRIu64 " stored tasks <= 3 s: %.3f s from exec to an answer "
           "(aiod: restored in %.3f s); cold cache: %.3f s (%s)",
           rs.stored, rs.warm.answer_s, rs.warm.restored_s, rs.cold.answer_s,
           !rs.cold.ok                            ? "not measured"
           : rs.cold.answer_s <= TARGET_RESTART_S ? "PASS"
                                                  : "MISS");
}

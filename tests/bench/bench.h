/*
 * aiod-bench: declarations shared by the benchmark tool's files. Each file
 * owns one concern: main.c (options, orchestration, the table), client.c
 * (a raw pipelining client speaking the wire protocol), echo.c (the bare echo
 * server, the physical limit), daemon.c (running aiod as a child and reading
 * its RSS and CPU time), switch.c (coroutine switch cost), durable.c (the
 * durability section: submit throughput and latency per durability setting
 * against fdatasync, restart with a large store), util.c (clocks,
 * percentiles, messages).
 */
#ifndef AIOD_BENCH_H
#define AIOD_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- util.c */

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);
/* The q-quantile (0..1) of v[0..n) after sorting v in place. */
uint64_t bench_quantile(uint64_t *v, size_t n, double q);
/* Pins every thread of process `pid` (0: the calling thread only) to CPU
 * `cpu`, or lets them run on every CPU again when cpu < 0. Threads made
 * later inherit their creator's CPUs. 0 or -errno. */
int bench_pin(pid_t pid, int cpu);
/* Formats "failed: ..." reasons: a static-free helper that writes into buf. */
void bench_note(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints a progress line to stderr unless quiet. */
extern bool bench_verbose;
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sleeps s seconds (through EINTR). */
void sleep_s(double s);

/* ---- main.c: the results table. Rows live in a static array of main.c;
 * add_row returns a row whose text fields the caller fills (ours, limit,
 * ratio, target default to "-"); met points to a static string. */

typedef struct row {
    char name[96];
    char ours[48];
    char limit[48];
    char ratio[24];
    char target[48];
    const char *met;
} row;

row *add_row(const char *name);
void add_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Marks the row failed with a note giving the reason; the run then exits 1. */
void fail_row(row *r, const char *reason);
/* 1234567 -> "1,234,567" */
void fmt_int(char *buf, size_t len, uint64_t v);
const char *yes(bool b);

/* ---- client.c: a raw client. One connection, blocking socket, buffered
 * writes, frames decoded with the generated protobuf-c code. */

typedef struct bench_conn bench_conn;

/* Connects to `path`; with `hello` performs the aiod hello. NULL on error,
 * with the reason in err. */
bench_conn *bconn_open(const char *path, bool hello, char *err, size_t err_len);
void bconn_close(bench_conn *c);

/* A request body encoded once (a ClientMessage without request_id); each
 * send prefixes the varint request id, so the per-request cost on the client
 * is a few bytes of encoding. */
typedef struct bench_req {
    uint8_t *body;
    size_t len;
} bench_req;

/* A Gather of `n` calls of `function`, each with one double argument when
 * has_arg (or one int argument when int_arg), return_exceptions set. */
int breq_gather(bench_req *r, const char *function, size_t n, bool has_arg, double darg,
                bool int_arg, int64_t iarg);
/* A Submit of `function` (no arguments) with the given ownership
 * (Aiod__Ownership value); its reply is Submitted. */
int breq_submit(bench_req *r, const char *function, int ownership);
void breq_free(bench_req *r);

/* A ListTasks: with unfinished, only TASK_PENDING and TASK_RUNNING tasks;
 * else every task, finished ones retained included. *ret_n receives how
 * many tasks the reply lists (at most limit). 0, or negative errno (-EPROTO
 * when the reply is not a TaskList). */
int bconn_list(bench_conn *c, bool unfinished, uint32_t limit, size_t *ret_n);

/* What a run measured. A reply counts as done when it is an Outcomes
 * reply's done outcome or a Submitted reply. */
typedef struct bench_result {
    bool ok;
    char reason[256];
    /* Round trips (latency) or requests completed. */
    uint64_t count;
    uint64_t elapsed_ns;
    uint64_t p50_ns, p99_ns;
    /* Bytes of the last reply payload (for the echo server's template). */
    size_t reply_len;
} bench_result;

/*
 * One request in flight at a time, n round trips after `warmup` unmeasured
 * ones. Each reply is decoded; with check, it must be an Outcomes reply with
 * every outcome done. When template_out is not NULL it receives a copy of
 * the last reply payload (malloc'd, *template_len its size).
 */
void bench_latency(const char *path, bool aiod, const bench_req *req, uint64_t n, uint64_t warmup,
                   bench_result *res, uint8_t **template_out, size_t *template_len);
/* The same, appending the n round-trip times to samples (for interleaved
 * runs whose quantiles are taken over all blocks). */
void bench_latency_samples(const char *path, bool aiod, const bench_req *req, uint64_t n,
                           uint64_t warmup, bench_result *res, uint64_t *samples);

/* `clients` connections in threads, each keeping `depth` requests in flight
 * until it has completed n_per_client; res->count is the total completed and
 * res->elapsed_ns the wall time from the first send to the last reply. */
void bench_pipeline(const char *path, bool aiod, const bench_req *req, unsigned clients,
                    unsigned depth, uint64_t n_per_client, bench_result *res);

/* Sends all of reqs[0..nreq) at once on one connection and waits for every
 * reply; counts outcomes done in res->count and reports the first error. */
void bench_batch(const char *path, const bench_req *reqs, size_t nreq, bench_result *res);

/* The same round trip through libaioclient (aioc_run of `function`), for
 * comparison with the raw client. */
void bench_latency_libaioclient(const char *path, const char *function, uint64_t n, uint64_t warmup,
                                bench_result *res);

/* ---- echo.c: the bare echo server. */

/* Forks a child serving `path`: for each frame read it writes back one frame
 * holding `reply` (reply_len bytes). Returns the child's pid or -1. */
pid_t echo_start(const char *path, const uint8_t *reply, size_t reply_len);
void echo_stop(pid_t pid);

/* ---- daemon.c: aiod as a child process. */

typedef struct bench_daemon {
    pid_t pid;
    char dir[256];
    char socket[300];
    char log[300];
} bench_daemon;

/* Starts `aiod_path` on a fresh socket in a temporary directory with
 * plugin_dir and any extra arguments (NULL-terminated), and waits for READY=1.
 * The temporary directory is made in $TMPDIR (default /tmp); the state
 * directory is DIR/state. 0, or -1 with the reason in err. */
int daemon_start(bench_daemon *d, const char *aiod_path, const char *plugin_dir,
                 const char *const *extra, char *err, size_t err_len);
/* The same with the temporary directory made in `base` (NULL: as above)
 * and the state directory `state_dir` (NULL: DIR/state, new). */
int daemon_start_in(bench_daemon *d, const char *base, const char *state_dir, const char *aiod_path,
                    const char *plugin_dir, const char *const *extra, char *err, size_t err_len);
/* SIGTERM, wait, SIGKILL after a grace period; removes the directory. */
void daemon_stop(bench_daemon *d);
/* The same, keeping the directory (and the daemon's log) until
 * daemon_remove_dir. */
void daemon_stop_keep(bench_daemon *d);
void daemon_remove_dir(bench_daemon *d);
/* Removes a state directory aiod made (its known files, then the directory);
 * not when AIOD_BENCH_KEEP is set (nor does daemon_remove_dir). */
void state_dir_remove(const char *dir);
/* Adds to reason whether the daemon died and its last log line. */
void daemon_explain(bench_daemon *d, char *reason, size_t len);
/* Finds the last line of the daemon's log containing `needle` and copies
 * the whole line (without the newline) into buf. true when found. */
bool daemon_log_find(const bench_daemon *d, const char *needle, char *buf, size_t len);
/* Whether the child still runs. */
bool daemon_alive(bench_daemon *d, char *why, size_t why_len);
/* The last line of the daemon's log that looks like an error, or "". */
void daemon_last_log(const bench_daemon *d, char *buf, size_t len);

/* From /proc/PID/status: VmRSS, RssAnon and VmHWM in bytes (0 when unknown). */
uint64_t proc_rss(pid_t pid);
/* RssAnon, the private part of VmRSS: the heap and stacks, without the
 * pages of shared libraries and of the program itself. */
uint64_t proc_rss_anon(pid_t pid);
uint64_t proc_hwm(pid_t pid);
/* Resets VmHWM to the current RSS (/proc/PID/clear_refs "5"). */
void proc_reset_hwm(pid_t pid);
/* utime + stime of the process in clock ticks, from /proc/PID/stat. */
uint64_t proc_cpu_ticks(pid_t pid);

/* Samples a process's VmRSS in a thread every few ms; the peak is kept. */
typedef struct rss_sampler rss_sampler;
rss_sampler *rss_sampler_start(pid_t pid);
uint64_t rss_sampler_stop(rss_sampler *s);

/* ---- durable.c */

typedef struct durable_cfg {
    const char *aiod, *plugins;
    /* Where the state directories and the fdatasync probe go (not tmpfs). */
    const char *dir;
    /* Submits per throughput run (split among the clients), in flight per
     * client, one-at-a-time submits for latency, tasks in the restart store. */
    uint64_t n;
    unsigned depth;
    uint64_t latency_n;
    uint64_t store_n;
    const char *const *aiod_args;
    size_t n_aiod_args;
} durable_cfg;

/* Adds the durability rows to the table. */
void durable_section(const durable_cfg *cfg);
/* Prints the targets with PASS or MISS (after the table). */
void durable_print_targets(void);

/* ---- switch.c */

typedef struct switch_result {
    bool ok;
    char reason[200];
    double ns_per_switch;
    /* System calls counted (ptrace) during the switches; -1 if not measured. */
    long syscalls;
    /* Voluntary and involuntary context switches during the run (getrusage). */
    long nvcsw, nivcsw;
    /* A getppid() for scale. */
    double ns_per_syscall;
    uint64_t switches;
} switch_result;

void bench_switch(uint64_t iterations, switch_result *res);

#endif

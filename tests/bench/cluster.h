/*
 * aiod-cluster-bench: declarations shared by its files. The tool measures
 * aiod hosts sharing queues through one Redis (docs/cluster.md) against what
 * a bare hiredis client gets from the same Redis in the same run. Each file
 * owns one concern: cluster_main.c (options, orchestration, the report),
 * cluster_redis.c (the redis-server child, the bare XADD / XREADGROUP /
 * XACK loop that is the limit, and seeing a workload's tasks end in Redis), cluster_hosts.c (aiod
 * hosts started with cluster settings, and the workloads driven through them). It reuses
 * aiod-bench's daemon.c (children, READY=1), client.c (the raw pipelining
 * client) and util.c (clocks, quantiles) through bench.h.
 */
#ifndef AIOD_CLUSTER_BENCH_H
#define AIOD_CLUSTER_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench.h"

/* The queue every host of the bench works on. */
#define CB_QUEUE "bench"
/* Hosts of the largest configuration. */
#define CB_MAX_HOSTS 3

/* ---- cluster_redis.c */

typedef struct cb_redis {
    /* The child, as daemon.c keeps aiod: its pid, its temporary directory
     * (the append-only file) and log; `socket` is unused. */
    bench_daemon proc;
    int port;
} cb_redis;

/*
 * Starts redis-server on 127.0.0.1 at a free port, with its files in a new
 * directory under `base`: no RDB snapshots, the append-only file on with
 * appendfsync everysec (what a host's acknowledged submit then survives: a
 * crash of Redis loses at most about a second). Waits until it answers PING.
 * 0, or -1 with the reason in err.
 */
int cb_redis_start(cb_redis *r, const char *server, const char *base, char *err, size_t err_len);
/* SIGTERM, wait (SIGKILL after a grace period), remove its directory. */
void cb_redis_stop(cb_redis *r);
/* A command with at most one argument (NULL: none) whose reply is not an
 * error: FLUSHALL (between configurations, with no host connected), CONFIG
 * RESETSTAT (command counts from zero). 0, or -1 with the reason in err. */
int cb_redis_do(const cb_redis *r, const char *cmd, const char *arg, char *err, size_t err_len);
/* The integer reply of a command without arguments other than `key`
 * (e.g. "ZCARD"), or -1 with the reason in err. */
long long cb_redis_int(const cb_redis *r, const char *cmd, const char *key, char *err,
                       size_t err_len);
/* The redis-server version ("7.0.15"), or "?" (static storage). */
const char *cb_redis_version(const cb_redis *r);

/* The commands Redis spent most time in since the reset, as "name calls
 * (us)" per each of n tasks, most time first, into buf. 0, or -1 with the
 * reason in buf. */
int cb_redis_stats_text(const cb_redis *r, uint64_t n, char *buf, size_t len);

/* What the bare loop measured: n entries added, read and acknowledged. */
typedef struct cb_limit {
    bool ok;
    char reason[256];
    unsigned clients;
    uint64_t n;
    uint64_t elapsed_ns;
} cb_limit;

/*
 * The bare loop, as `clients` hosts would use Redis if they did nothing
 * else: `clients` producers pipelining XADD of `payload_len`-byte entries in
 * batches of `batch` (up to two batches in flight), n between them, and
 * `clients` consumers of one consumer group, each pipelining its XACK of a
 * batch with its next XREADGROUP COUNT `batch`; each on its own connection
 * and thread, until n entries are acknowledged.
 */
void cb_limit_run(const cb_redis *r, uint64_t n, unsigned clients, unsigned batch,
                  size_t payload_len, cb_limit *res);

/*
 * Sees the tasks of one queue and function end (docs/cluster.md's layout):
 * aiod:q:CB_QUEUE:FUNCTION holds an entry until its task has ended and its
 * outcome is written to aiod:t:ID.
 */
typedef struct cb_drain cb_drain;
/* A connection for `function`'s stream; NULL with the reason in err. */
cb_drain *cb_drain_open(const cb_redis *r, const char *function, char *err, size_t err_len);
/* Waits until the stream's group has read every entry and acknowledged
 * it: 0 with the clock (bench_now_ns) when that was first seen in
 * *ret_empty_ns; after timeout_s, the entries pending (plus 1 while some
 * are unread); -1 with the reason in err. Call it once every submit is
 * acknowledged. */
long long cb_drain_wait(cb_drain *d, double timeout_s, uint64_t *ret_empty_ns, char *err,
                        size_t err_len);
/* How many of the tasks first_id .. first_id+n-1 ended done; the first
 * that did not is named in err (left alone when err is not empty). */
uint64_t cb_drain_count_done(cb_drain *d, uint64_t first_id, uint64_t n, char *err, size_t err_len);
/* Accepts NULL. */
void cb_drain_close(cb_drain *d);

/* ---- cluster_hosts.c */

typedef struct cb_hosts {
    bench_daemon d[CB_MAX_HOSTS];
    unsigned n;
} cb_hosts;

typedef struct cb_host_cfg {
    const char *aiod;
    /* The bench plugin (bench.noop) and the daemon's plugins (demo.sleep). */
    const char *bench_plugins, *plugins;
    /* Where the settings files go (the bench's temporary directory). */
    const char *dir;
    unsigned capacity;
} cb_host_cfg;

/*
 * Starts n hosts h1..hn, each working CB_QUEUE with `cfg->capacity`, and
 * waits until all n serve `function` on it (aiod:serve:QUEUE:FUNCTION). 0,
 * or -1 with the reason in err (hosts already started are stopped).
 */
int cb_hosts_start(cb_hosts *h, const cb_host_cfg *cfg, const cb_redis *r, unsigned n,
                   const char *function, char *err, size_t err_len);
void cb_hosts_stop(cb_hosts *h);
/* Whether every host still runs; else the first that died and its last
 * log line, in why. */
bool cb_hosts_alive(cb_hosts *h, char *why, size_t why_len);

/* A workload of queued tasks and what it measured. */
typedef struct cb_flow {
    bool ok;
    char reason[300];
    /* Tasks that ended done, the time from the first submit until their
     * stream was empty, and until the last Submitted reply. */
    uint64_t n;
    uint64_t elapsed_ns;
    uint64_t submit_ns;
    /* CPU seconds Redis and the hosts (all together) used meanwhile, and
     * what Redis spent them on (cb_redis_stats_text). */
    double redis_cpu_s, hosts_cpu_s;
    char redis_stats[600];
} cb_flow;

/*
 * Submits n queued tasks of `function` (with one double argument `arg` when
 * has_arg) through every host at once (one pipelining raw client per host,
 * `depth` in flight each), waits until they have ended and checks that each
 * ended done. Redis must have been emptied before the hosts started.
 */
void cb_flow_run(cb_hosts *h, const cb_redis *r, const char *function, bool has_arg, double arg,
                 uint64_t n, unsigned depth, double timeout_s, cb_flow *res);

/* Submit+await round trips through libaioclient on host 0: local
 * (aioc_submit) and queued (aioc_submit_queue) in alternating blocks. */
typedef struct cb_latency {
    bool ok;
    char reason[300];
    uint64_t n;
    /* The median and the 99th percentile, in ns. */
    uint64_t local[2], queued[2];
    /* Awaits that had not returned 0.1 s after they were sent, local and
     * queued: they missed the task's end (the task was awaited again). */
    uint64_t missed[2];
} cb_latency;
void cb_latency_run(cb_hosts *h, const char *function, uint64_t n, cb_latency *res);

/* The size of a packed aiod.QueuedTask as a host writes it for a call of
 * `function` without arguments (the limit loop's entry size). */
size_t cb_queued_task_size(const char *function);

#endif

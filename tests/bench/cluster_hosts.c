/*
 * aiod-cluster-bench: the aiod hosts and the workloads driven through them.
 * Each host is an aiod started by daemon.c (its own socket, state directory
 * and READY=1) with a settings file naming the bench's Redis, its host name
 * and capacity, and the queue CB_QUEUE. Queued tasks are submitted with
 * aiod-bench's raw pipelining client (client.c), whose Submit request gets
 * the queue set here, and seen to end in Redis (cluster_redis.c); the
 * latency goes through libaioclient.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <aioc.h>

#include "aiod-pb.h"
#include "cluster.h"

/* How long hosts get to advertise their functions in Redis. */
#define SERVE_TIMEOUT_S 20.0
#define LATENCY_BLOCKS 10
/* A single round trip that takes longer than this has hung. */
#define AWAIT_TIMEOUT_S 60.0
/* A no-op's await that has not returned after this long (a hundred times
 * its usual round trip) missed the task's end: it is counted, and the task
 * awaited again. */
#define MISS_TIMEOUT_S 0.1

/* ---------------------------------------------------------------- hosts */

static int write_settings(const char *path, const cb_redis *r, unsigned i, unsigned capacity,
                          char *err, size_t err_len) {
    FILE *f = fopen(path, "w");
    if (!f) {
        bench_note(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# written by aiod-cluster-bench\n"
            "cluster = redis://127.0.0.1:%d\n"
            "cluster_host = h%u\n"
            "cluster_queues = " CB_QUEUE "\n"
            "cluster_capacity = %u\n",
            r->port, i + 1, capacity);
    if (fclose(f) != 0) {
        bench_note(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cb_hosts_start(cb_hosts *h, const cb_host_cfg *cfg, const cb_redis *r, unsigned n,
                   const char *function, char *err, size_t err_len) {
    memset(h, 0, sizeof(*h));
    for (unsigned i = 0; i < n && i < CB_MAX_HOSTS; i++) {
        char conf[300];
        snprintf(conf, sizeof(conf), "%s/h%u.conf", cfg->dir, i + 1);
        if (write_settings(conf, r, i, cfg->capacity, err, err_len) < 0) {
            cb_hosts_stop(h);
            return -1;
        }
        /* A local submit is written to the OS, not synced: what Redis's
         * appendfsync everysec gives a queued one, near enough. */
        const char *extra[] = {"-c", conf, "-p", cfg->plugins, "--durability", "os", NULL};
        if (daemon_start(&h->d[i], cfg->aiod, cfg->bench_plugins, extra, err, err_len) < 0) {
            size_t len = strlen(err);
            snprintf(err + len, err_len - len, " (host h%u)", i + 1);
            cb_hosts_stop(h);
            return -1;
        }
        h->n++;
        bench_log("host h%u: aiod pid %d on %s", i + 1, (int)h->d[i].pid, h->d[i].socket);
    }
    /* READY=1 may come before a host has written its functions to Redis:
     * look until every host serves the function. */
    char key[200];
    snprintf(key, sizeof(key), "aiod:serve:" CB_QUEUE ":%s", function);
    uint64_t deadline = bench_now_ns() + (uint64_t)(SERVE_TIMEOUT_S * 1e9);
    for (;;) {
        long long k = cb_redis_int(r, "ZCARD", key, err, err_len);
        if (k >= (long long)h->n)
            return 0;
        char why[300];
        if (k < 0 || !cb_hosts_alive(h, why, sizeof(why)) || bench_now_ns() > deadline) {
            if (k >= 0 && !cb_hosts_alive(h, why, sizeof(why)))
                bench_note(err, err_len, "%s", why);
            else if (k >= 0)
                bench_note(err, err_len, "%lld of %u hosts serve %s after %.0f s (ZCARD %s)", k,
                           h->n, function, SERVE_TIMEOUT_S, key);
            cb_hosts_stop(h);
            return -1;
        }
        sleep_s(0.01);
    }
}

void cb_hosts_stop(cb_hosts *h) {
    for (unsigned i = 0; i < h->n; i++)
        daemon_stop(&h->d[i]);
    h->n = 0;
}

bool cb_hosts_alive(cb_hosts *h, char *why, size_t why_len) {
    for (unsigned i = 0; i < h->n; i++) {
        char w[200];
        if (!daemon_alive(&h->d[i], w, sizeof(w))) {
            char last[300];
            daemon_last_log(&h->d[i], last, sizeof(last));
            bench_note(why, why_len, "host h%u %s%s%s", i + 1, w, *last ? ": " : "", last);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- requests */

/* aiod-bench's Submit request with the queue (and an argument) added. */
static int queued_submit(bench_req *out, const char *function, bool has_arg, double arg) {
    bench_req plain = {0};
    int rc = breq_submit(&plain, function, AIOD__OWNERSHIP__SUBMITTED);
    if (rc < 0)
        return rc;
    Aiod__ClientMessage *m = aiod__client_message__unpack(NULL, plain.len, plain.body);
    breq_free(&plain);
    if (!m)
        return -ENOMEM;
    Aiod__Value v = AIOD__VALUE__INIT;
    v.kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
    v.double_value = arg;
    Aiod__Value *vp = &v;
    char *old_queue = m->submit->queue;
    m->submit->queue = (char *)CB_QUEUE;
    if (has_arg) {
        m->submit->call->n_args = 1;
        m->submit->call->args = &vp;
    }
    out->len = aiod__client_message__get_packed_size(m);
    out->body = malloc(out->len);
    if (out->body)
        aiod__client_message__pack(m, out->body);
    /* Back to what the unpacker allocated before it frees. */
    m->submit->queue = old_queue;
    m->submit->call->n_args = 0;
    m->submit->call->args = NULL;
    aiod__client_message__free_unpacked(m, NULL);
    return out->body ? 0 : -ENOMEM;
}

size_t cb_queued_task_size(const char *function) {
    Aiod__Call call = AIOD__CALL__INIT;
    call.function = (char *)function;
    Aiod__QueuedTask t = AIOD__QUEUED_TASK__INIT;
    t.id = AIOC_CLUSTER_ID_BASE + 1000000;
    t.queue = (char *)CB_QUEUE;
    t.call = &call;
    t.ownership = AIOD__OWNERSHIP__SUBMITTED;
    t.owner_uid = 1000;
    t.owner_pid = 100000;
    t.owner_host = (char *)"h1";
    t.created_usec = 1800000000000000u;
    return aiod__queued_task__get_packed_size(&t);
}

/* ---------------------------------------------------------------- throughput */

struct submitter {
    const char *socket;
    const bench_req *req;
    unsigned depth;
    uint64_t n;
    bench_result res;
    uint64_t t_end;
};

static void *submit_thread(void *arg) {
    struct submitter *s = arg;
    bench_pipeline(s->socket, true, s->req, 1, s->depth, s->n, &s->res);
    s->t_end = bench_now_ns();
    return NULL;
}

static uint64_t hosts_ticks(const cb_hosts *h) {
    uint64_t t = 0;
    for (unsigned i = 0; i < h->n; i++)
        t += proc_cpu_ticks(h->d[i].pid);
    return t;
}

void cb_flow_run(cb_hosts *h, const cb_redis *r, const char *function, bool has_arg, double arg,
                 uint64_t n, unsigned depth, double timeout_s, cb_flow *res) {
    memset(res, 0, sizeof(*res));
    bench_req req = {0};
    if (queued_submit(&req, function, has_arg, arg) < 0) {
        bench_note(res->reason, sizeof(res->reason), "out of memory");
        return;
    }
    cb_drain *dr = cb_drain_open(r, function, res->reason, sizeof(res->reason));
    if (!dr) {
        breq_free(&req);
        return;
    }
    struct submitter s[CB_MAX_HOSTS];
    pthread_t th[CB_MAX_HOSTS];
    uint64_t per = n / h->n;
    cb_redis_do(r, "CONFIG", "RESETSTAT", res->reason, sizeof(res->reason));
    uint64_t redis_ticks = proc_cpu_ticks(r->proc.pid), host_ticks = hosts_ticks(h);
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < h->n; i++) {
        s[i] = (struct submitter){h->d[i].socket, &req, depth, i + 1 < h->n ? per : n - per * i};
        if (pthread_create(&th[i], NULL, submit_thread, &s[i]) != 0) {
            fprintf(stderr, "aiod-cluster-bench: cannot start threads\n");
            exit(1);
        }
    }
    uint64_t submitted = 0, t_submitted = t0;
    res->ok = true;
    for (unsigned i = 0; i < h->n; i++) {
        pthread_join(th[i], NULL);
        submitted += s[i].res.count;
        if (s[i].t_end > t_submitted)
            t_submitted = s[i].t_end;
        if (!s[i].res.ok && res->ok) {
            res->ok = false;
            bench_note(res->reason, sizeof(res->reason), "submit through h%u: %s", i + 1,
                       s[i].res.reason);
        }
    }
    res->submit_ns = t_submitted - t0;
    if (res->ok && submitted != n) {
        res->ok = false;
        bench_note(res->reason, sizeof(res->reason), "%llu of %llu submits acknowledged",
                   (unsigned long long)submitted, (unsigned long long)n);
    }
    uint64_t t_empty = 0;
    long long left =
        res->ok ? cb_drain_wait(dr, timeout_s, &t_empty, res->reason, sizeof(res->reason)) : -1;
    if (left > 0) {
        char why[300] = "";
        cb_hosts_alive(h, why, sizeof(why));
        bench_note(res->reason, sizeof(res->reason),
                   "%lld of %llu tasks still running (plus 1 while some are queued) %.0f s after "
                   "the last submit%s%s",
                   left, (unsigned long long)n, timeout_s, *why ? "; " : "", why);
    }
    long hz = sysconf(_SC_CLK_TCK);
    res->redis_cpu_s = (double)(proc_cpu_ticks(r->proc.pid) - redis_ticks) / (double)hz;
    res->hosts_cpu_s = (double)(hosts_ticks(h) - host_ticks) / (double)hz;
    cb_redis_stats_text(r, n, res->redis_stats, sizeof(res->redis_stats));
    if (left == 0) {
        /* Redis was emptied before the hosts started: the ids are the
         * first n after AIOC_CLUSTER_ID_BASE. */
        res->n =
            cb_drain_count_done(dr, AIOC_CLUSTER_ID_BASE + 1, n, res->reason, sizeof(res->reason));
        res->ok = res->n == n;
        res->elapsed_ns = t_empty - t0;
    } else {
        res->ok = false;
    }
    cb_drain_close(dr);
    breq_free(&req);
}

/* ---------------------------------------------------------------- latency */

/* One submit+await round trip; 0 or a negative errno with the reason. An
 * await that misses the end adds one to *missed, and its time counts. */
static int round_trip(aioc_client *c, const aioc_call *call, bool queued, uint64_t *ret_ns,
                      uint64_t *missed, char *reason, size_t len) {
    uint64_t t0 = bench_now_ns(), id = 0;
    int rc = queued ? aioc_submit_queue(c, CB_QUEUE, call, AIOC_SUBMIT_SUBMITTED, &id)
                    : aioc_submit(c, call, &id);
    if (rc < 0) {
        bench_note(reason, len, "%s: %s (%s)", queued ? "aioc_submit_queue" : "aioc_submit",
                   strerror(-rc), aioc_last_error(c));
        return rc;
    }
    aioc_outcome *o = NULL;
    rc = aioc_await(c, &id, 1, MISS_TIMEOUT_S, &o);
    if (rc == -ETIMEDOUT) {
        (*missed)++;
        rc = aioc_await(c, &id, 1, AWAIT_TIMEOUT_S, &o);
    }
    if (rc < 0 || aioc_outcome_state(o) != AIOC_STATE_DONE) {
        bench_note(reason, len, "aioc_await of %llu: %s", (unsigned long long)id,
                   rc < 0 ? strerror(-rc) : aioc_outcome_error_message(o));
        aioc_outcome_free(o);
        return rc < 0 ? rc : -EIO;
    }
    aioc_outcome_free(o);
    *ret_ns = bench_now_ns() - t0;
    return 0;
}

void cb_latency_run(cb_hosts *h, const char *function, uint64_t n, cb_latency *res) {
    memset(res, 0, sizeof(*res));
    uint64_t per = n / LATENCY_BLOCKS ? n / LATENCY_BLOCKS : 1;
    uint64_t total = per * LATENCY_BLOCKS, warmup = per / 10 + 10;
    aioc_client *c = NULL;
    aioc_call *call = aioc_call_new(function);
    uint64_t *local = malloc(total * sizeof(*local)), *queued = malloc(total * sizeof(*queued));
    int rc = call && local && queued ? aioc_connect(h->d[0].socket, &c) : -ENOMEM;
    if (rc < 0) {
        bench_note(res->reason, sizeof(res->reason), "aioc_connect: %s", strerror(-rc));
        goto out;
    }
    uint64_t ignored, missed_warm = 0;
    for (uint64_t i = 0; i < warmup; i++)
        if (round_trip(c, call, false, &ignored, &missed_warm, res->reason, sizeof(res->reason)) <
                0 ||
            round_trip(c, call, true, &ignored, &missed_warm, res->reason, sizeof(res->reason)) < 0)
            goto out;
    /* Alternating blocks, so that both see the same machine. */
    for (uint64_t b = 0; b < LATENCY_BLOCKS; b++) {
        for (uint64_t i = 0; i < per; i++)
            if (round_trip(c, call, false, &local[b * per + i], &res->missed[0], res->reason,
                           sizeof(res->reason)) < 0)
                goto out;
        for (uint64_t i = 0; i < per; i++)
            if (round_trip(c, call, true, &queued[b * per + i], &res->missed[1], res->reason,
                           sizeof(res->reason)) < 0)
                goto out;
    }
    res->ok = true;
    res->n = total;
    static const double q[2] = {0.50, 0.99};
    for (int i = 0; i < 2; i++) {
        res->local[i] = bench_quantile(local, total, q[i]);
        res->queued[i] = bench_quantile(queued, total, q[i]);
    }
out:
    aioc_close(c);
    aioc_call_free(call);
    free(local);
    free(queued);
}

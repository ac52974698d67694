/*
 * aiod-cluster-bench: Redis. Runs redis-server as a child on loopback with
 * its files in a temporary directory, measures what a bare client gets from
 * it (the limit: producers pipelining XADD and consumers pipelining
 * XREADGROUP and XACK, with hiredis's synchronous API), and sees a
 * workload's tasks end from their queue's stream and task hashes. Only hiredis is used here, so
 * the limit has none of aiod's code in it.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cluster.h"

#define REDIS_READY_TIMEOUT_MS 10000
/* A consumer blocked on an empty stream looks at the shared count this often. */
#define CONSUMER_BLOCK_MS "50"
#define LIMIT_STREAM "aiod-cluster-bench:limit"
#define LIMIT_GROUP "g"

/* ---------------------------------------------------------------- the server */

/* A port free at the time of asking: the kernel's pick for port 0. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static redisContext *connect_to(const cb_redis *r, char *err, size_t err_len) {
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        bench_note(err, err_len, "connect to Redis at 127.0.0.1:%d: %s", r->port,
                   c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

int cb_redis_start(cb_redis *r, const char *server, const char *base, char *err, size_t err_len) {
    memset(r, 0, sizeof(*r));
    bench_daemon *p = &r->proc;
    p->pid = -1;
    snprintf(p->dir, sizeof(p->dir), "%s/redis.XXXXXX", base);
    if (!mkdtemp(p->dir)) {
        bench_note(err, err_len, "mkdtemp %s: %s", p->dir, strerror(errno));
        return -1;
    }
    snprintf(p->log, sizeof(p->log), "%s/redis.log", p->dir);
    r->port = free_port();
    if (r->port <= 0) {
        bench_note(err, err_len, "no free port: %s", strerror(errno));
        return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    /* Loopback only, no RDB snapshots, the append-only file fsynced every
     * second, in the foreground (a child to stop). */
    const char *argv[] = {
        server, "--port",        port,       "--bind",      "127.0.0.1", "--dir",
        p->dir, "--logfile",     p->log,     "--save",      "",          "--appendonly",
        "yes",  "--appendfsync", "everysec", "--daemonize", "no",        NULL,
    };
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0) {
        bench_note(err, err_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (p->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execvp(server, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", server, strerror(errno));
        _exit(127);
    }
    /* redis-server has no readiness notification outside systemd
     * supervision: try PING until it answers. */
    uint64_t deadline = bench_now_ns() + (uint64_t)REDIS_READY_TIMEOUT_MS * 1000000u;
    for (;;) {
        redisContext *c = redisConnect("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            bool up = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (up)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        char why[200];
        if (!daemon_alive(p, why, sizeof(why))) {
            char last[300];
            daemon_last_log(p, last, sizeof(last));
            bench_note(err, err_len, "redis-server %s before answering%s%s", why, *last ? ": " : "",
                       last);
            cb_redis_stop(r);
            return -1;
        }
        if (bench_now_ns() > deadline) {
            bench_note(err, err_len, "redis-server did not answer within %d ms; see %s",
                       REDIS_READY_TIMEOUT_MS, p->log);
            cb_redis_stop(r);
            return -1;
        }
        sleep_s(0.01);
    }
}

void cb_redis_stop(cb_redis *r) {
    daemon_stop_keep(&r->proc);
    if (*r->proc.dir && !getenv("AIOD_BENCH_KEEP"))
        nftw(r->proc.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static redisReply *command(const cb_redis *r, char *err, size_t err_len, const char *fmt, ...) {
    redisContext *c = connect_to(r, err, err_len);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!rep)
        bench_note(err, err_len, "Redis: %s", c->errstr);
    else if (rep->type == REDIS_REPLY_ERROR) {
        bench_note(err, err_len, "Redis: %s", rep->str);
        freeReplyObject(rep);
        rep = NULL;
    }
    redisFree(c);
    return rep;
}

int cb_redis_do(const cb_redis *r, const char *cmd, const char *arg, char *err, size_t err_len) {
    redisReply *rep =
        arg ? command(r, err, err_len, "%s %s", cmd, arg) : command(r, err, err_len, "%s", cmd);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

long long cb_redis_int(const cb_redis *r, const char *cmd, const char *key, char *err,
                       size_t err_len) {
    redisReply *rep = command(r, err, err_len, "%s %s", cmd, key);
    if (!rep)
        return -1;
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (v < 0)
        bench_note(err, err_len, "Redis: %s %s: not an integer reply", cmd, key);
    freeReplyObject(rep);
    return v;
}

const char *cb_redis_version(const cb_redis *r) {
    static char version[32] = "?";
    char err[128];
    redisReply *rep = command(r, err, sizeof(err), "INFO server");
    if (!rep)
        return version;
    const char *p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "redis_version:") : NULL;
    if (p)
        sscanf(p + strlen("redis_version:"), "%31[0-9.]", version);
    freeReplyObject(rep);
    return version;
}

/* ---------------------------------------------------------------- command counts */

struct cmdstat {
    char name[40];
    unsigned long long calls, usec;
};

static int by_usec(const void *a, const void *b) {
    const struct cmdstat *x = a, *y = b;
    return x->usec < y->usec ? 1 : x->usec > y->usec ? -1 : 0;
}

int cb_redis_stats_text(const cb_redis *r, uint64_t n, char *buf, size_t len) {
    redisReply *rep = command(r, buf, len, "INFO commandstats");
    if (!rep)
        return -1;
    struct cmdstat st[64];
    size_t k = 0;
    for (const char *p = rep->type == REDIS_REPLY_STRING ? rep->str : "";
         (p = strstr(p, "cmdstat_")) && k < sizeof(st) / sizeof(st[0]); p++) {
        if (sscanf(p, "cmdstat_%39[^:]:calls=%llu,usec=%llu", st[k].name, &st[k].calls,
                   &st[k].usec) == 3)
            k++;
    }
    freeReplyObject(rep);
    qsort(st, k, sizeof(st[0]), by_usec);
    /* A command a script runs counts on its own too, and its time is also
     * in the script's (eval's or evalsha's). */
    size_t o = 0;
    for (size_t i = 0; i < k && i < 8 && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s %.2f (%.1f us)", i ? ", " : "", st[i].name,
                              (double)st[i].calls / (double)n, (double)st[i].usec / (double)n);
    return 0;
}

/* ---------------------------------------------------------------- the limit */

struct limit_run {
    const cb_redis *r;
    uint64_t n;
    unsigned batch;
    const char *payload;
    size_t payload_len;
    pthread_barrier_t start;
    atomic_uint_fast64_t acked;
    atomic_uint_fast64_t t_last;
    /* The first failure, under `lock`. */
    pthread_mutex_t lock;
    bool failed;
    char reason[256];
};

struct limit_thread {
    struct limit_run *run;
    unsigned index;
    /* A producer's share of the n entries (0 for a consumer). */
    uint64_t share;
};

/* The reason of a failed command: Redis's error, the connection's, or "unexpected reply". */
static const char *why(const redisContext *c, const redisReply *rep) {
    if (rep && rep->type == REDIS_REPLY_ERROR)
        return rep->str;
    return c && c->err ? c->errstr : "unexpected reply";
}

static void limit_fail(struct limit_run *run, const char *what, const char *detail) {
    pthread_mutex_lock(&run->lock);
    if (!run->failed)
        bench_note(run->reason, sizeof(run->reason), "%s: %s", what, detail);
    run->failed = true;
    pthread_mutex_unlock(&run->lock);
}

static bool limit_failed(struct limit_run *run) {
    pthread_mutex_lock(&run->lock);
    bool f = run->failed;
    pthread_mutex_unlock(&run->lock);
    return f;
}

/* Reads k replies of the given type; false (and the run failed) otherwise. */
static bool read_replies(struct limit_run *run, redisContext *c, uint64_t k, int type,
                         const char *what) {
    for (uint64_t i = 0; i < k; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep || (int)rep->type != type) {
            limit_fail(run, what, why(c, rep));
            if (rep)
                freeReplyObject(rep);
            return false;
        }
        freeReplyObject(rep);
    }
    return true;
}

static void append_xadds(struct limit_run *run, redisContext *c, uint64_t k) {
    for (uint64_t i = 0; i < k; i++)
        redisAppendCommand(c, "XADD " LIMIT_STREAM " * t %b", run->payload, run->payload_len);
}

static void *producer(void *arg) {
    struct limit_thread *t = arg;
    struct limit_run *run = t->run;
    char err[200];
    redisContext *c = connect_to(run->r, err, sizeof(err));
    pthread_barrier_wait(&run->start);
    if (!c) {
        limit_fail(run, "connect", err);
        return NULL;
    }
    /* Up to two batches in flight: the next is queued before the replies
     * of the previous are read (redisGetReply writes what is queued once
     * the replies it holds are taken). */
    uint64_t queued = 0, answered = 0, n = t->share;
    while (answered < n && !limit_failed(run)) {
        while (queued < n && queued - answered < 2u * run->batch) {
            uint64_t k = n - queued < run->batch ? n - queued : run->batch;
            append_xadds(run, c, k);
            queued += k;
        }
        uint64_t k = queued - answered < run->batch ? queued - answered : run->batch;
        if (!read_replies(run, c, k, REDIS_REPLY_STRING, "XADD"))
            break;
        answered += k;
    }
    redisFree(c);
    return NULL;
}

/* The ids of an XREADGROUP reply (one stream) as XACK arguments after
 * argv[0..2]; returns how many, or -1 when the reply is not one. */
static long take_ids(const redisReply *rep, const char **argv, size_t *argl, size_t cap) {
    if (rep->type == REDIS_REPLY_NIL)
        return 0;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2)
        return -1;
    const redisReply *entries = rep->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements > cap)
        return -1;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            return -1;
        argv[3 + i] = e->element[0]->str;
        argl[3 + i] = e->element[0]->len;
    }
    return (long)entries->elements;
}

static void *consumer(void *arg) {
    struct limit_thread *t = arg;
    struct limit_run *run = t->run;
    char err[200], name[16], count[16];
    snprintf(name, sizeof(name), "c%u", t->index);
    snprintf(count, sizeof(count), "%u", run->batch);
    const char **argv = malloc((3 + run->batch) * sizeof(*argv));
    size_t *argl = malloc((3 + run->batch) * sizeof(*argl));
    redisContext *c = connect_to(run->r, err, sizeof(err));
    pthread_barrier_wait(&run->start);
    if (!c || !argv || !argl) {
        limit_fail(run, "consumer", c ? "out of memory" : err);
        goto out;
    }
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = LIMIT_STREAM, argl[1] = strlen(LIMIT_STREAM);
    argv[2] = LIMIT_GROUP, argl[2] = strlen(LIMIT_GROUP);
    static const char read_fmt[] =
        "XREADGROUP GROUP " LIMIT_GROUP " %s COUNT %s BLOCK " CONSUMER_BLOCK_MS
        " STREAMS " LIMIT_STREAM " >";
    redisAppendCommand(c, read_fmt, name, count);
    for (;;) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            limit_fail(run, "XREADGROUP", why(c, rep));
            break;
        }
        long k = take_ids(rep, argv, argl, run->batch);
        if (k < 0) {
            limit_fail(run, "XREADGROUP", why(c, rep));
            freeReplyObject(rep);
            break;
        }
        /* The acknowledgement of this batch goes out with the next read. */
        if (k > 0)
            redisAppendCommandArgv(c, 3 + (int)k, argv, argl);
        bool more = atomic_load(&run->acked) + (uint64_t)k < run->n && !limit_failed(run);
        if (more)
            redisAppendCommand(c, read_fmt, name, count);
        freeReplyObject(rep);
        if (k > 0) {
            if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep ||
                rep->type != REDIS_REPLY_INTEGER || rep->integer != k) {
                limit_fail(run, "XACK", why(c, rep));
                if (rep)
                    freeReplyObject(rep);
                break;
            }
            freeReplyObject(rep);
            if (atomic_fetch_add(&run->acked, (uint64_t)k) + (uint64_t)k >= run->n)
                atomic_store(&run->t_last, bench_now_ns());
        }
        if (!more) {
            /* Others may still block on their read: they end at theirs. */
            if (atomic_load(&run->acked) >= run->n || limit_failed(run))
                break;
            redisAppendCommand(c, read_fmt, name, count);
        }
    }
out:
    if (c)
        redisFree(c);
    free(argv);
    free(argl);
    return NULL;
}

void cb_limit_run(const cb_redis *r, uint64_t n, unsigned clients, unsigned batch,
                  size_t payload_len, cb_limit *res) {
    memset(res, 0, sizeof(*res));
    res->clients = clients;
    struct limit_run run = {.r = r, .n = n, .batch = batch, .payload_len = payload_len};
    char *payload = malloc(payload_len ? payload_len : 1);
    if (!payload) {
        bench_note(res->reason, sizeof(res->reason), "out of memory");
        return;
    }
    memset(payload, 'x', payload_len);
    run.payload = payload;
    pthread_mutex_init(&run.lock, NULL);
    redisReply *rep = command(r, res->reason, sizeof(res->reason), "DEL %s", LIMIT_STREAM);
    if (rep) {
        freeReplyObject(rep);
        rep = command(r, res->reason, sizeof(res->reason), "XGROUP CREATE %s %s $ MKSTREAM",
                      LIMIT_STREAM, LIMIT_GROUP);
    }
    if (!rep) {
        free(payload);
        return;
    }
    freeReplyObject(rep);

    /* Producers first, then consumers. */
    pthread_t th[2 * CB_MAX_HOSTS];
    struct limit_thread ta[2 * CB_MAX_HOSTS];
    if (clients > CB_MAX_HOSTS)
        clients = CB_MAX_HOSTS;
    unsigned nth = 2 * clients;
    pthread_barrier_init(&run.start, NULL, nth + 1);
    for (unsigned i = 0; i < nth; i++) {
        bool prod = i < clients;
        uint64_t share = !prod ? 0 : i + 1 < clients ? n / clients : n - n / clients * i;
        ta[i] = (struct limit_thread){&run, i, share};
        if (pthread_create(&th[i], NULL, prod ? producer : consumer, &ta[i]) != 0) {
            fprintf(stderr, "aiod-cluster-bench: cannot start threads\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&run.start);
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&run.start);
    pthread_mutex_destroy(&run.lock);
    free(payload);
    res->n = atomic_load(&run.acked);
    res->ok = !run.failed && res->n >= n;
    if (run.failed)
        memcpy(res->reason, run.reason, sizeof(res->reason));
    else if (!res->ok)
        bench_note(res->reason, sizeof(res->reason), "%llu of %llu acknowledged",
                   (unsigned long long)res->n, (unsigned long long)n);
    uint64_t t_last = atomic_load(&run.t_last);
    res->elapsed_ns = t_last > t0 ? t_last - t0 : 0;
    char err[200];
    rep = command(r, err, sizeof(err), "DEL %s", LIMIT_STREAM);
    if (rep)
        freeReplyObject(rep);
}

/* ---------------------------------------------------------------- draining */

/*
 * A host publishes "done ID" only for tasks someone awaits, so a workload
 * that only submits is seen from the queue's stream instead: a host
 * acknowledges an entry (XACK) in the same script that writes its task's
 * outcome, so once every submit is acknowledged, a stream whose group has
 * read its last entry and has nothing pending means every task ended.
 * Nothing announces that, so it is read every DRAIN_POLL_S: the count
 * pending (XPENDING, cheap), and once that is 0, whether the group has read
 * the stream's last entry (XINFO STREAM and GROUPS, dearer: read only
 * then, so that the polling costs Redis little while the tasks run).
 */
#define DRAIN_POLL_S 0.001

struct cb_drain {
    redisContext *c;
    char key[200];
};

cb_drain *cb_drain_open(const cb_redis *r, const char *function, char *err, size_t err_len) {
    cb_drain *d = calloc(1, sizeof(*d));
    if (!d) {
        bench_note(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(d->key, sizeof(d->key), "aiod:q:" CB_QUEUE ":%s", function);
    d->c = connect_to(r, err, err_len);
    if (!d->c) {
        free(d);
        return NULL;
    }
    return d;
}

/* The value after `key` in a flat array of field/value pairs, or NULL. */
static const char *pair_value(const redisReply *a, const char *key) {
    if (!a || a->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < a->elements; i += 2)
        if (a->element[i]->type == REDIS_REPLY_STRING && strcmp(a->element[i]->str, key) == 0)
            return a->element[i + 1]->type == REDIS_REPLY_STRING ? a->element[i + 1]->str : NULL;
    return NULL;
}

/* Entries pending in the group, plus 1 while it has not read the stream's
 * last entry; -1 with the reason in err. */
static long long drain_left(cb_drain *d, char *err, size_t err_len) {
    redisReply *rep = redisCommand(d->c, "XPENDING %s aiod", d->key);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        bench_note(err, err_len, "XPENDING %s aiod: %s", d->key, why(d->c, rep));
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    long long pending = rep->element[0]->integer;
    freeReplyObject(rep);
    if (pending > 0)
        return pending;
    redisReply *st = redisCommand(d->c, "XINFO STREAM %s", d->key);
    redisReply *gr = st ? redisCommand(d->c, "XINFO GROUPS %s", d->key) : NULL;
    const char *last = pair_value(st, "last-generated-id"), *read = NULL;
    for (size_t i = 0; gr && gr->type == REDIS_REPLY_ARRAY && i < gr->elements; i++) {
        const char *name = pair_value(gr->element[i], "name");
        if (name && strcmp(name, "aiod") == 0)
            read = pair_value(gr->element[i], "last-delivered-id");
    }
    long long left = -1;
    if (!last || !read)
        bench_note(err, err_len, "XINFO STREAM/GROUPS %s: %s", d->key,
                   !st || !gr ? why(d->c, st ? gr : st) : "no last-generated-id or group aiod");
    else
        left = strcmp(last, read) == 0 ? 0 : 1;
    if (st)
        freeReplyObject(st);
    if (gr)
        freeReplyObject(gr);
    return left;
}

long long cb_drain_wait(cb_drain *d, double timeout_s, uint64_t *ret_empty_ns, char *err,
                        size_t err_len) {
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    for (;;) {
        long long left = drain_left(d, err, err_len);
        uint64_t now = bench_now_ns();
        if (left < 0)
            return -1;
        if (left == 0) {
            *ret_empty_ns = now;
            return 0;
        }
        if (now > deadline)
            return left;
        sleep_s(DRAIN_POLL_S);
    }
}

uint64_t cb_drain_count_done(cb_drain *d, uint64_t first_id, uint64_t n, char *err,
                             size_t err_len) {
    uint64_t done = 0;
    const uint64_t batch = 1000;
    for (uint64_t i = 0; i < n; i += batch) {
        uint64_t k = n - i < batch ? n - i : batch;
        for (uint64_t j = 0; j < k; j++)
            redisAppendCommand(d->c, "HGET aiod:t:%llu state",
                               (unsigned long long)(first_id + i + j));
        for (uint64_t j = 0; j < k; j++) {
            redisReply *rep = NULL;
            if (redisGetReply(d->c, (void **)&rep) != REDIS_OK || !rep) {
                bench_note(err, err_len, "HGET: %s", why(d->c, rep));
                return done;
            }
            if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "done") == 0)
                done++;
            else if (!*err)
                bench_note(err, err_len, "task %llu: state %s",
                           (unsigned long long)(first_id + i + j),
                           rep->type == REDIS_REPLY_STRING ? rep->str : "(none)");
            freeReplyObject(rep);
        }
    }
    return done;
}

void cb_drain_close(cb_drain *d) {
    if (!d)
        return;
    redisFree(d->c);
    free(d);
}

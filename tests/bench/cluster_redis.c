/*
 * aiod-cluster-bench: Redis. Runs redis-server as a child on loopback with
 * its files in a temporary directory, measures what a bare client gets from
 * it (the limit: producers pipelining XADD and consumers pipelining
 * XREADGROUP and XACK, with hiredis's synchronous API), and counts finished
 * cluster tasks from the hosts' event channel. Only hiredis is used here, so
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
#define REDIS_STOP_GRACE_MS 10000
/* The channel the hosts publish "done ID" on (docs/cluster.md). */
#define EVENT_CHANNEL "aiod:ev"
/* Ours, to wake the counter when the bench gives up. */
#define STOP_CHANNEL "aiod-cluster-bench:stop"
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

static bool redis_exited(cb_redis *r, char *err, size_t err_len) {
    int st;
    if (waitpid(r->pid, &st, WNOHANG) != r->pid)
        return false;
    bench_note(err, err_len, "redis-server exited (status %d) before answering; see %s",
               WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), r->log);
    r->pid = -1;
    return true;
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
    r->pid = -1;
    snprintf(r->dir, sizeof(r->dir), "%s/redis.XXXXXX", base);
    if (!mkdtemp(r->dir)) {
        bench_note(err, err_len, "mkdtemp %s: %s", r->dir, strerror(errno));
        return -1;
    }
    snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
    r->port = free_port();
    if (r->port <= 0) {
        bench_note(err, err_len, "no free port: %s", strerror(errno));
        return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    const char *argv[] = {server,      "--port",
                          port,        "--bind",
                          "127.0.0.1", "--dir",
                          r->dir,      "--logfile",
                          r->log,      "--save",
                          "",          "--appendonly",
                          "yes",       "--appendfsync",
                          "everysec",  "--daemonize",
                          "no",        "--protected-mode",
                          "yes",       NULL};
    fflush(NULL);
    r->pid = fork();
    if (r->pid < 0) {
        bench_note(err, err_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (r->pid == 0) {
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
        if (redis_exited(r, err, err_len)) {
            cb_redis_stop(r);
            return -1;
        }
        if (bench_now_ns() > deadline) {
            bench_note(err, err_len, "redis-server did not answer within %d ms; see %s",
                       REDIS_READY_TIMEOUT_MS, r->log);
            cb_redis_stop(r);
            return -1;
        }
        sleep_s(0.01);
    }
}

void cb_redis_stop(cb_redis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        uint64_t deadline = bench_now_ns() + (uint64_t)REDIS_STOP_GRACE_MS * 1000000u;
        while (waitpid(r->pid, NULL, WNOHANG) == 0) {
            if (bench_now_ns() > deadline) {
                kill(r->pid, SIGKILL);
                waitpid(r->pid, NULL, 0);
                break;
            }
            sleep_s(0.005);
        }
    }
    r->pid = -1;
    if (*r->dir && !getenv("AIOD_BENCH_KEEP"))
        nftw(r->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
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

int cb_redis_flush(const cb_redis *r, char *err, size_t err_len) {
    redisReply *rep = command(r, err, err_len, "FLUSHALL");
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

/* ---------------------------------------------------------------- the counter */

struct cb_counter {
    redisContext *c;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t done;
    uint64_t t_last;
    bool ended;
};

static void *count_thread(void *arg) {
    cb_counter *k = arg;
    for (;;) {
        redisReply *rep = NULL;
        if (redisGetReply(k->c, (void **)&rep) != REDIS_OK || !rep)
            break;
        bool stop = false, done = false;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[0]->str, "message") == 0 &&
            rep->element[2]->type == REDIS_REPLY_STRING) {
            stop = strcmp(rep->element[1]->str, STOP_CHANNEL) == 0;
            done = !stop && strncmp(rep->element[2]->str, "done ", 5) == 0;
        }
        freeReplyObject(rep);
        if (stop)
            break;
        if (done) {
            uint64_t now = bench_now_ns();
            pthread_mutex_lock(&k->lock);
            k->done++;
            k->t_last = now;
            pthread_cond_signal(&k->cond);
            pthread_mutex_unlock(&k->lock);
        }
    }
    pthread_mutex_lock(&k->lock);
    k->ended = true;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

cb_counter *cb_counter_start(const cb_redis *r, char *err, size_t err_len) {
    cb_counter *k = calloc(1, sizeof(*k));
    if (!k) {
        bench_note(err, err_len, "out of memory");
        return NULL;
    }
    k->c = connect_to(r, err, err_len);
    if (!k->c) {
        free(k);
        return NULL;
    }
    /* Both subscriptions are confirmed before the workload starts. */
    redisReply *rep = redisCommand(k->c, "SUBSCRIBE " EVENT_CHANNEL " " STOP_CHANNEL);
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY;
    if (rep)
        freeReplyObject(rep);
    rep = NULL;
    if (ok && (redisGetReply(k->c, (void **)&rep) != REDIS_OK || !rep))
        ok = false;
    if (rep)
        freeReplyObject(rep);
    if (!ok) {
        bench_note(err, err_len, "SUBSCRIBE: %s", k->c->err ? k->c->errstr : "bad reply");
        redisFree(k->c);
        free(k);
        return NULL;
    }
    pthread_mutex_init(&k->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&k->th, NULL, count_thread, k) != 0) {
        fprintf(stderr, "aiod-cluster-bench: cannot start threads\n");
        exit(1);
    }
    return k;
}

uint64_t cb_counter_wait(cb_counter *k, uint64_t n, double timeout_s, uint64_t *ret_last_ns) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    deadline.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&k->lock);
    while (k->done < n && !k->ended)
        if (pthread_cond_timedwait(&k->cond, &k->lock, &deadline) == ETIMEDOUT)
            break;
    uint64_t done = k->done;
    *ret_last_ns = k->t_last;
    pthread_mutex_unlock(&k->lock);
    return done;
}

void cb_counter_stop(cb_counter *k, const cb_redis *r) {
    if (!k)
        return;
    char err[200];
    redisReply *rep = command(r, err, sizeof(err), "PUBLISH " STOP_CHANNEL " stop");
    if (rep)
        freeReplyObject(rep);
    else
        /* Redis is gone: the subscriber's read fails on its own. */
        shutdown(k->c->fd, SHUT_RDWR);
    pthread_join(k->th, NULL);
    redisFree(k->c);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

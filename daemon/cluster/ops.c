/*
 * What a client asks of queued tasks, on any host (cluster.h): submit,
 * show, await, cancel and follow, each a few commands or one script on the
 * shared connection (a follower has a connection of its own, since it
 * blocks in XREAD).
 *
 * An operation lives until its answer is given and no reply is still
 * owed to it; its owner may drop it earlier (cluster_op_cancel), and the
 * replies that still come then only free it.
 */
#include "cluster/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/hashmap.h"
#include "base/value.h"
#include "cluster/link.h"
#include "cluster/lua.h"
#include "core/task.h"
#include "host/registry.h"
#include "system/config.h"
#include "system/log.h"

enum op_kind { OP_SUBMIT, OP_SHOW, OP_AWAIT, OP_CANCEL, OP_FOLLOW };

struct cluster_op {
    int kind;
    uint64_t id;
    uid_t uid;
    bool admin;
    cluster_cb cb;
    cluster_line_cb line;
    void *data;
    /* Replies still owed to it. */
    unsigned owed;
    /* Answered, or dropped by its owner: only the owed replies are left. */
    bool over;
    /* An await registered in waits (the next one of the same task). */
    bool waiting;
    cluster_op *next_same;
    /* Follow: its connection, whether to wait for the end, where it is in
     * the output stream, lines sent, and the task's state last seen. */
    rconn *rc;
    bool follow;
    bool finished;
    bool checked;
    char last[48];
    uint64_t seq;
    /* Show: the entries of the task's output stream (XLEN), -1 unknown. */
    long long out_len;
};

/* Awaits by task id: the first op, chained by next_same. */
static hashmap *waits;

/* Follow ops holding a Redis connection of their own: in all, and by uid
 * (LIMIT_CLUSTER_FOLLOWERS, …_PER_UID). */
static unsigned followers;
static hashmap *followers_by_uid;

/* Closes a follow op's connection (its owed replies come back empty). */
static void drop_conn(cluster_op *op) {
    if (!op->rc)
        return;
    rconn *rc = op->rc;
    op->rc = NULL;
    followers--;
    hashmap_count_add(&followers_by_uid, op->uid, -1);
    op->owed++;
    rconn_free(rc);
    op->owed--;
}

static void op_free_if_done(cluster_op *op) {
    if (!op->over || op->owed)
        return;
    drop_conn(op);
    free(op);
}

static void unregister_wait(cluster_op *op) {
    if (!op->waiting)
        return;
    op->waiting = false;
    cluster_op *first = hashmap_get_u64(waits, op->id);
    if (first == op) {
        hashmap_remove_u64(waits, op->id);
        if (op->next_same)
            hashmap_put_u64(waits, op->id, op->next_same);
        return;
    }
    for (cluster_op *o = first; o; o = o->next_same)
        if (o->next_same == op) {
            o->next_same = op->next_same;
            return;
        }
}

/* Gives the answer (once) and ends the op. */
static void answer(cluster_op *op, const cluster_answer *a) {
    if (op->over)
        return;
    unregister_wait(op);
    op->over = true;
    op->cb(op->data, a);
    op_free_if_done(op);
}

_printf_(3, 4) static void answer_error(cluster_op *op, int err, const char *fmt, ...) {
    char why[LIMIT_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    cluster_answer a = {.err = err, .why = why};
    answer(op, &a);
}

static void answer_unreachable(cluster_op *op) {
    char why[LIMIT_MESSAGE];
    link_unreachable(why, sizeof(why));
    cluster_answer a = {.err = -EHOSTUNREACH, .why = why};
    answer(op, &a);
}

/* A submit sent to Redis whose reply never came (the connection dropped,
 * or Redis stalled past the reply timeout): Redis may have run it, and
 * then the task is queued and runs. "unreachable" read as "nothing was
 * queued", and the id, which would let the client look, is not known. */
static void answer_submit_lost(cluster_op *op) {
    answer_error(op, -EHOSTUNREACH,
                 "cluster: the reply of Redis at %s:%d to the submit was lost (%s): the task "
                 "may have been queued, and then it runs; its id is not known here",
                 link_url()->host, link_url()->port, rconn_why(link_submits()));
}

static int not_cluster(char *why, size_t len) {
    snprintf(why, len, "this aiod is not part of a cluster (no 'cluster' setting)");
    return -EINVAL;
}

static int unreachable(char *why, size_t len) {
    link_unreachable(why, len);
    return -EHOSTUNREACH;
}

static cluster_op *op_new(int kind, uint64_t id, const peer *p, cluster_cb cb, void *data) {
    cluster_op *op = alloc_calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    op->id = id;
    op->uid = p->uid;
    op->admin = p->admin;
    op->cb = cb;
    op->data = data;
    return op;
}

/* A reply the op was owed came: true if the op still wants it. */
static bool op_paid(cluster_op *op) {
    op->owed--;
    if (op->over) {
        op_free_if_done(op);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ the hash */

static int state_of(const char *s) {
    if (strcmp(s, "queued") == 0)
        return TASK_PENDING;
    if (strcmp(s, "running") == 0)
        return TASK_RUNNING;
    if (strcmp(s, "done") == 0)
        return TASK_DONE;
    if (strcmp(s, "cancelled") == 0)
        return TASK_CANCELLED;
    return TASK_FAILED;
}

/* What a task's hash holds, as field/value pairs from index `from` of
 * `r`; `result` and `qt` are decoded and owned by the caller (free with
 * task_parts_free). */
typedef struct task_parts {
    cluster_task t;
    Aiod__Value *result;
    Aiod__QueuedTask *qt;
} task_parts;

static void task_parts_free(task_parts *tp) {
    if (tp->result)
        aiod__value__free_unpacked(tp->result, NULL);
    if (tp->qt)
        aiod__queued_task__free_unpacked(tp->qt, NULL);
}

static void parse_task(uint64_t id, const redisReply *r, size_t from, task_parts *tp) {
    *tp = (task_parts){.t = {.id = id,
                             .state = TASK_FAILED,
                             .queue = "",
                             .function = "",
                             .host = "",
                             .owner_host = "",
                             .kind = "",
                             .msg = ""}};
    cluster_task *t = &tp->t;
    for (size_t i = from; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        const char *f = k->str, *s = v->str;
        if (strcmp(f, "state") == 0)
            t->state = state_of(s);
        else if (strcmp(f, "q") == 0)
            t->queue = s;
        else if (strcmp(f, "f") == 0)
            t->function = s;
        else if (strcmp(f, "host") == 0)
            t->host = s;
        else if (strcmp(f, "ohost") == 0)
            t->owner_host = s;
        else if (strcmp(f, "kind") == 0)
            t->kind = s;
        else if (strcmp(f, "msg") == 0)
            t->msg = s;
        else if (strcmp(f, "uid") == 0)
            t->uid = (uid_t)strtoul(s, NULL, 10);
        else if (strcmp(f, "attempt") == 0)
            t->attempt = (uint32_t)strtoul(s, NULL, 10);
        else if (strcmp(f, "created") == 0)
            t->created_usec = strtoull(s, NULL, 10);
        else if (strcmp(f, "started") == 0)
            t->started_usec = strtoull(s, NULL, 10);
        else if (strcmp(f, "finished") == 0)
            t->finished_usec = strtoull(s, NULL, 10);
        else if (strcmp(f, "lines") == 0)
            t->lines = strtoull(s, NULL, 10);
        else if (strcmp(f, "dropped") == 0)
            t->dropped = strtoull(s, NULL, 10);
        else if (strcmp(f, "result") == 0 && v->len)
            tp->result = aiod__value__unpack(NULL, v->len, (const uint8_t *)s);
        else if (strcmp(f, "t") == 0)
            tp->qt = aiod__queued_task__unpack(NULL, v->len, (const uint8_t *)s);
    }
    t->result = tp->result;
    t->qt = tp->qt;
}

/* Answers with the task of hash reply `r` (from `from`), if the op's
 * peer may see it. */
static void answer_task(cluster_op *op, const redisReply *r, size_t from, const char *what) {
    task_parts tp;
    parse_task(op->id, r, from, &tp);
    /* Lines Redis trimmed from the output stream (it keeps about 10,000)
     * are no longer kept either, as those the host dropped. */
    if (op->kind == OP_SHOW && op->out_len >= 0 && tp.t.lines > (uint64_t)op->out_len)
        tp.t.dropped += tp.t.lines - (uint64_t)op->out_len;
    if (!op->admin && op->uid != tp.t.uid)
        answer_error(op, -EPERM,
                     "task %" PRIu64 " belongs to uid %u; only its owner or an "
                     "administrator may %s it",
                     op->id, (unsigned)tp.t.uid, what);
    else {
        cluster_answer a = {.task = &tp.t};
        answer(op, &a);
    }
    task_parts_free(&tp);
}

static void answer_unknown(cluster_op *op) {
    answer_error(op, -ENOENT,
                 "no task %" PRIu64 " in the cluster (it never existed, or its outcome is no "
                 "longer retained)",
                 op->id);
}

/* Sends on the shared connection, owed to `op`. */
static int op_send_on(rconn *rc, cluster_op *op, rconn_cb cb, int argc, const char **argv,
                      const size_t *lens) {
    int r = rconn_send(rc, cb, op, argc, argv, lens);
    if (r == 0)
        op->owed++;
    return r;
}

static int op_send(cluster_op *op, rconn_cb cb, int argc, const char **argv, const size_t *lens) {
    return op_send_on(link_cmd(), op, cb, argc, argv, lens);
}

static int op_eval(cluster_op *op, const char *script, int n_keys, int n_args, const char **args,
                   const size_t *lens, rconn_cb cb) {
    int r = link_eval(script, n_keys, n_args, args, lens, cb, op);
    if (r == 0)
        op->owed++;
    return r;
}

/* ------------------------------------------------------------ submit */

/*
 * Submits waiting for their replicas (cluster_replicas). WAIT blocks the
 * connection it is sent on, so one WAIT per submit made the last of N
 * concurrent submits wait N times LIMIT_CLUSTER_REPLICAS_WAIT_MS. One
 * WAIT is out at a time and covers every submit whose script ran before
 * it; the submits answered meanwhile wait for the next one, so a submit
 * waits for at most two.
 */
typedef struct replicas_group {
    size_t n, cap;
    cluster_op **ops; /* each holds one owed reply */
} replicas_group;

static replicas_group replicas_next;
static bool replicas_out;

static void send_replicas_wait(void);

static void answer_replicas(cluster_op *op, const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        /* The submit script ran: the task is queued, whatever became of
         * the WAIT. */
        answer_error(op, -EBUSY,
                     "task %" PRIu64 " is queued, but the replicas' confirmation "
                     "(cluster_replicas) did not come from Redis at %s:%d (%s): it may be lost "
                     "if Redis fails now",
                     op->id, link_url()->host, link_url()->port,
                     r ? rconn_reply_text(r) : rconn_why(link_submits()));
        return;
    }
    if (r->integer < cfg.cluster_replicas) {
        answer_error(op, -EBUSY,
                     "task %" PRIu64 " is queued, but only %lld of the %u replicas "
                     "(cluster_replicas) confirmed it within %u ms: it may be lost if Redis "
                     "fails now",
                     op->id, (long long)r->integer, cfg.cluster_replicas,
                     LIMIT_CLUSTER_REPLICAS_WAIT_MS);
        return;
    }
    cluster_answer a = {.id = op->id};
    answer(op, &a);
}

static void answer_group(replicas_group *g, const redisReply *r) {
    for (size_t i = 0; i < g->n; i++)
        if (op_paid(g->ops[i]))
            answer_replicas(g->ops[i], r);
    free(g->ops);
    free(g);
}

static void flush_soon(void);

static void on_replicas(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    replicas_out = false;
    answer_group(priv, r);
    /* The next WAIT goes just before the loop waits: the replies of the
     * scripts that queued behind this WAIT came with it, and join. */
    flush_soon();
}

static void send_replicas_wait(void) {
    if (replicas_out || !replicas_next.n)
        return;
    replicas_group *g = alloc_malloc(sizeof(*g));
    if (!g)
        return; /* the next answered submit tries again */
    *g = replicas_next;
    replicas_next = (replicas_group){0};
    char n[12], ms[12];
    snprintf(n, sizeof(n), "%u", cfg.cluster_replicas);
    snprintf(ms, sizeof(ms), "%u", LIMIT_CLUSTER_REPLICAS_WAIT_MS);
    /* On the connection the submits went on: WAIT counts its writes. */
    const char *argv[] = {"WAIT", n, ms};
    if (rconn_send(link_submits(), on_replicas, g, 3, argv, (size_t[]){4, strlen(n), strlen(ms)}) <
        0) {
        answer_group(g, NULL);
        return;
    }
    replicas_out = true;
}

/* The submit's script ran: it waits for the next WAIT. */
static void wait_for_replicas(cluster_op *op) {
    replicas_group *g = &replicas_next;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        cluster_op **v = alloc_realloc(g->ops, cap * sizeof(*v));
        if (!v) {
            answer_error(op, -ENOMEM,
                         "task %" PRIu64 " is queued, but aiod ran out of memory "
                         "waiting for its replicas",
                         op->id);
            return;
        }
        g->ops = v;
        g->cap = cap;
    }
    op->owed++;
    g->ops[g->n++] = op;
}

/* The submit script's answer for one task: its id, or why not. */
static void submitted(cluster_op *op, const redisReply *e, const char *noserve) {
    if (e->type == REDIS_REPLY_STRING && strcmp(e->str, "NOSERVE") == 0) {
        cluster_answer a = {.err = -ENOENT, .why = noserve};
        answer(op, &a);
        return;
    }
    if (e->type != REDIS_REPLY_STRING) {
        answer_error(op, -EHOSTUNREACH, "cluster: Redis refused the submit: %s",
                     rconn_reply_text(e));
        return;
    }
    op->id = strtoull(e->str, NULL, 10);
    if (cfg.cluster_replicas) {
        wait_for_replicas(op);
        return;
    }
    cluster_answer a = {.id = op->id};
    answer(op, &a);
}

/* The checks the submitting host can make: the call rules by name, and
 * the arguments when it has the function too. Then *ret_argv holds them
 * as the function takes them (converted from text, defaults filled in;
 * *ret_n values, freed with value_argv_free), else it is NULL. */
static int check_call(const Aiod__Call *call, const peer *p, Aiod__Value ***ret_argv, size_t *ret_n,
                      char *why, size_t why_len) {
    *ret_argv = NULL;
    *ret_n = 0;
    if (!call || !call->function || !*call->function) {
        snprintf(why, why_len, "the call names no function");
        return -EINVAL;
    }
    if (strlen(call->function) > 255) {
        snprintf(why, why_len, "the function's name is longer than 255 bytes");
        return -EINVAL;
    }
    if (policy_may_call(p, call->function, why, why_len) < 0)
        return -EPERM;
    fn_entry *fn = plugin_lookup(call->function);
    if (!fn || (fn->def->flags & AIOD_FN_INTERNAL))
        return 0;
    for (size_t i = 0; i < call->n_args; i++)
        if (!call->args[i]) {
            snprintf(why, why_len, "%s: argument %zu is missing", call->function, i + 1);
            return -EINVAL;
        }
    Aiod__Value **argv = NULL;
    int r = value_check_call_borrowed(&fn->sig, call->args, call->n_args, call->args_are_text,
                                      LIMIT_VALUE_DEPTH, &argv, why, why_len);
    if (r < 0)
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
    *ret_argv = argv;
    *ret_n = fn->sig.n_params;
    return 0;
}

/* A submit waiting for the batch it goes in (one script call for every
 * submit of a loop iteration, 256 at most). */
typedef struct submit_op {
    cluster_op op;
    list node;
    uint8_t *blob;
    size_t len;
    char stream[400], serve[400], queue[CLUSTER_QUEUE_NAME_MAX + 1], function[256], uid[12],
        created[24];
    char noserve[400];
} submit_op;

#define SUBMIT_BATCH 256u

static list submits;
/* Sends the submits gathered in a loop iteration just before the loop
 * waits (a prepare handle, started while any wait). */
static uv_prepare_t *submit_flush;

typedef struct submit_batch {
    size_t n;
    submit_op *ops[];
} submit_batch;

static void submit_free(submit_op *s) {
    free(s->blob);
    s->blob = NULL;
}

static void on_submit_batch(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    submit_batch *b = priv;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == b->n;
    for (size_t i = 0; i < b->n; i++) {
        submit_op *s = b->ops[i];
        submit_free(s);
        if (!op_paid(&s->op))
            continue;
        if (!r)
            answer_submit_lost(&s->op);
        else if (!ok)
            answer_error(&s->op, -EHOSTUNREACH, "cluster: Redis refused the submit: %s",
                         rconn_reply_text(r));
        else
            submitted(&s->op, r->element[i], s->noserve);
    }
    free(b);
    flush_soon();
}

/* Sends the submits of this loop iteration, in batches. */
static void flush_submits(uv_prepare_t *h) {
    uv_prepare_stop(h);
    send_replicas_wait();
    while (!list_empty(&submits)) {
        size_t n = 0;
        list *it, *tmp;
        list_foreach_safe(it, tmp, &submits) {
            if (++n == SUBMIT_BATCH)
                break;
        }
        submit_batch *b = alloc_calloc(1, sizeof(*b) + n * sizeof(b->ops[0]));
        const char **args = alloc_calloc(7 * n + 2, sizeof(*args));
        size_t *lens = alloc_calloc(7 * n + 2, sizeof(*lens));
        /* KEYS: the counter, then stream and serve key per task; ARGV: the
         * host, then blob, queue, function, uid and creation per task. */
        size_t k = 0, a = 1 + 2 * n;
        if (b && args && lens) {
            args[k] = "aiod:seq", lens[k] = 8, k++;
            args[a] = link_host(), lens[a] = strlen(args[a]), a++;
        }
        for (; b && args && lens && b->n < n; b->n++) { /* b->n is 0 (calloc) */
            submit_op *s = container_of(list_first(&submits), submit_op, node);
            list_remove(&s->node);
            list_init(&s->node);
            b->ops[b->n] = s;
            const char *keys[] = {s->stream, s->serve};
            for (size_t i = 0; i < 2; i++)
                args[k] = keys[i], lens[k] = strlen(keys[i]), k++;
            args[a] = (const char *)s->blob, lens[a] = s->len, a++;
            const char *texts[] = {s->queue, s->function, s->uid, s->created};
            for (size_t i = 0; i < 4; i++)
                args[a] = texts[i], lens[a] = strlen(texts[i]), a++;
        }
        int r = b && args && lens ? link_eval_on(link_submits(), lua_submit, (int)(1 + 2 * n),
                                                 (int)a, args, lens, on_submit_batch, b)
                                  : -ENOMEM;
        free(args);
        free(lens);
        if (r < 0) {
            /* Each submit gets its answer now (what was not taken stays for
             * the next turn). */
            for (size_t i = 0; b && i < b->n; i++) {
                submit_op *s = b->ops[i];
                submit_free(s);
                if (op_paid(&s->op))
                    answer_unreachable(&s->op);
            }
            free(b);
        }
        if (r == -ENOMEM) {
            /* Not even a batch could be made: every submit left is answered. */
            while (!list_empty(&submits)) {
                submit_op *s = container_of(list_first(&submits), submit_op, node);
                list_remove(&s->node);
                list_init(&s->node);
                submit_free(s);
                if (op_paid(&s->op))
                    answer_error(&s->op, -ENOMEM, "out of memory");
            }
            return;
        }
    }
}

/* Sends what waits (submits, a WAIT) just before the loop waits. */
static void flush_soon(void) {
    if (submit_flush && !uv_is_active((uv_handle_t *)submit_flush))
        uv_prepare_start(submit_flush, flush_submits);
}

int cluster_submit(const char *queue, const Aiod__Call *call, int ownership, const peer *p,
                   cluster_cb cb, void *data, cluster_op **ret, char *why, size_t why_len) {
    if (!link_started())
        return not_cluster(why, why_len);
    if (!cluster_name_valid(queue)) {
        snprintf(why, why_len,
                 "queue '%.64s' is not a name of 1 to 64 letters, digits, '_', "
                 "'.' or '-'",
                 queue);
        return -EINVAL;
    }
    if (ownership != AIOD__OWNERSHIP__SUBMITTED && ownership != AIOD__OWNERSHIP__DETACHED) {
        snprintf(why, why_len, "a queued task is submitted or detached, not attached");
        return -EINVAL;
    }
    Aiod__Value **argv;
    size_t n_argv;
    int r = check_call(call, p, &argv, &n_argv, why, why_len);
    if (r < 0)
        return r;
    if (!link_up()) {
        value_argv_free(argv, n_argv);
        return unreachable(why, why_len);
    }
    /* Stored as the function takes them, when this host has it: `show`
     * gives every host the values (0.2, "x"), as for a local task, not
     * the text typed ("0.2", "\"x\""). Only those given: the running
     * host's version of the function fills in its own defaults. Without
     * the function here, the host that runs it converts them. */
    Aiod__Call typed = *call;
    bool whole = argv != NULL && call->args_are_text && call->n_args <= n_argv;
    for (size_t i = 0; whole && i < call->n_args; i++)
        whole = argv[i] != NULL;
    if (whole) {
        typed.args = argv;
        typed.args_are_text = false;
    }
    Aiod__QueuedTask qt = AIOD__QUEUED_TASK__INIT;
    qt.queue = (char *)queue;
    qt.call = &typed;
    qt.ownership = (Aiod__Ownership)ownership;
    qt.owner_uid = p->uid;
    qt.owner_gid = p->gid;
    qt.owner_pid = p->pid;
    qt.owner_host = (char *)link_host();
    qt.created_usec = link_now_usec();
    submit_op *s = alloc_calloc(1, sizeof(*s));
    if (s) {
        s->len = aiod__queued_task__get_packed_size(&qt);
        s->blob = alloc_malloc(s->len ? s->len : 1);
    }
    if (!s || !s->blob) {
        free(s);
        value_argv_free(argv, n_argv);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    aiod__queued_task__pack(&qt, s->blob);
    value_argv_free(argv, n_argv);
    s->op = (cluster_op){
        .kind = OP_SUBMIT, .uid = p->uid, .admin = p->admin, .cb = cb, .data = data, .owed = 1};
    snprintf(s->noserve, sizeof(s->noserve),
             "no host serves '%s' on queue '%s' (no host working the queue has loaded it)",
             call->function, queue);
    snprintf(s->stream, sizeof(s->stream), "aiod:q:%s:%s", queue, call->function);
    snprintf(s->serve, sizeof(s->serve), "aiod:serve:%s:%s", queue, call->function);
    snprintf(s->queue, sizeof(s->queue), "%s", queue);
    snprintf(s->function, sizeof(s->function), "%s", call->function);
    snprintf(s->uid, sizeof(s->uid), "%u", (unsigned)p->uid);
    snprintf(s->created, sizeof(s->created), "%" PRIu64, qt.created_usec);
    list_insert_tail(&submits, &s->node);
    flush_soon();
    *ret = &s->op;
    return 0;
}

/* ------------------------------------------------------------ show */

static void on_hash(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op))
        return;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        answer_unreachable(op);
    else if (r->elements == 0)
        answer_unknown(op);
    else
        answer_task(op, r, 0, "show");
}

static int send_hgetall(cluster_op *op, rconn_cb cb) {
    char key[32];
    link_task_key(key, sizeof(key), op->id);
    const char *argv[] = {"HGETALL", key};
    return op_send(op, cb, 2, argv, (size_t[]){7, strlen(key)});
}

/* The checks and the op every request on one task begins with. */
static cluster_op *begin(int kind, uint64_t id, const peer *p, cluster_cb cb, void *data, char *why,
                         size_t why_len, int *err) {
    *err = !link_started() ? not_cluster(why, why_len) : !link_up() ? unreachable(why, why_len) : 0;
    if (*err)
        return NULL;
    cluster_op *op = op_new(kind, id, p, cb, data);
    if (!op) {
        snprintf(why, why_len, "out of memory");
        *err = -ENOMEM;
    }
    return op;
}

/* Ends a start whose first command could not be sent. */
static int failed_start(cluster_op *op, int r, char *why, size_t why_len) {
    free(op);
    if (r == -ENOMEM) {
        snprintf(why, why_len, "out of memory");
        return r;
    }
    return unreachable(why, why_len);
}

static void on_out_len(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (op_paid(op) && r && r->type == REDIS_REPLY_INTEGER)
        op->out_len = r->integer;
}

int cluster_show(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret, char *why,
                 size_t why_len) {
    int err;
    cluster_op *op = begin(OP_SHOW, id, p, cb, data, why, why_len, &err);
    if (!op)
        return err;
    /* Before the hash, on the same connection: its answer comes first. */
    char okey[32];
    link_output_key(okey, sizeof(okey), id);
    const char *argv[] = {"XLEN", okey};
    op->out_len = -1;
    int r = op_send(op, on_out_len, 2, argv, (size_t[]){4, strlen(okey)});
    if (r < 0)
        return failed_start(op, r, why, why_len);
    r = send_hgetall(op, on_hash);
    if (r < 0) {
        /* The XLEN's reply frees it (op_paid). */
        op->over = true;
        if (r == -ENOMEM) {
            snprintf(why, why_len, "out of memory");
            return r;
        }
        return unreachable(why, why_len);
    }
    *ret = op;
    return 0;
}

/* ------------------------------------------------------------ await */

static void on_await(rconn *rc, redisReply *r, void *priv);

static int send_await(cluster_op *op) {
    char key[32];
    link_task_key(key, sizeof(key), op->id);
    const char *args[] = {key};
    return op_eval(op, lua_await, 1, 1, args, NULL, on_await);
}

static void on_await(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op))
        return;
    if (!r)
        return; /* Redis went: asked again once it is back (ops_ask_again) */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        answer_error(op, -EHOSTUNREACH, "cluster: Redis failed the await: %s", rconn_reply_text(r));
        return;
    }
    const char *what = r->element[0]->str;
    if (strcmp(what, "none") == 0) {
        answer_unknown(op);
        return;
    }
    if (strcmp(what, "done") == 0) {
        answer_task(op, r, 1, "await");
        return;
    }
    uid_t owner = r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
                      ? (uid_t)strtoul(r->element[1]->str, NULL, 10)
                      : (uid_t)-1;
    if (!op->admin && owner != op->uid) {
        answer_error(op, -EPERM,
                     "task %" PRIu64 " belongs to uid %u; only its owner or an administrator "
                     "may await it",
                     op->id, (unsigned)owner);
        return;
    }
    /* Registered already: the end's event (or the next ask) answers. */
}

/* Registers an await, so that the task's end, or a reconnect, asks again. */
static int register_wait(cluster_op *op) {
    cluster_op *first = hashmap_get_u64(waits, op->id);
    if (first) {
        /* Another await of the same id: chained after the first. */
        op->next_same = first->next_same;
        first->next_same = op;
    } else {
        op->next_same = NULL;
        if (hashmap_put_u64(waits, op->id, op) < 0)
            return -ENOMEM;
    }
    op->waiting = true;
    return 0;
}

int cluster_await(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret,
                  char *why, size_t why_len) {
    int err;
    cluster_op *op = begin(OP_AWAIT, id, p, cb, data, why, why_len, &err);
    if (!op)
        return err;
    if (register_wait(op) < 0) {
        free(op);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    int r = send_await(op);
    if (r < 0) {
        unregister_wait(op);
        return failed_start(op, r, why, why_len);
    }
    *ret = op;
    return 0;
}

/* The answer to the HGETALL of an ended task (a follower's end). */
static void on_ended(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op))
        return;
    if (!r)
        return; /* asked again once Redis is back (ops_ask_again) */
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        answer_unknown(op);
        return;
    }
    answer_task(op, r, 0, "await");
}

void ops_task_ended(uint64_t id) {
    /* An event is a hint, not the answer: it may be forged (anyone who can
     * publish on the channel), or come from a cluster that uses the same
     * channel. The await script reads the state again: a finished task is
     * answered, an unfinished one stays awaited. An answer to the event
     * with the hash as it was answered {"state":"running"}. */
    for (cluster_op *op = hashmap_get_u64(waits, id); op; op = op->next_same)
        if (send_await(op) < 0)
            return; /* down: asked again once Redis is back */
}

void ops_ask_again(void) {
    /* Ends published while the subscription was away are missed, and
     * replies lost with the connection: ask again for every task awaited. */
    size_t state = 0;
    void *entry;
    cluster_op *op;
    while ((op = hashmap_next(waits, &state, &entry)))
        for (; op; op = op->next_same)
            send_await(op);
}

/* ------------------------------------------------------------ cancel */

static void on_cancel(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op))
        return;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        if (r && r->type == REDIS_REPLY_ERROR)
            answer_error(op, -EHOSTUNREACH, "cluster: Redis failed the cancel: %s", r->str);
        else
            answer_unreachable(op);
        return;
    }
    const char *what = r->element[0]->str;
    if (strcmp(what, "none") == 0) {
        answer_unknown(op);
        return;
    }
    if (strcmp(what, "denied") == 0) {
        answer_error(op, -EPERM,
                     "task %" PRIu64 " belongs to uid %s; only its owner or an administrator "
                     "may cancel it",
                     op->id,
                     r->elements > 1 && redis_str(r->element[1]) ? r->element[1]->str : "?");
        return;
    }
    cluster_answer a = {.cancelled = strcmp(what, "finished") != 0};
    answer(op, &a);
}

int cluster_cancel(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret,
                   char *why, size_t why_len) {
    int err;
    cluster_op *op = begin(OP_CANCEL, id, p, cb, data, why, why_len, &err);
    if (!op)
        return err;
    char key[32], uid[12], now[24], ttl[12];
    link_task_key(key, sizeof(key), id);
    snprintf(uid, sizeof(uid), "%u", (unsigned)p->uid);
    snprintf(now, sizeof(now), "%" PRIu64, link_now_usec());
    snprintf(ttl, sizeof(ttl), "%u", cfg.cluster_retain_seconds);
    const char *args[] = {key, uid, p->admin ? "1" : "0", now, ttl, link_host()};
    int r = op_eval(op, lua_cancel, 1, (int)ELEMENTSOF(args), args, NULL, on_cancel);
    if (r < 0)
        return failed_start(op, r, why, why_len);
    *ret = op;
    return 0;
}

/* ------------------------------------------------------------ follow */

static void follow_round(cluster_op *op);

static void on_follow_state(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op) || !r)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        answer_unknown(op);
        return;
    }
    task_parts tp;
    parse_task(op->id, r, 0, &tp);
    if (!op->checked && !op->admin && op->uid != tp.t.uid) {
        answer_error(op, -EPERM,
                     "task %" PRIu64 " belongs to uid %u; only its owner or an administrator "
                     "may follow it",
                     op->id, (unsigned)tp.t.uid);
        task_parts_free(&tp);
        return;
    }
    op->checked = true;
    op->finished = tp.t.state >= TASK_DONE || !op->follow;
    task_parts_free(&tp);
}

/* Lines: [[key, [[entry id, [s, N, l, LINE]], ...]]] or nil. */
static void on_follow_lines(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    cluster_op *op = priv;
    if (!op_paid(op) || !r)
        return; /* the connection comes back and the rounds go on */
    size_t got = 0;
    /* Held while lines go out: the owner may drop the op meanwhile. */
    op->owed++;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        const redisReply *es = r->element[0]->element[1];
        for (size_t i = 0; es->type == REDIS_REPLY_ARRAY && i < es->elements && !op->over; i++) {
            const redisReply *e = es->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !redis_str(e->element[0]))
                continue;
            snprintf(op->last, sizeof(op->last), "%s", e->element[0]->str);
            const redisReply *f = e->element[1];
            const char *line = "";
            int stream = 1;
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
                const char *name = redis_str(f->element[k]), *value = redis_str(f->element[k + 1]);
                if (!name || !value)
                    continue;
                if (strcmp(name, "l") == 0)
                    line = value;
                else if (strcmp(name, "s") == 0)
                    stream = atoi(value);
            }
            op->line(op->data, op->seq++, stream, line);
            got++;
        }
    }
    op->owed--;
    if (op->over) {
        op_free_if_done(op);
        return;
    }
    if (got == 0 && op->finished && op->checked) {
        /* Everything is read: the end, with the task as it ended (on the
         * follower's connection: if it goes, the next round asks again). */
        char key[32];
        link_task_key(key, sizeof(key), op->id);
        const char *argv[] = {"HGETALL", key};
        if (rconn_send(op->rc, on_ended, op, 2, argv, (size_t[]){7, strlen(key)}) == 0)
            op->owed++;
        return;
    }
    follow_round(op);
}

/* One round on the follower's own connection: the task's state, then
 * the lines after the last one read, waiting up to a second for more
 * while the task runs. */
static void follow_round(cluster_op *op) {
    if (op->over || !op->rc || !rconn_up(op->rc))
        return;
    char key[32], okey[32], block[8], count[8];
    link_task_key(key, sizeof(key), op->id);
    link_output_key(okey, sizeof(okey), op->id);
    snprintf(block, sizeof(block), "%u", LIMIT_CLUSTER_FOLLOW_BLOCK_MS);
    snprintf(count, sizeof(count), "%u", 512u);
    const char *hget[] = {"HGETALL", key};
    if (rconn_send(op->rc, on_follow_state, op, 2, hget, (size_t[]){7, strlen(key)}) == 0)
        op->owed++;
    /* Once it ended, nothing more will come: no waiting. */
    const char *xread[] = {"XREAD", "COUNT", count, "STREAMS", okey, op->last, NULL, NULL};
    int argc = 6;
    if (!op->finished) {
        const char *blocking[] = {"XREAD", "COUNT",   count, "BLOCK",
                                  block,   "STREAMS", okey,  op->last};
        memcpy(xread, blocking, sizeof(blocking));
        argc = 8;
    }
    size_t lens[ELEMENTSOF(xread)];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(xread[i]);
    if (rconn_send(op->rc, on_follow_lines, op, argc, xread, lens) == 0)
        op->owed++;
}

static void follower_up(rconn *rc, void *data) {
    (void)rc;
    follow_round(data);
}

static const rconn_ops follower_ops = {.up = follower_up,
                                       .blocks_ms = LIMIT_CLUSTER_FOLLOW_BLOCK_MS};

/* Whether another reader of a queued task's output would be one too many,
 * on this host or for this user (aiod_limits.h): the reason in `why`. */
static bool too_many_followers(const peer *p, char *why, size_t why_len) {
    if (followers >= LIMIT_CLUSTER_FOLLOWERS) {
        snprintf(why, why_len,
                 "too many readers of queued tasks' output on this host: the limit (%u, each a "
                 "Redis connection) is reached; try again once some have ended",
                 LIMIT_CLUSTER_FOLLOWERS);
        return true;
    }
    if (!p->admin &&
        hashmap_count_get(followers_by_uid, p->uid) >= LIMIT_CLUSTER_FOLLOWERS_PER_UID) {
        snprintf(why, why_len,
                 "too many readers of queued tasks' output for uid %u on this host: the limit "
                 "(%u, each a Redis connection) is reached; try again once some have ended",
                 (unsigned)p->uid, LIMIT_CLUSTER_FOLLOWERS_PER_UID);
        return true;
    }
    return false;
}

int cluster_follow(uint64_t id, const peer *p, bool follow, cluster_line_cb line, cluster_cb cb,
                   void *data, cluster_op **ret, char *why, size_t why_len) {
    int err;
    cluster_op *op = begin(OP_FOLLOW, id, p, cb, data, why, why_len, &err);
    if (!op)
        return err;
    if (too_many_followers(p, why, why_len)) {
        free(op);
        return -EDQUOT;
    }
    op->line = line;
    op->follow = follow;
    op->finished = !follow;
    snprintf(op->last, sizeof(op->last), "0-0");
    int r =
        rconn_new(link_loop(), link_url(), link_password(), "follower", &follower_ops, op, &op->rc);
    if (r < 0) {
        free(op);
        snprintf(why, why_len, "out of memory");
        return r;
    }
    followers++;
    hashmap_count_add(&followers_by_uid, op->uid, +1);
    *ret = op;
    return 0;
}

/* ------------------------------------------------------------ life */

void cluster_op_cancel(cluster_op *op) {
    if (!op)
        return;
    unregister_wait(op);
    op->over = true;
    /* Its connection goes now: the replies it owed come back empty (now,
     * or once the callback that is running returns). */
    drop_conn(op);
    op_free_if_done(op);
}

int ops_start(uv_loop_t *loop) {
    list_init(&submits);
    waits = hashmap_new(0);
    submit_flush = alloc_malloc(sizeof(*submit_flush));
    if (!waits || !submit_flush)
        return -ENOMEM;
    uv_prepare_init(loop, submit_flush);
    return 0;
}

void ops_stop(void) {
    /* Submits not sent: their requests were abandoned with their
     * connections (or are answered unreachable now). */
    while (submits.next && !list_empty(&submits)) {
        submit_op *s = container_of(list_first(&submits), submit_op, node);
        list_remove(&s->node);
        submit_free(s);
        if (op_paid(&s->op))
            answer_unreachable(&s->op);
    }
    if (submit_flush) {
        uv_close((uv_handle_t *)submit_flush, (uv_close_cb)free);
        submit_flush = NULL;
    }
    /* Submits whose WAIT was never sent (the connections went first). */
    for (size_t i = 0; i < replicas_next.n; i++)
        if (op_paid(replicas_next.ops[i]))
            answer_unreachable(replicas_next.ops[i]);
    free(replicas_next.ops);
    replicas_next = (replicas_group){0};
    replicas_out = false;
    hashmap_free(waits);
    waits = NULL;
}

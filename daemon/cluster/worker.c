/*
 * Working the queues (worker.h).
 *
 * A job is one entry this host holds in the consumer group: read or
 * claimed (backlog), being started (the start script), looked up (the
 * owner's groups), running as a local task, or ended and not yet written
 * (Redis was down). While it holds the entry, the periodic refresh renews
 * the claim (XCLAIM with idle 0), so no other host takes it.
 */
#include "cluster/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aiod-pb.h"
#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/hashmap.h"
#include "base/list.h"
#include "base/value.h"
#include "cluster/link.h"
#include "cluster/lua.h"
#include "core/finish.h"
#include "core/limit.h"
#include "core/output.h"
#include "core/persist.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"
#include "system/config.h"
#include "system/identity.h"
#include "system/log.h"
#include "system/policy.h"

#define KEY_MAX (16 + CLUSTER_QUEUE_NAME_MAX + 256)
/* Redis's heartbeat of the cluster and the calm after a stall (lua.h). */
#define KEY_PULSE "aiod:pulse"
#define KEY_CALM "aiod:calm"
/* Every host's cluster_visibility_ms: field HOST, value "MS SEEN_MS" (the
 * host hashes cannot be listed without SCAN, which the ACL user lacks). */
#define KEY_VISIBILITY "aiod:vis"
/* A field of a host silent for this long is dropped (ms). */
#define VISIBILITY_FORGET_MS (7ull * 24 * 3600 * 1000)

/* One stream this host reads: queue and function. Never removed (jobs
 * name it by index); `active` while the function is loaded. */
typedef struct wstream {
    char key[KEY_MAX];
    char serve[KEY_MAX];
    /* Where the next XAUTOCLAIM looks from: each call looks at a bounded
     * number of pending entries and says where it stopped ("0-0": the
     * start again). */
    char claim_from[48];
    bool active;
    /* The consumer group exists (made on the reader's connection). */
    bool grouped;
} wstream;

enum job_phase {
    J_BACKLOG,    /* read or claimed, not started */
    J_STARTING,   /* the start script is in flight */
    J_LOOKUP,     /* the owner's groups are looked up */
    J_RUNNING,    /* a local task */
    J_ENDED,      /* ended, its outcome being written */
    J_UNWRITTEN,  /* ended, Redis was down: written when it is back */
    J_UNSTARTING, /* not started after all: the unstart script is in flight */
};

typedef struct job {
    list node; /* W.backlog, or W.held */
    uint64_t id;
    uint32_t stream;
    char eid[48];
    uint8_t phase;
    /* Holds a capacity slot (from starting until its task ends). */
    bool slot;
    /* Cancelled by the cluster before its task existed. */
    bool cancel_asked;
    Aiod__QueuedTask *qt;
    fn_entry *fn;
    identity_req *lookup;
    task *t;
    waiter w;
    output_sink sink;
    bool sink_on;
    unsigned lines_in_flight;
    bool task_ended;
    /* Freed, but lines are still on their way: the last reply frees it. */
    bool dead;
    /* On W.ending while its outcome waits to be written. */
    list end_node;
    /* The outcome to write (owned). */
    int state;
    char *kind, *msg;
    uint8_t *result;
    size_t result_len;
    uint64_t lines, dropped, finished_usec;
} job;

static struct {
    wstream *streams;
    uint32_t n_streams;
    char queues[CLUSTER_QUEUES_MAX][CLUSTER_QUEUE_NAME_MAX + 1];
    int n_queues;
    /* The connection that blocks in XREADGROUP. */
    rconn *reader;
    bool reading;
    /* Own pending entries were read since the link came up. */
    bool own_read;
    /* Redis's ACL user may not run what lua_claim and lua_pulse call
     * (TIME, GET, SET): claims are plain XAUTOCLAIMs, with no stall check. */
    bool claim_plain;
    /* This machine's boot id (the kernel's), advertised with the pid: a
     * host can tell its own dead predecessor from another live aiod under
     * its name. */
    char boot_id[40];
    /* This process's mark on the tasks it takes (the hash's `run`): a task
     * running here by this mark, with no job for it, was taken by a fetch
     * or start whose reply the link lost, and never started here. */
    char run_id[80];
    /* A limit of this host (max_tasks, max_tasks_per_uid) sent a task back:
     * no fetch until a task ends here or the period comes. */
    bool fetch_paused;
    /* The last lua_fetch found nothing: the next read waits in Redis. */
    bool wait_next;
    /* The stream lua_fetch begins with next. */
    uint32_t fetch_next;
    /* No claiming of silent hosts' entries before this (uv_now ms): after
     * a reconnect, every host first renews its own claims. */
    uint64_t claim_after;
    list backlog;
    list held;
    /* Jobs whose outcome is to be written in the next batch, and the
     * prepare handle that writes them before the loop waits again. */
    list ending;
    uv_prepare_t *flush;
    /* Every job by task id. */
    hashmap *jobs;
    /* Cancels published for tasks this host holds no job for (yet): the
     * fetch that marked one running here may still be on its way. Two
     * generations of task ids, the older dropped every EARLY_CANCEL_KEEP_MS,
     * so that each is kept that long at least and twice that at most. */
    hashmap *early_cancels, *early_cancels_old;
    uint64_t early_since_ms;
    unsigned busy;
    unsigned running;
    bool frozen;
    uv_timer_t *timer;
    /* The claim round: the stream it tries next, how many streams it has
     * left, and when its claim in flight was sent (0: none). */
    uint32_t claim_next, claim_left;
    uint64_t claim_sent_ms;
    /* The hosts with another cluster_visibility_ms said last time, as
     * ",NAME=MS," pieces: each is said once, not every period. */
    char *visibility_said;
} W;

/* The period (ms): claims are renewed, silent hosts' entries claimed and
 * the host advertised once per third of the visibility. */
static uint64_t period_ms(void) {
    return cfg.cluster_visibility_ms / 3 ? cfg.cluster_visibility_ms / 3 : 1;
}

static void maybe_read(void);
static void pump(void);
static void write_outcome(job *j);
static void write_unwritten(void);
static void job_run(job *j, const char *blob, size_t len, const char *prev);
static void unstart(job *j);

/* ------------------------------------------------------------ streams */

static void stream_keys(wstream *s, const char *queue, const char *function) {
    snprintf(s->key, sizeof(s->key), "aiod:q:%s:%s", queue, function);
    snprintf(s->serve, sizeof(s->serve), "aiod:serve:%s:%s", queue, function);
}

static int find_stream(const char *key) {
    for (uint32_t i = 0; i < W.n_streams; i++)
        if (strcmp(W.streams[i].key, key) == 0)
            return (int)i;
    return -1;
}

/* Makes the list match the queues × the functions loaded now. */
static int sync_streams(void) {
    for (uint32_t i = 0; i < W.n_streams; i++)
        W.streams[i].active = false;
    for (size_t p = 0; p < plugin_count(); p++) {
        plugin *pl = plugin_at(p);
        for (size_t f = 0; f < pl->n_fns; f++) {
            const fn_entry *fn = &pl->fns[f];
            if (fn->def->flags & AIOD_FN_INTERNAL)
                continue;
            for (int q = 0; q < W.n_queues; q++) {
                wstream s = {.active = true};
                stream_keys(&s, W.queues[q], fn->full_name);
                int i = find_stream(s.key);
                if (i >= 0) {
                    W.streams[i].active = true;
                    continue;
                }
                wstream *n = alloc_realloc(W.streams, (W.n_streams + 1) * sizeof(*n));
                if (!n)
                    return -ENOMEM;
                W.streams = n;
                W.streams[W.n_streams++] = s;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ jobs */

static job *job_new(uint64_t id, uint32_t stream, const char *eid) {
    job *j = alloc_calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->id = id;
    j->stream = stream;
    list_init(&j->end_node);
    snprintf(j->eid, sizeof(j->eid), "%s", eid);
    if (hashmap_put_u64(W.jobs, id, j) < 0) {
        free(j);
        return NULL;
    }
    list_insert_tail(&W.backlog, &j->node);
    /* Cancelled between the fetch and its reply: it ends before starting. */
    if ((W.early_cancels && hashmap_remove_u64(W.early_cancels, id)) ||
        (W.early_cancels_old && hashmap_remove_u64(W.early_cancels_old, id)))
        j->cancel_asked = true;
    return j;
}

static void job_free(job *j) {
    list_remove(&j->node);
    list_init(&j->node);
    list_remove(&j->end_node);
    list_init(&j->end_node);
    hashmap_remove_u64(W.jobs, j->id);
    if (j->slot)
        W.busy--;
    if (j->lookup)
        identity_cancel(j->lookup);
    if (j->sink_on)
        output_sink_detach(&j->sink);
    if (j->t) {
        task_remove_waiter(&j->w);
        task_unref(j->t);
    }
    if (j->qt)
        aiod__queued_task__free_unpacked(j->qt, NULL);
    j->t = NULL;
    j->qt = NULL;
    j->lookup = NULL;
    j->sink_on = false;
    free(j->kind);
    free(j->msg);
    free(j->result);
    j->kind = j->msg = NULL;
    j->result = NULL;
    if (j->lines_in_flight)
        j->dead = true;
    else
        free(j);
}

static void release_slot(job *j) {
    if (j->slot) {
        j->slot = false;
        W.busy--;
    }
}

/* Ends a job that could not run (or did): the outcome is written. */
static void job_end(job *j, int state, const char *kind, const char *msg) {
    release_slot(j);
    j->state = state;
    j->kind = kind ? alloc_strdup(kind) : NULL;
    j->msg = msg ? alloc_strdup(msg) : NULL;
    j->finished_usec = link_now_usec();
    j->task_ended = true;
    write_outcome(j);
}

/* ------------------------------------------------------------ outcome */

/* Outcomes written in one script call at most. */
#define FINISH_BATCH 256u

/* One call of lua_finish: its jobs, and the text of their keys and numbers. */
typedef struct finish_batch {
    size_t n;
    struct finish_item {
        job *j;
        char task_key[32], out_key[32], fin[24], lines[24], dropped[24];
    } items[];
} finish_batch;

/* lua_finish's trim was refused (not for a stream that is gone): said once
 * per run of the daemon, as the entries only pile up. */
static void say_notrim(const redisReply *e) {
    static bool said;
    if (said || e->type != REDIS_REPLY_STRING || strncmp(e->str, "notrim ", 7) != 0)
        return;
    said = true;
    log_warning("cluster: cannot trim the queues' streams: %s; acknowledged entries stay in "
                "them (the ACL user needs +xpending, +xinfo|groups and +xtrim: docs/cluster.md)",
                e->str + 7);
}

static void on_finished(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    finish_batch *b = priv;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && (r->elements == b->n || r->elements == b->n + 1);
    if (r && !ok)
        log_warning("cluster: cannot record %zu outcome(s): %s; trying again", b->n,
                    rconn_reply_text(r));
    if (ok && r->elements == b->n + 1)
        say_notrim(r->element[b->n]);
    for (size_t i = 0; i < b->n; i++) {
        job *j = b->items[i].j;
        if (!ok) {
            j->phase = J_UNWRITTEN; /* written when Redis answers again */
            continue;
        }
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && strcmp(e->str, "lost") == 0)
            log_warning("cluster: task %" PRIu64 " ended here, but another host had taken it "
                        "over (this host was cut off longer than cluster_visibility_ms); its "
                        "outcome here is dropped",
                        j->id);
        job_free(j);
    }
    free(b);
    pump();
}

/* Writes the outcomes that ended since the last call, in batches. */
static void flush_outcomes(uv_prepare_t *h) {
    uv_prepare_stop(h);
    static const char *const states[] = {
        [TASK_DONE] = "done", [TASK_FAILED] = "failed", [TASK_CANCELLED] = "cancelled"};
    while (!list_empty(&W.ending)) {
        size_t n = 0;
        list *it, *tmp;
        list_foreach_safe(it, tmp, &W.ending) {
            if (++n == FINISH_BATCH)
                break;
        }
        finish_batch *b = alloc_calloc(1, sizeof(*b) + n * sizeof(b->items[0]));
        const char **args = alloc_calloc(11 * n + 2, sizeof(*args));
        size_t *lens = alloc_calloc(11 * n + 2, sizeof(*lens));
        if (!b || !args || !lens) {
            free(b);
            free(args);
            free(lens);
            /* Out of memory: the period's write_unwritten tries again. */
            while (!list_empty(&W.ending)) {
                job *j = container_of(list_first(&W.ending), job, end_node);
                list_remove(&j->end_node);
                list_init(&j->end_node);
                j->phase = J_UNWRITTEN;
            }
            return;
        }
        char ttl[16];
        snprintf(ttl, sizeof(ttl), "%u", cfg.cluster_retain_seconds);
        /* KEYS first (3 per job), then the host, the TTL and 8 per job. */
        size_t k = 0, a = 3 * n;
#define PUT_KEY(v) (args[k] = (v), lens[k] = strlen(args[k]), k++)
#define PUT_ARG(v, l) (args[a] = (v), lens[a] = (l), a++)
#define PUT_TEXT(v) PUT_ARG(v, strlen(v))
        PUT_TEXT(link_host());
        PUT_TEXT(ttl);
        for (b->n = 0; b->n < n; b->n++) {
            job *j = container_of(list_first(&W.ending), job, end_node);
            list_remove(&j->end_node);
            list_init(&j->end_node);
            struct finish_item *f = &b->items[b->n];
            f->j = j;
            link_task_key(f->task_key, sizeof(f->task_key), j->id);
            link_output_key(f->out_key, sizeof(f->out_key), j->id);
            snprintf(f->fin, sizeof(f->fin), "%" PRIu64, j->finished_usec);
            snprintf(f->lines, sizeof(f->lines), "%" PRIu64, j->lines);
            snprintf(f->dropped, sizeof(f->dropped), "%" PRIu64, j->dropped);
            PUT_KEY(f->task_key);
            PUT_KEY(W.streams[j->stream].key);
            PUT_KEY(f->out_key);
            PUT_TEXT(j->eid);
            PUT_TEXT(j->state >= TASK_DONE && j->state <= TASK_CANCELLED ? states[j->state]
                                                                         : "failed");
            PUT_TEXT(j->kind ? j->kind : "");
            PUT_TEXT(j->msg ? j->msg : "");
            PUT_ARG(j->result ? (const char *)j->result : "", j->result_len);
            PUT_TEXT(f->fin);
            PUT_TEXT(f->lines);
            PUT_TEXT(f->dropped);
        }
#undef PUT_KEY
#undef PUT_ARG
#undef PUT_TEXT
        int r = link_eval(lua_finish, (int)(3 * n), (int)a, args, lens, on_finished, b);
        free(args);
        free(lens);
        if (r < 0) {
            for (size_t i = 0; i < b->n; i++)
                b->items[i].j->phase = J_UNWRITTEN;
            free(b);
            return;
        }
    }
}

/* The job's outcome is to be written: with the others that end in this
 * loop iteration, in one script call. */
static void write_outcome(job *j) {
    j->phase = J_ENDED;
    list_insert_tail(&W.ending, &j->end_node);
    if (!uv_is_active((uv_handle_t *)W.flush))
        uv_prepare_start(W.flush, flush_outcomes);
}

/* ------------------------------------------------------------ output */

static void on_line_sent(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)r;
    job *j = priv;
    j->lines_in_flight--;
    if (j->dead) {
        if (!j->lines_in_flight)
            free(j);
        return;
    }
    if (j->sink_on && output_sink_behind(&j->sink))
        output_sink_pump(&j->sink);
}

static void sink_line(output_sink *s, uint64_t task_id, uint64_t seq, int stream,
                      const char *line) {
    (void)task_id, (void)seq;
    job *j = container_of(s, job, sink);
    char key[32], maxlen[16], st[4];
    link_output_key(key, sizeof(key), j->id);
    snprintf(maxlen, sizeof(maxlen), "%u", LIMIT_CLUSTER_OUTPUT_LINES);
    snprintf(st, sizeof(st), "%d", stream);
    const char *argv[] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "s", st, "l", line};
    size_t lens[ELEMENTSOF(argv)];
    for (size_t i = 0; i < ELEMENTSOF(argv); i++)
        lens[i] = strlen(argv[i]);
    if (rconn_send(link_cmd(), on_line_sent, j, (int)ELEMENTSOF(argv), argv, lens) == 0)
        j->lines_in_flight++;
    j->lines++;
}

/* At most this many lines of one task on their way to Redis: beyond it
 * the task's lines wait in its output ring, as for a slow follower. */
#define LINES_IN_FLIGHT_MAX 256u

static bool sink_room(output_sink *s) {
    job *j = container_of(s, job, sink);
    return link_up() && j->lines_in_flight < LINES_IN_FLIGHT_MAX;
}

static void sink_end(output_sink *s, uint64_t task_id, uint64_t dropped, int state) {
    (void)task_id, (void)state;
    job *j = container_of(s, job, sink);
    j->sink_on = false;
    j->dropped = dropped;
    if (j->task_ended && j->phase == J_RUNNING)
        write_outcome(j);
}

static const output_sink_ops sink_ops = {.line = sink_line, .room = sink_room, .end = sink_end};

/* ------------------------------------------------------------ running */

static void on_task_end(waiter *w, task *t) {
    job *j = w->data;
    W.running--;
    W.fetch_paused = false;
    release_slot(j);
    if (W.frozen && t->state == TASK_CANCELLED && !j->cancel_asked) {
        /* Cut off by the stop before it started (it waited for a limit
         * here): queued again, for another host or this one restarted. */
        if (!t->started_usec) {
            unstart(j);
            return;
        }
        /* Cut off while it ran: Redis keeps it running; on_interrupt
         * decides where it is claimed. */
        job_free(j);
        return;
    }
    j->state = t->state;
    j->finished_usec = link_now_usec(); /* the clock of `started` */
    if (t->state == TASK_DONE && t->result) {
        j->result_len = aiod__value__get_packed_size(t->result);
        j->result = alloc_malloc(j->result_len ? j->result_len : 1);
        if (j->result)
            aiod__value__pack(t->result, j->result);
        else
            j->result_len = 0;
    }
    j->kind = t->error_kind ? alloc_strdup(t->error_kind) : NULL;
    j->msg = t->error_message ? alloc_strdup(t->error_message) : NULL;
    j->task_ended = true;
    if (!j->sink_on)
        write_outcome(j);
    pump();
}

/* The owner's groups are known: the call rules of this host decide, then
 * the task starts. */
static void on_unstarted(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)r;
    job_free(priv);
}

/* The host stops between marking a task running and starting it: the task
 * is queued again in Redis, for another host (or this one, started again),
 * and its entry stays pending here until claimed. */
static void unstart(job *j) {
    char key[32], now[24], ttl[16];
    link_task_key(key, sizeof(key), j->id);
    snprintf(now, sizeof(now), "%" PRIu64, link_now_usec());
    snprintf(ttl, sizeof(ttl), "%u", cfg.cluster_retain_seconds);
    const char *args[] = {key, link_host(), now, ttl};
    release_slot(j);
    j->phase = J_UNSTARTING; /* the stop waits for it (worker_unwritten) */
    if (link_eval(lua_unstart, 1, (int)ELEMENTSOF(args), args, NULL, on_unstarted, j) < 0)
        job_free(j);
}

static void on_identity(void *data, const gid_t *groups, size_t n_groups) {
    job *j = data;
    j->lookup = NULL;
    if (W.frozen) {
        unstart(j);
        return;
    }
    const Aiod__QueuedTask *qt = j->qt;
    const Aiod__Call *call = qt->call;
    peer p = {.uid = qt->owner_uid,
              .gid = qt->owner_gid,
              .pid = qt->owner_pid,
              .groups = (gid_t *)groups,
              .n_groups = n_groups};
    p.admin = policy_is_admin(&p);
    char why[LIMIT_MESSAGE];
    if (j->cancel_asked) {
        job_end(j, TASK_CANCELLED, "CancelledError", "cancelled before it started");
        return;
    }
    if (policy_may_call(&p, j->fn->full_name, why, sizeof(why)) < 0) {
        char msg[LIMIT_MESSAGE + 64];
        snprintf(msg, sizeof(msg), "host %s: %s", link_host(), why);
        job_end(j, TASK_FAILED, "PermissionError", msg);
        return;
    }
    Aiod__Value **argv = NULL;
    int r = value_check_call_borrowed(&j->fn->sig, call->args, call->n_args, call->args_are_text,
                                      LIMIT_VALUE_DEPTH, &argv, why, sizeof(why));
    if (r < 0) {
        job_end(j, TASK_FAILED, r == -ENOMEM ? "MemoryError" : "TypeError",
                r == -ENOMEM ? "out of memory" : why);
        return;
    }
    task *t;
    r = task_new(j->fn, argv, j->fn->sig.n_params, AIOD__OWNERSHIP__DETACHED, qt->owner_uid, 0,
                 NULL, &t);
    if (r == -EAGAIN || r == -EDQUOT || r == -ENOBUFS) {
        /* A limit of this host, full for now: another host (or this one,
         * once it claims the entry back) runs it, rather than fail an
         * acknowledged task while others may have room. */
        log_notice("cluster: task %" PRIu64 ": %s is reached here; queued again for a host "
                   "with room",
                   j->id,
                   r == -EAGAIN   ? "max_tasks"
                   : r == -EDQUOT ? "max_tasks_per_uid"
                                  : "max_task_bytes_per_uid");
        /* Not another fetch at once: it would take (and put back) the whole
         * queue. A task's end here, or the period, reads again. */
        W.fetch_paused = true;
        unstart(j);
        return;
    }
    if (r == -E2BIG) {
        snprintf(why, sizeof(why),
                 "host %s: the task's arguments alone would hold more than "
                 "max_task_bytes_per_uid (%zu bytes)",
                 link_host(), policy_lim.max_task_bytes_per_uid);
        job_end(j, TASK_FAILED, "LimitError", why);
        return;
    }
    if (r < 0) {
        snprintf(why, sizeof(why), "host %s cannot make the task: out of memory", link_host());
        job_end(j, TASK_FAILED, "MemoryError", why);
        return;
    }
    j->t = t;
    /* The call rules apply to what it spawns too (NULL, no memory: by
     * uid alone). */
    if (p.uid != 0)
        t->run->caller = caller_new(&p);
    j->phase = J_RUNNING;
    W.running++;
    output *o = task_output(t);
    if (o) {
        j->sink.ops = &sink_ops;
        /* Holding: a burst waits for Redis (LINES_IN_FLIGHT_MAX on their
         * way) rather than overrun the ring, as for a slow local follower;
         * with Redis away, for output_hold_ms at most. */
        j->sink_on = output_attach(o, &j->sink, true, true, t->state, true) == 0;
    }
    j->w.fn = on_task_end;
    j->w.data = j;
    task_add_waiter(t, &j->w);
    sched_start(t);
}

/* Whether the function's tasks run again after an interruption. */
static bool retries(const char *function) {
    fn_entry *fn = plugin_lookup(function);
    return fn && persist_retries_on_interrupt(fn);
}

/* A task marked running here (lua_start or lua_fetch): its call decoded,
 * its function found, then the owner's groups looked up (on_identity goes
 * on). `prev` names the host it was interrupted on, or is "". */
static void job_run(job *j, const char *blob, size_t len, const char *prev) {
    j->qt = blob ? aiod__queued_task__unpack(NULL, len, (const uint8_t *)blob) : NULL;
    if (!j->qt || !j->qt->call || !j->qt->call->function) {
        job_end(j, TASK_FAILED, "BadMessage", "the queued task does not decode");
        return;
    }
    if (*prev)
        log_notice("cluster: task %" PRIu64 " (%s) runs again here: host %s was interrupted "
                   "while running it (on_interrupt = retry)",
                   j->id, j->qt->call->function, prev);
    j->fn = plugin_lookup(j->qt->call->function);
    if (!j->fn || (j->fn->def->flags & AIOD_FN_INTERNAL)) {
        char msg[400];
        snprintf(msg, sizeof(msg), "host %s no longer has function '%s'", link_host(),
                 j->qt->call->function);
        job_end(j, TASK_FAILED, "UnknownFunction", msg);
        return;
    }
    j->phase = J_LOOKUP;
    int k = identity_lookup(link_loop(), j->qt->owner_uid, j->qt->owner_gid, on_identity, j,
                            &j->lookup);
    if (k < 0)
        job_end(j, TASK_FAILED, "MemoryError", "out of memory");
}

static void on_started(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    job *j = priv;
    if (!r) {
        /* The connection went: back to the backlog, to start again. */
        release_slot(j);
        j->phase = J_BACKLOG;
        list_remove(&j->node);
        list_insert_tail(W.backlog.next, &j->node);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        log_warning("cluster: cannot start task %" PRIu64 ": %s", j->id, rconn_reply_text(r));
        job_free(j); /* left pending: claimed again later */
        pump();
        return;
    }
    if (strcmp(r->element[0]->str, "run") == 0 && W.frozen) {
        unstart(j);
        return;
    }
    if (strcmp(r->element[0]->str, "run") != 0 || r->elements < 3) {
        job_free(j); /* cancelled, finished, or ended Interrupted by the script */
        pump();
        return;
    }
    const redisReply *blob = r->element[1], *prev = r->element[2];
    job_run(j, blob->type == REDIS_REPLY_STRING ? blob->str : NULL, blob->len,
            prev->type == REDIS_REPLY_STRING ? prev->str : "");
}

static void start_job(job *j) {
    char task_key[32], now[24], max[12], ttl[16];
    char msg[300];
    link_task_key(task_key, sizeof(task_key), j->id);
    snprintf(now, sizeof(now), "%" PRIu64, link_now_usec());
    snprintf(max, sizeof(max), "%u", LIMIT_INTERRUPT_RETRIES);
    snprintf(ttl, sizeof(ttl), "%u", cfg.cluster_retain_seconds);
    snprintf(msg, sizeof(msg),
             "host %%s stopped, crashed or was cut off from Redis while running it; host %s "
             "did not run it again (on_interrupt = fail)",
             link_host());
    /* The function's policy is this host's: the stream is of one function. */
    const char *fn = strrchr(W.streams[j->stream].key, ':') + 1;
    const char *args[] = {task_key, W.streams[j->stream].key,
                          j->eid,   link_host(),
                          now,      retries(fn) ? "1" : "0",
                          max,      msg,
                          ttl,      W.run_id};
    j->phase = J_STARTING;
    j->slot = true;
    W.busy++;
    list_remove(&j->node);
    list_insert_tail(&W.held, &j->node);
    if (link_eval(lua_start, 2, (int)ELEMENTSOF(args), args, NULL, on_started, j) < 0) {
        release_slot(j);
        j->phase = J_BACKLOG;
        list_remove(&j->node);
        list_insert_tail(W.backlog.next, &j->node);
    }
}

/* Starts what the backlog holds, as far as capacity goes; then reads more. */
static void pump(void) {
    while (!W.frozen && link_up() && W.busy < cfg.cluster_capacity && !list_empty(&W.backlog)) {
        job *j = container_of(list_first(&W.backlog), job, node);
        start_job(j);
        if (j->phase == J_BACKLOG)
            break;
    }
    maybe_read();
}

/* ------------------------------------------------------------ reading */

/* Takes the entries of one XREADGROUP or XAUTOCLAIM answer for `stream`:
 * [[entry id, [field, value, ...]], ...]; how many are new jobs. */
static size_t take_entries(uint32_t stream, const redisReply *entries) {
    size_t taken = 0;
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *f = e->element[1];
        uint64_t id = 0;
        for (size_t k = 0; f && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
            if (redis_str(f->element[k]) && strcmp(f->element[k]->str, "id") == 0 &&
                redis_str(f->element[k + 1]))
                id = strtoull(f->element[k + 1]->str, NULL, 10);
        if (!id) {
            /* An entry without content (deleted): only acknowledge it. */
            const char *argv[] = {"XACK", W.streams[stream].key, "aiod", e->element[0]->str};
            rconn_send(link_cmd(), NULL, NULL, 4, argv,
                       (size_t[]){4, strlen(argv[1]), 4, e->element[0]->len});
            continue;
        }
        if (hashmap_get_u64(W.jobs, id))
            continue; /* held already (our own pending entry, read again) */
        if (job_new(id, stream, e->element[0]->str))
            taken++;
        else
            log_warning("cluster: out of memory taking task %" PRIu64 "; it is left to others", id);
    }
    return taken;
}

/* Entries read by XREADGROUP: [[stream key, entries], ...], or nil. */
static void on_read(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    W.reading = false;
    if (!r)
        return; /* the connection went; reading starts again when it is back */
    size_t taken = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: the stream or its group was deleted; make them again. */
        log_warning("cluster: reading the queues: %s", r->str);
        for (uint32_t i = 0; i < W.n_streams; i++)
            W.streams[i].grouped = false;
    } else if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
                s->element[0]->type != REDIS_REPLY_STRING)
                continue;
            int k = find_stream(s->element[0]->str);
            if (k >= 0)
                taken += take_entries((uint32_t)k, s->element[1]);
        }
    (void)taken;
    W.own_read = true;
    pump();
}

/* Tasks lua_fetch took and started here: {{stream, entry id, task id,
 * QueuedTask bytes}, ...}; none means the next read waits in Redis. */
static void on_fetched(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)priv;
    W.reading = false;
    if (!r)
        return; /* the connection went; reading starts again when it is back */
    if (r->type != REDIS_REPLY_ARRAY) {
        log_warning("cluster: reading the queues: %s", rconn_reply_text(r));
        for (uint32_t i = 0; i < W.n_streams; i++)
            W.streams[i].grouped = false;
        return; /* the next period reads again */
    }
    if (r->elements == 0)
        W.wait_next = true;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_STRING || e->element[2]->type != REDIS_REPLY_STRING)
            continue;
        int k = find_stream(e->element[0]->str);
        uint64_t id = strtoull(e->element[2]->str, NULL, 10);
        job *j = k >= 0 && !hashmap_get_u64(W.jobs, id)
                     ? job_new(id, (uint32_t)k, e->element[1]->str)
                     : NULL;
        if (!j) {
            log_warning("cluster: cannot take task %" PRIu64 " that was started here; it is "
                        "claimed again after cluster_visibility_ms",
                        id);
            continue;
        }
        /* Started in Redis: it holds a slot from now. */
        j->slot = true;
        W.busy++;
        list_remove(&j->node);
        list_insert_tail(&W.held, &j->node);
        if (W.frozen) {
            unstart(j);
            continue;
        }
        const redisReply *blob = e->element[3];
        job_run(j, blob->type == REDIS_REPLY_STRING ? blob->str : NULL, blob->len, "");
    }
    pump();
}

static void on_group(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    wstream *s = &W.streams[(uintptr_t)priv];
    if (r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0))
        s->grouped = true;
    else if (r)
        log_warning("cluster: cannot make the consumer group of %s: %s", s->key, r->str);
}

/* The keys of the active streams, from the one whose turn it is; NULL
 * when there are none (or no memory). */
static const char **active_keys(uint32_t *ret_n) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < W.n_streams; i++)
        n += W.streams[i].active;
    *ret_n = n;
    if (n == 0)
        return NULL;
    const char **keys = alloc_calloc(n, sizeof(*keys));
    if (!keys)
        return NULL;
    uint32_t k = 0;
    for (uint32_t i = 0; i < W.n_streams; i++)
        if (W.streams[i].active)
            keys[k++] = W.streams[i].key;
    return keys;
}

/* Makes the consumer group of every active stream that may lack it, on the
 * command connection (so before anything sent after it there). */
static void make_groups(void) {
    for (uint32_t i = 0; i < W.n_streams; i++)
        if (W.streams[i].active && !W.streams[i].grouped) {
            const char *argv[] = {"XGROUP", "CREATE", W.streams[i].key, "aiod", "0", "MKSTREAM"};
            size_t lens[6];
            for (size_t k = 0; k < 6; k++)
                lens[k] = strlen(argv[k]);
            rconn_send(link_cmd(), on_group, (void *)(uintptr_t)i, 6, argv, lens);
        }
}

/* XREADGROUP on every active stream: this host's own pending entries (id
 * 0, at once), or one new entry, blocking until one comes. */
static void send_xreadgroup(rconn *rc, const char **keys, uint32_t n, bool own, unsigned count) {
    size_t argc = 9 + 2 * (size_t)n, k = 0;
    const char **argv = alloc_calloc(argc, sizeof(*argv));
    size_t *lens = alloc_calloc(argc, sizeof(*lens));
    char cnt[16], block[16];
    snprintf(cnt, sizeof(cnt), "%u", count);
    snprintf(block, sizeof(block), "%u", own ? 1 : LIMIT_CLUSTER_READ_BLOCK_MS);
    if (argv && lens) {
        const char *head[] = {"XREADGROUP", "GROUP", "aiod", link_host(), "COUNT",
                              cnt,          "BLOCK", block,  "STREAMS"};
        for (size_t i = 0; i < ELEMENTSOF(head); i++)
            argv[k++] = head[i];
        for (uint32_t i = 0; i < n; i++)
            argv[k++] = keys[i];
        for (uint32_t i = 0; i < n; i++)
            argv[k++] = own ? "0" : ">";
        for (size_t i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        W.reading = rconn_send(rc, on_read, NULL, (int)argc, argv, lens) == 0;
    }
    free(argv);
    free(lens);
}

/* How many entries of stream `s` this host may take now: its function's
 * limit (function or group, limit.h) less the tasks of that function taken
 * and not yet started, so that what it takes starts at once instead of
 * waiting here, marked running, while other hosts are idle. Each stream
 * is given that room: a function served on several queues (or functions
 * sharing a group) may take up to that much from each in one fetch, and
 * what is over waits here for the limit. */
static unsigned stream_room(uint32_t s, unsigned room) {
    fn_entry *fn = plugin_lookup(strrchr(W.streams[s].key, ':') + 1);
    uint32_t free_slots = fn ? limit_room(fn) : UINT32_MAX;
    if (free_slots == UINT32_MAX)
        return room;
    uint32_t taken = 0;
    list *it, *tmp;
    list_foreach_safe(it, tmp, &W.held) {
        const job *j = container_of(it, job, node);
        /* Made but not at its first step yet: the limit does not hold it
         * yet either (it takes its slot there). */
        bool unstarted = j->phase == J_RUNNING && j->t && j->t->state == TASK_PENDING;
        if (j->phase != J_STARTING && j->phase != J_LOOKUP && !unstarted)
            continue;
        /* Starting, its call is not decoded yet: its stream says. */
        taken += (j->fn ? j->fn : plugin_lookup(strrchr(W.streams[j->stream].key, ':') + 1)) == fn;
    }
    uint32_t left = free_slots > taken ? free_slots - taken : 0;
    return left < room ? left : room;
}

/* The active streams with room (keys, and their rooms as text in `caps`,
 * CAP_TEXT bytes each): those whose function's limit is full are not read. */
#define CAP_TEXT 12
static const char **streams_with_room(unsigned room, uint32_t *ret_n, char **ret_caps) {
    uint32_t n = 0;
    const char **keys = alloc_calloc(W.n_streams ? W.n_streams : 1, sizeof(*keys));
    char *caps = alloc_calloc(W.n_streams ? W.n_streams : 1, CAP_TEXT);
    if (!keys || !caps) {
        free(keys);
        free(caps);
        *ret_n = 0;
        *ret_caps = NULL;
        return NULL;
    }
    for (uint32_t i = 0; i < W.n_streams; i++) {
        if (!W.streams[i].active)
            continue;
        unsigned r = stream_room(i, room);
        if (!r)
            continue;
        snprintf(caps + (size_t)n * CAP_TEXT, CAP_TEXT, "%u", r);
        keys[n++] = W.streams[i].key;
    }
    *ret_n = n;
    *ret_caps = caps;
    return keys;
}

/* How many more queued tasks this host may take now: its free capacity,
 * and no more than max_tasks lets start. Without the second bound a host
 * whose max_tasks was full (of local tasks, say) fetched up to its
 * capacity at every period, put each task back to queued and held the
 * entries for the visibility timeout while other hosts sat idle. Taken
 * tasks not made yet (their start script or groups lookup in flight) will
 * count against max_tasks too. max_tasks_per_uid cannot be judged before
 * the entry's owner is known: a task over it is put back (unstart). */
static unsigned free_room(void) {
    if (W.busy >= cfg.cluster_capacity)
        return 0;
    unsigned room = cfg.cluster_capacity - W.busy;
    size_t taken = task_count_unfinished();
    list *it, *tmp;
    list_foreach_safe(it, tmp, &W.held) {
        const job *j = container_of(it, job, node);
        taken += j->phase == J_STARTING || j->phase == J_LOOKUP;
    }
    if (taken >= cfg.max_tasks)
        return 0;
    return cfg.max_tasks - taken < room ? (unsigned)(cfg.max_tasks - taken) : room;
}

/*
 * Takes more entries, at most as many as the host has room for: first its
 * own pending ones (from before a restart), then new ones through
 * lua_fetch, which stops at that number across all the streams (a plain
 * XREADGROUP counts per stream) and at each stream's room
 * (streams_with_room). When none are there, one XREADGROUP on
 * the reader's connection waits in Redis for the next entry of any stream;
 * it takes one entry per stream at most.
 */
static void maybe_read(void) {
    if (W.frozen || W.reading || W.fetch_paused || !link_up() || !list_empty(&W.backlog) ||
        W.busy >= cfg.cluster_capacity)
        return;
    uint32_t n;
    unsigned room = cfg.cluster_capacity - W.busy;
    if (!W.own_read) {
        /* Its own entries (taken before) are read whatever the limits. */
        const char **keys = active_keys(&n);
        if (!keys)
            return;
        make_groups();
        send_xreadgroup(link_cmd(), keys, n, true, room);
        free(keys);
        return;
    }
    room = free_room();
    if (!room)
        return; /* max_tasks is full: a task's end here, or the period, reads again */
    char *caps;
    const char **keys = streams_with_room(room, &n, &caps);
    if (!keys || n == 0) {
        /* Every function's limit is full: a task's end reads again. */
        free(keys);
        free(caps);
        return;
    }
    make_groups();
    if (W.wait_next) {
        if (W.reader && rconn_up(W.reader)) {
            W.wait_next = false;
            send_xreadgroup(W.reader, keys, n, false, 1);
        }
    } else {
        char host[CLUSTER_HOST_NAME_MAX + 1], count[16], first[16], now[24];
        snprintf(host, sizeof(host), "%s", link_host());
        snprintf(count, sizeof(count), "%u", room);
        snprintf(first, sizeof(first), "%u", W.fetch_next++ % n);
        snprintf(now, sizeof(now), "%" PRIu64, link_now_usec());
        const char **args = alloc_calloc(2 * n + 5, sizeof(*args));
        if (args) {
            memcpy(args, keys, n * sizeof(*keys));
            args[n] = host;
            args[n + 1] = count;
            args[n + 2] = first;
            args[n + 3] = now;
            args[n + 4] = W.run_id;
            for (uint32_t i = 0; i < n; i++)
                args[n + 5 + i] = caps + (size_t)i * CAP_TEXT;
            W.reading =
                link_eval(lua_fetch, (int)n, (int)(2 * n + 5), args, NULL, on_fetched, NULL) == 0;
        }
        free(args);
    }
    free(keys);
    free(caps);
}

static void reader_up(rconn *rc, void *data) {
    (void)rc, (void)data;
    pump();
}

static const rconn_ops reader_ops = {.up = reader_up, .blocks_ms = LIMIT_CLUSTER_READ_BLOCK_MS};

/* ------------------------------------------------------------ the period */

/* Renews this host's claim on every entry it holds, stream by stream. */
static void refresh_claims(void) {
    for (uint32_t s = 0; s < W.n_streams; s++) {
        size_t n = 0;
        list *it, *tmp;
        list *lists[] = {&W.held, &W.backlog};
        for (size_t l = 0; l < 2; l++)
            list_foreach_safe(it, tmp, lists[l]) {
                if (container_of(it, job, node)->stream == s)
                    n++;
            }
        if (n == 0)
            continue;
        size_t argc = 6 + n, k = 0;
        const char **argv = alloc_calloc(argc, sizeof(*argv));
        size_t *lens = alloc_calloc(argc, sizeof(*lens));
        if (argv && lens) {
            argv[k++] = "XCLAIM";
            argv[k++] = W.streams[s].key;
            argv[k++] = "aiod";
            argv[k++] = link_host();
            argv[k++] = "0";
            for (size_t l = 0; l < 2; l++)
                list_foreach_safe(it, tmp, lists[l]) {
                    job *j = container_of(it, job, node);
                    if (j->stream == s)
                        argv[k++] = j->eid;
                }
            argv[k++] = "JUSTID";
            for (size_t i = 0; i < argc; i++)
                lens[i] = strlen(argv[i]);
            rconn_send(link_cmd(), NULL, NULL, (int)argc, argv, lens);
        }
        free(argv);
        free(lens);
    }
}

/* The functions this host has loaded, "a.f,b.g" (the caller frees), or
 * NULL when out of memory. */
static char *functions_text(void) {
    size_t len = 1;
    for (size_t p = 0; p < plugin_count(); p++)
        for (size_t f = 0; f < plugin_at(p)->n_fns; f++)
            len += strlen(plugin_at(p)->fns[f].full_name) + 1;
    char *text = alloc_malloc(len), *at = text;
    if (!text)
        return NULL;
    *at = '\0';
    for (size_t p = 0; p < plugin_count(); p++)
        for (size_t f = 0; f < plugin_at(p)->n_fns; f++) {
            const fn_entry *fn = &plugin_at(p)->fns[f];
            if (fn->def->flags & AIOD_FN_INTERNAL)
                continue;
            at += sprintf(at, "%s%s", at == text ? "" : ",", fn->full_name);
        }
    return text;
}

/* Whether the field `name` = `value` of KEY_VISIBILITY is a live host with
 * another visibility than this one's; appends it to `out` then. */
static bool other_visibility(const char *name, const char *value, uint64_t now, FILE *out,
                             unsigned *ret_ms) {
    unsigned ms;
    unsigned long long seen;
    if (strcmp(name, link_host()) == 0 || sscanf(value, "%u %llu", &ms, &seen) != 2)
        return false;
    uint64_t longest = ms > cfg.cluster_visibility_ms ? ms : cfg.cluster_visibility_ms;
    if (now > seen && now - seen > VISIBILITY_FORGET_MS) {
        const char *argv[] = {"HDEL", KEY_VISIBILITY, name};
        rconn_send(link_cmd(), NULL, NULL, 3, argv,
                   (size_t[]){4, strlen(KEY_VISIBILITY), strlen(name)});
        return false;
    }
    /* A host gone (its hash expired after 3 visibilities) is no matter. */
    if (ms == cfg.cluster_visibility_ms || (now > seen && now - seen > 3 * longest))
        return false;
    fprintf(out, ",%s=%u,", name, ms);
    *ret_ms = ms;
    return true;
}

/* The hosts' visibilities: a host with a shorter one than another's takes
 * that host's running tasks for interrupted (it claims entries the other's
 * renewals keep younger than the other's timeout, not than its own), and
 * one with a longer one waits longer for a dead host's tasks. Said once
 * per host and value, as an error. */
static void on_visibilities(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)priv;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    char *said = NULL;
    size_t said_len = 0;
    FILE *out = open_memstream(&said, &said_len);
    if (!out)
        return;
    uint64_t now = link_now_usec() / 1000u;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *name = redis_str(r->element[i]), *value = redis_str(r->element[i + 1]);
        unsigned ms;
        if (!name || !value || !other_visibility(name, value, now, out, &ms))
            continue;
        char piece[CLUSTER_HOST_NAME_MAX + 16];
        snprintf(piece, sizeof(piece), ",%s=%u,", name, ms);
        if (!W.visibility_said || !strstr(W.visibility_said, piece))
            log_error("cluster: host %s uses cluster_visibility_ms = %u, this host (%s) %u: "
                      "every host of a cluster must use the same value; the one with the "
                      "shorter takes the other's running tasks for interrupted "
                      "(docs/cluster.md)",
                      name, ms, link_host(), cfg.cluster_visibility_ms);
    }
    if (fclose(out) != 0) {
        free(said);
        return;
    }
    free(W.visibility_said);
    W.visibility_said = said;
}

/* Writes this host's visibility with the others' and reads them all. */
static void compare_visibilities(const char *now_ms) {
    char value[48];
    snprintf(value, sizeof(value), "%u %s", cfg.cluster_visibility_ms, now_ms);
    const char *hset[] = {"HSET", KEY_VISIBILITY, link_host(), value};
    rconn_send(link_cmd(), NULL, NULL, 4, hset,
               (size_t[]){4, strlen(KEY_VISIBILITY), strlen(link_host()), strlen(value)});
    const char *hgetall[] = {"HGETALL", KEY_VISIBILITY};
    rconn_send(link_cmd(), on_visibilities, NULL, 2, hgetall,
               (size_t[]){7, strlen(KEY_VISIBILITY)});
}

/* Says which functions this host serves on which queues, and its
 * capacity, for submitters and for people looking. */
static void advertise(void) {
    char now[24], key[KEY_MAX], cap[16], busy[16], ttl[16];
    snprintf(now, sizeof(now), "%" PRIu64, link_now_usec() / 1000u);
    for (uint32_t i = 0; i < W.n_streams; i++)
        if (W.streams[i].active) {
            const char *argv[] = {"ZADD", W.streams[i].serve, now, link_host()};
            size_t lens[] = {4, strlen(argv[1]), strlen(now), strlen(argv[3])};
            rconn_send(link_cmd(), NULL, NULL, 4, argv, lens);
        }
    snprintf(key, sizeof(key), "aiod:host:%s", link_host());
    snprintf(cap, sizeof(cap), "%u", cfg.cluster_capacity);
    snprintf(busy, sizeof(busy), "%u", W.running);
    snprintf(ttl, sizeof(ttl), "%llu", 3ull * cfg.cluster_visibility_ms); /* > 32 bits */
    const char *queues = cfg.cluster_queues ? cfg.cluster_queues : "";
    char *functions = functions_text();
    char pid[16], vis[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(vis, sizeof(vis), "%u", cfg.cluster_visibility_ms);
    const char *hset[] = {"HSET",     key,       "queues",        queues,
                          "capacity", cap,       "running",       busy,
                          "seen_ms",  now,       "functions",     functions ? functions : "",
                          "boot",     W.boot_id, "pid",           pid,
                          "run",      W.run_id,  "visibility_ms", vis};
    size_t hl[ELEMENTSOF(hset)];
    for (size_t i = 0; i < ELEMENTSOF(hset); i++)
        hl[i] = strlen(hset[i]);
    rconn_send(link_cmd(), NULL, NULL, (int)ELEMENTSOF(hset), hset, hl);
    free(functions);
    const char *exp[] = {"PEXPIRE", key, ttl};
    rconn_send(link_cmd(), NULL, NULL, 3, exp, (size_t[]){7, strlen(key), strlen(ttl)});
    compare_visibilities(now);
}

/* The host's hash as the link came up, before this host advertised: one
 * written by another aiod that is alive (its pid runs on this machine, or
 * it advertised within two periods from another one) means two hosts share
 * the name, and each takes the other's running entries for its own. */
static void on_name_check(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)priv;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const char *boot = redis_str(r->element[0]), *pid_s = redis_str(r->element[1]),
               *seen_s = redis_str(r->element[2]);
    if (!boot || !pid_s || !seen_s)
        return;
    long pid = strtol(pid_s, NULL, 10);
    bool here = strcmp(boot, W.boot_id) == 0;
    if (here && pid == (long)getpid())
        return;
    uint64_t seen = strtoull(seen_s, NULL, 10), now = link_now_usec() / 1000u;
    uint64_t ago = now > seen ? now - seen : 0;
    uint64_t period = period_ms();
    bool alive = here ? pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM) : ago < 2 * period;
    if (alive)
        log_error("cluster: another aiod (pid %ld%s) advertised itself as host %s %" PRIu64
                  " ms ago: cluster_host must be unique in the cluster; two live hosts of one "
                  "name take each other's running tasks (docs/cluster.md)",
                  pid, here ? ", on this machine" : ", on another machine", link_host(), ago);
}

static void check_name(void) {
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "aiod:host:%s", link_host());
    const char *argv[] = {"HMGET", key, "boot", "pid", "seen_ms"};
    size_t lens[ELEMENTSOF(argv)];
    for (size_t i = 0; i < ELEMENTSOF(argv); i++)
        lens[i] = strlen(argv[i]);
    rconn_send(link_cmd(), on_name_check, NULL, (int)ELEMENTSOF(argv), argv, lens);
}

/* The reply of XAUTOCLAIM: [next cursor, entries, deleted ids]; {"calm"}
 * while claims wait (lua_claim). */
static void claim_one(void);

static void on_claimed(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    W.claim_sent_ms = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        W.claim_left = 0; /* the next period tries again */
        static bool said;
        if (r && r->type == REDIS_REPLY_ERROR &&
            (strstr(r->str, "NOPERM") || strstr(r->str, "can't run this command")) &&
            !W.claim_plain) {
            /* An ACL user made from an older docs/cluster.md (a refusal
             * inside a script reads "ERR The user executing the script
             * can't run this command"). */
            log_warning("cluster: Redis's user may not run what the claim script calls (%s): "
                        "claims go without the check for a stall of Redis; add +time +get +set "
                        "to the ACL user (docs/cluster.md)",
                        r->str);
            W.claim_plain = true;
        } else if (r && r->type == REDIS_REPLY_ERROR && !said) {
            log_warning("cluster: Redis refused the claim: %s", r->str);
            said = true;
        }
        return;
    }
    uint32_t s = (uint32_t)(uintptr_t)priv;
    if (s < W.n_streams) {
        const char *next = redis_str(r->element[0]);
        snprintf(W.streams[s].claim_from, sizeof(W.streams[s].claim_from), "%s",
                 next && strlen(next) < sizeof(W.streams[s].claim_from) ? next : "0-0");
    }
    size_t before = hashmap_size(W.jobs);
    take_entries(s, r->element[1]);
    if (hashmap_size(W.jobs) > before)
        log_notice("cluster: claimed %zu task(s) of %s from a host silent for at least %u ms "
                   "(cluster_visibility_ms)",
                   hashmap_size(W.jobs) - before, W.streams[s].key, cfg.cluster_visibility_ms);
    pump();
    claim_one();
}

/* Sends the claim round's next claim, on the next stream it has left, if
 * this host has room: one claim in flight at a time, each asking for what
 * room is left after the last. */
static void claim_one(void) {
    unsigned room = free_room();
    if (W.frozen || !list_empty(&W.backlog) || !room || !W.n_streams) {
        W.claim_left = 0;
        return;
    }
    while (W.claim_left > 0) {
        W.claim_left--;
        uint32_t s = W.claim_next++ % W.n_streams;
        if (!W.streams[s].active || !W.streams[s].grouped)
            continue;
        char idle[16], count[16];
        snprintf(idle, sizeof(idle), "%u", cfg.cluster_visibility_ms);
        snprintf(count, sizeof(count), "%u", room);
        if (!W.streams[s].claim_from[0])
            snprintf(W.streams[s].claim_from, sizeof(W.streams[s].claim_from), "0-0");
        /* Before the send: a link that is down answers at once. */
        W.claim_sent_ms = uv_now(link_loop());
        if (W.claim_plain) {
            const char *argv[] = {"XAUTOCLAIM", W.streams[s].key,        "aiod",  link_host(),
                                  idle,         W.streams[s].claim_from, "COUNT", count};
            size_t lens[ELEMENTSOF(argv)];
            for (size_t i = 0; i < ELEMENTSOF(argv); i++)
                lens[i] = strlen(argv[i]);
            rconn_send(link_cmd(), on_claimed, (void *)(uintptr_t)s, (int)ELEMENTSOF(argv), argv,
                       lens);
        } else {
            /* Through lua_claim: not while Redis's calm after a stall lasts. */
            const char *args[] = {W.streams[s].key,        KEY_PULSE, KEY_CALM, idle, link_host(),
                                  W.streams[s].claim_from, count};
            link_eval(lua_claim, 3, (int)ELEMENTSOF(args), args, NULL, on_claimed,
                      (void *)(uintptr_t)s);
        }
        return;
    }
}

/*
 * Each period, claims the entries of silent hosts on every stream in turn
 * (a round: each reply sends the next claim), as far as this host has
 * room. One stream per period made a dead host's tasks wait a period for
 * every stream before theirs: some minutes with the default visibility
 * and a few plugins' functions on one queue. A round whose reply never
 * came (the link dropped) is given up after a period.
 */
static void claim_silent(void) {
    uint64_t now = uv_now(link_loop());
    if (now < W.claim_after)
        return;
    uint64_t period = period_ms();
    if (W.claim_sent_ms && now - W.claim_sent_ms < period)
        return;
    W.claim_sent_ms = 0;
    W.claim_left = W.n_streams;
    claim_one();
}

/* How long a cancel for a task without a job here is kept at least (ms):
 * far longer than a fetch's reply takes. */
#define EARLY_CANCEL_KEEP_MS 60000u

/* Drops the older generation of early cancels once it is old enough. */
static void age_early_cancels(void) {
    uint64_t now = uv_now(uv_default_loop());
    if (now - W.early_since_ms < EARLY_CANCEL_KEEP_MS)
        return;
    hashmap *fresh = hashmap_new(0);
    if (!fresh)
        return; /* kept a period longer */
    hashmap_free(W.early_cancels_old);
    W.early_cancels_old = W.early_cancels;
    W.early_cancels = fresh;
    W.early_since_ms = now;
}

/* Redis's heartbeat of the cluster (lua_pulse). */
static void pulse(void) {
    if (W.claim_plain)
        return;
    char vis[16];
    snprintf(vis, sizeof(vis), "%u", cfg.cluster_visibility_ms);
    const char *args[] = {KEY_PULSE, KEY_CALM, vis};
    link_eval(lua_pulse, 2, (int)ELEMENTSOF(args), args, NULL, NULL, NULL);
}

static void on_period(uv_timer_t *t) {
    (void)t;
    age_early_cancels();
    if (!link_up())
        return;
    pulse();
    advertise();
    refresh_claims();
    claim_silent();
    write_unwritten();
    W.fetch_paused = false;
    pump();
}

/* ------------------------------------------------------------ interface */

int worker_start(void) {
    list_init(&W.backlog);
    list_init(&W.held);
    list_init(&W.ending);
    W.jobs = hashmap_new(0);
    W.early_cancels = hashmap_new(0);
    W.early_since_ms = uv_now(uv_default_loop());
    W.timer = alloc_malloc(sizeof(*W.timer));
    W.flush = alloc_malloc(sizeof(*W.flush));
    if (!W.jobs || !W.early_cancels || !W.timer || !W.flush)
        return -ENOMEM;
    uv_prepare_init(link_loop(), W.flush);
    FILE *bf = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (bf) {
        if (fgets(W.boot_id, sizeof(W.boot_id), bf))
            W.boot_id[strcspn(W.boot_id, "\n")] = '\0';
        fclose(bf);
    }
    snprintf(W.run_id, sizeof(W.run_id), "%s:%d:%" PRIu64, W.boot_id, (int)getpid(),
             link_now_usec());
    char why[200];
    W.n_queues = cfg.cluster_queues
                     ? cluster_queues_parse(cfg.cluster_queues, W.queues, why, sizeof(why))
                     : 0;
    if (W.n_queues < 0)
        return -EINVAL; /* config.c checked it */
    uv_timer_init(link_loop(), W.timer);
    uint64_t period = period_ms();
    uv_timer_start(W.timer, on_period, period, period);
    uv_unref((uv_handle_t *)W.timer);
    if (sync_streams() < 0)
        return -ENOMEM;
    if (W.n_queues == 0)
        return 0;
    return rconn_new(link_loop(), link_url(), link_password(), "queue reader", &reader_ops, NULL,
                     &W.reader);
}

/* Outcomes that could not be written (Redis was away, or failed the
 * call): queued for the next batch. */
static void write_unwritten(void) {
    list *it, *next;
    list_foreach_safe(it, next, &W.held) {
        job *j = container_of(it, job, node);
        if (j->phase == J_UNWRITTEN)
            write_outcome(j);
    }
}

void worker_link_up(void) {
    /* Claims first: while Redis was away the entries this host holds grew
     * idle, and other hosts coming back must not take them. They claim
     * nothing until every host had time to reconnect and do the same. */
    refresh_claims();
    uint64_t pause = LIMIT_CLUSTER_BACKOFF_MAX_MS + LIMIT_CLUSTER_CONNECT_TIMEOUT_MS;
    W.claim_after = uv_now(link_loop()) +
                    (cfg.cluster_visibility_ms > pause ? cfg.cluster_visibility_ms : pause);
    W.own_read = false;
    W.wait_next = false;
    check_name();
    advertise();
    /* Outcomes reached while Redis was away. */
    list *it, *next;
    list_foreach_safe(it, next, &W.held) {
        job *j = container_of(it, job, node);
        if (j->phase == J_UNWRITTEN)
            write_outcome(j);
        else if (j->sink_on && output_sink_behind(&j->sink))
            output_sink_pump(&j->sink);
    }
    pump();
}

/* Task `id` is to be cancelled: its hash says so. */
static void cancel_job(uint64_t id) {
    job *j = W.jobs ? hashmap_get_u64(W.jobs, id) : NULL;
    if (!j) {
        if (!W.jobs)
            return; /* stopped meanwhile */
        /* Most are for tasks other hosts run; they are forgotten soon. The
         * fetch that marked it running here may still be on its way. */
        if (hashmap_put_u64(W.early_cancels, id, (void *)1) < 0 &&
            !hashmap_get_u64(W.early_cancels, id))
            log_warning("cluster: out of memory keeping the cancel of task %" PRIu64, id);
        return;
    }
    j->cancel_asked = true;
    if (j->phase == J_RUNNING && j->t && !task_finished(j->t))
        task_cancel(j->t);
}

static void on_cancel_flag(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    if (r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0)
        cancel_job((uint64_t)(uintptr_t)priv);
}

/* Asks the task's hash whether a cancel was asked (its field cancel). */
static void check_cancel_flag(uint64_t id) {
    char key[32];
    link_task_key(key, sizeof(key), id);
    const char *argv[] = {"HGET", key, "cancel"};
    rconn_send(link_cmd(), on_cancel_flag, (void *)(uintptr_t)id, 3, argv,
               (size_t[]){4, strlen(key), 6});
}

void worker_cancel(uint64_t id) {
    if (!W.jobs)
        return; /* not serving (yet, or any more) */
    /* The event is a hint: anyone who can publish on the channel can send
     * one, and a plain task_cancel on it cancelled a task whose cancel
     * nobody asked. The cancel script sets the flag before it publishes;
     * the reply comes on the command connection after that of any fetch
     * that marked the task running here, so the job is known by then. */
    check_cancel_flag(id);
}

void worker_check_cancels(void) {
    /* A cancel published while the subscription was away was missed; the
     * task's hash keeps it. */
    list *it, *tmp;
    list_foreach_safe(it, tmp, &W.held) {
        job *j = container_of(it, job, node);
        if (j->phase == J_LOOKUP || j->phase == J_RUNNING)
            check_cancel_flag(j->id);
    }
}

void worker_functions_changed(void) {
    if (sync_streams() < 0)
        log_warning("cluster: out of memory following the plugins' change");
    if (link_up())
        advertise();
    maybe_read();
}

void worker_freeze(void) {
    if (!W.jobs)
        return;
    W.frozen = true;
    /* Entries not started stay queued in Redis: another host (or this one,
     * started again) takes them. */
    while (!list_empty(&W.backlog))
        job_free(container_of(list_first(&W.backlog), job, node));
    rconn_free(W.reader);
    W.reader = NULL;
}

void worker_stop(void) {
    if (!W.jobs)
        return;
    worker_freeze();
    while (!list_empty(&W.held))
        job_free(container_of(list_first(&W.held), job, node));
    if (W.timer) {
        uv_close((uv_handle_t *)W.timer, (uv_close_cb)free);
        W.timer = NULL;
    }
    if (W.flush) {
        uv_close((uv_handle_t *)W.flush, (uv_close_cb)free);
        W.flush = NULL;
    }
    hashmap_free(W.jobs);
    hashmap_free(W.early_cancels);
    hashmap_free(W.early_cancels_old);
    W.early_cancels = W.early_cancels_old = NULL;
    W.jobs = NULL;
    free(W.streams);
    W.streams = NULL;
    W.n_streams = 0;
    free(W.visibility_said);
    W.visibility_said = NULL;
}

unsigned worker_running(void) {
    return W.running;
}

size_t worker_unwritten(void) {
    /* Also while Redis is away: it may come back within the grace period
     * (the connections keep reconnecting), and the outcomes are written
     * then. Counted as none, they were dropped without a word and their
     * tasks, ended here, stayed running in Redis until claimed. */
    if (!W.jobs)
        return 0;
    size_t n = 0;
    list *it, *tmp;
    list_foreach_safe(it, tmp, &W.held) {
        const job *j = container_of(it, job, node);
        n += j->phase == J_ENDED || j->phase == J_UNWRITTEN || j->phase == J_UNSTARTING ||
             (j->phase == J_RUNNING && j->task_ended);
    }
    return n;
}

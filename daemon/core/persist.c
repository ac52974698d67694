/*
 * Durable tasks (persist.h).
 *
 * Changed tasks go on the dirty list (one reference each) and are written
 * as whole records when the batch is handed to the store: a task changed
 * three times in one iteration is written once. The store commits one
 * batch at a time; what changes meanwhile waits for the next, so a busy
 * daemon writes large batches and a quiet one small and prompt ones.
 *
 * A task's flags (task.store_flags):
 *   DIRTY     on the dirty list;
 *   GATED     waits at the start gate for a record that says RUNNING;
 *   GATE_SENT that record is in the batch being committed;
 *   START_OK  it was committed: this attempt may run;
 *   WAS_RUNNING  it was running when SIGTERM came;
 *   CUT_OFF   cancelled by the stop (not by a client before it): its record
 *             keeps the state it had when the stop came.
 */
#include "core/persist.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "aiod-pb.h"
#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/hashmap.h"
#include "base/value.h"
#include "core/finish.h"
#include "core/output.h"
#include "core/plan.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"
#include "macro.h"
#include "pbvalue.h"
#include "system/config.h"
#include "system/log.h"
#include "system/store.h"

enum {
    F_DIRTY = 1 << 0,
    F_GATED = 1 << 1,
    F_GATE_SENT = 1 << 2,
    F_START_OK = 1 << 3,
    /* Running when the stop came (persist_freeze). */
    F_WAS_RUNNING = 1 << 4,
    F_CUT_OFF = TASK_STORE_CUT_OFF,
};

/* A growable vector of task references. */
typedef struct task_vec {
    task **v;
    size_t n, cap;
} task_vec;

static bool enabled, frozen;
/* SIGTERM came: the cancellations the stop makes are not written. */
static bool stopping;
static task_vec dirty;
/* Waiters for the batch being filled. */
static list waiting_next = {&waiting_next, &waiting_next};
/* A batch handed to the store: its tasks (one reference each) and the
 * waiters for its commit. Batch `seq` uses flights[seq % STORE_MAX_HANDED]:
 * a batch is handed only while fewer than STORE_MAX_HANDED are, so the
 * slot's last batch has been answered for. */
typedef struct flight {
    task_vec sent;
    list waiting;
} flight;
static flight flights[STORE_MAX_HANDED];

static flight *flight_of(uint64_t seq) {
    return &flights[seq % STORE_MAX_HANDED];
}

/* task.store_seq for batch `seq`: never 0, and of the same flight. */
static uint32_t seq_tag(uint64_t seq) {
    static_assert(STORE_MAX_HANDED == 2, "the tag keeps the parity of the sequence number");
    uint32_t v = (uint32_t)seq;
    return v ? v : 2;
}
static uv_prepare_t prepare;
static uv_timer_t retry_timer;
static bool handles_init;
/* A commit failed: the next is tried after LIMIT_STORE_RETRY_MS. */
static bool backing_off;
/*
 * Whether the changes waiting hold one that someone waits for (a Submitted
 * reply, a task at the start gate). Without one (outcomes, retries,
 * deletions) a batch waits up to LIMIT_STORE_LAZY_MS for company: a lone
 * client's next submit then carries the last task's outcome in its own
 * commit instead of queueing behind a commit of its own.
 */
static bool urgent;
static uint64_t lazy_since_ms;
static uv_timer_t lazy_timer;
static uv_loop_t *loop;

static int vec_push(task_vec *v, task *t) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        task **n = alloc_realloc(v->v, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        v->v = n;
        v->cap = cap;
    }
    v->v[v->n++] = task_ref(t);
    return 0;
}

bool persist_enabled(void) {
    return enabled && !frozen && !stopping;
}

static void mark_dirty(task *t) {
    if (!dirty.n && !lazy_since_ms && loop)
        lazy_since_ms = uv_now(loop);
    if (t->store_flags & F_DIRTY)
        return;
    if (vec_push(&dirty, t) < 0) {
        /* Written with its next change; a waiter of this one sees the
         * next commit. */
        log_task(LOG_ERR, t, "out of memory queueing the task's record for the state store");
        return;
    }
    t->store_flags |= F_DIRTY;
}

static void on_task_event(task *t, int event) {
    if (frozen)
        return;
    /* Cancelled by the stop: it keeps its stored state (pending, or
     * running and so interrupted at the next start). A cancel that came
     * before the stop was already finished then, and is written as it is. */
    if (stopping && t->state == TASK_CANCELLED) {
        t->store_flags |= F_CUT_OFF;
        /* Written once more, with the lines it printed (encode). */
        if ((t->store_flags & F_WAS_RUNNING) && task_output_lines(t))
            mark_dirty(t);
        return;
    }
    if (event == TASK_STORE_DROPPED) {
        store_delete(t->id);
        return;
    }
    /* Back to pending (a retry): its next attempt needs a record again. */
    if (t->state == TASK_PENDING)
        t->store_flags &= (uint8_t)~F_START_OK;
    mark_dirty(t);
}

void persist_track(task *t) {
    if (!persist_enabled())
        return;
    assert(t->parent_id == 0 && t->ownership != AIOD__OWNERSHIP__ATTACHED);
    t->durable = true;
    mark_dirty(t);
}

void persist_when_committed(task *t, persist_waiter *w) {
    w->task = t; /* dirty: its record goes with a coming batch */
    list_insert_tail(&waiting_next, &w->node);
    urgent = true;
}

static void on_lazy(uv_timer_t *h);

bool persist_record_pending(const task *t) {
    return t->durable && ((t->store_flags & F_DIRTY) || t->store_seq != 0);
}

void persist_when_record_committed(task *t, persist_waiter *w) {
    assert(persist_record_pending(t));
    w->task = t;
    if (t->store_flags & F_DIRTY) {
        /* In the next batch, which goes now: someone waits. Registered
         * after this iteration's flush (libuv runs the newest prepare
         * first), it would wait for the lazy timer: a turn of the loop. */
        list_insert_tail(&waiting_next, &w->node);
        urgent = true;
        if (handles_init)
            uv_timer_start(&lazy_timer, on_lazy, 0, 0);
    } else
        list_insert_tail(&flight_of(t->store_seq)->waiting, &w->node);
}

void persist_waiter_cancel(persist_waiter *w) {
    list_remove(&w->node);
}

bool persist_gate(task *t) {
    if (!t->durable || frozen || stopping || (t->store_flags & F_START_OK))
        return true;
    t->store_flags |= F_GATED;
    mark_dirty(t);
    urgent = true;
    return false;
}

void persist_forget(task *t, const char *why) {
    /* The batch handed after the failed one may hold a newer record of it
     * (it was cancelled meanwhile, say) and have committed: no row of a
     * task its client was told is not submitted may stay. */
    if (t->durable)
        store_delete(t->id);
    t->durable = false;
    t->store_flags = 0;
    if (t->plan)
        t->plan->no_retry = true;
    task_finish(t, TASK_FAILED, NULL, alloc_strdup("StoreError"), alloc_strdup(why));
}

/* ---------------------------------------------------------------- records */

/* The last lines of a finished task's own output, newest last, within
 * LIMIT_STORE_OUTPUT_LINES and _BYTES. Borrowed pointers into the ring. */
static size_t output_tail(const task *t, char **lines) {
    const output *o = t->out;
    if (!o || o->task_id != t->id || !o->count)
        return 0;
    size_t n = 0, bytes = 0;
    for (uint32_t i = o->count; i-- > 0 && n < LIMIT_STORE_OUTPUT_LINES;) {
        char *l = o->lines[(o->head + i) % o->cap];
        size_t len = strlen(l);
        if (bytes + len > LIMIT_STORE_OUTPUT_BYTES)
            break;
        bytes += len;
        n++;
    }
    for (size_t k = 0; k < n; k++)
        lines[k] = o->lines[(o->head + o->count - n + k) % o->cap];
    return n;
}

/* The record of `t` as it stands, packed into the store's batch: false
 * when out of memory. */
static bool encode(task *t) {
    Aiod__StoredTask st = AIOD__STORED_TASK__INIT;
    Aiod__Schedule sched = AIOD__SCHEDULE__INIT;
    Aiod__Outcome outcome;
    char *tail[LIMIT_STORE_OUTPUT_LINES];
    task_plan *p = t->plan;
    st.id = t->id;
    st.function = t->fn->full_name;
    st.args = t->argv;
    st.n_args = t->argc;
    st.ownership = (Aiod__Ownership)t->ownership;
    st.owner_uid = (uint32_t)t->uid;
    st.owner_pid = (int32_t)t->pid;
    st.created_usec = t->created_usec;
    st.started_usec = t->started_usec;
    st.finished_usec = t->finished_usec;
    st.attempt = plan_attempt(t);
    /* Cancelled by the stop but dirty from before it: written as it was
     * when the stop came, never as cancelled. */
    if (t->store_flags & F_CUT_OFF) {
        st.state = (t->store_flags & F_WAS_RUNNING) ? AIOD__TASK_STATE__TASK_RUNNING
                                                    : AIOD__TASK_STATE__TASK_PENDING;
        /* What it printed goes with its outcome, settled at the next start. */
        if (t->store_flags & F_WAS_RUNNING) {
            st.n_output_tail = output_tail(t, tail);
            st.output_tail = tail;
            st.output_lines = task_output_lines(t);
            st.output_dropped = task_output_dropped(t);
        }
    } else if (task_finished(t)) {
        st.state = (Aiod__TaskState)t->state;
        task_outcome(t, &outcome);
        st.outcome = &outcome;
        st.n_output_tail = output_tail(t, tail);
        st.output_tail = tail;
        st.output_lines = task_output_lines(t);
        st.output_dropped = task_output_dropped(t);
    } else if (t->state == TASK_RUNNING || (t->store_flags & (F_START_OK | F_GATED))) {
        /* The attempt about to start is recorded as started. */
        st.state = AIOD__TASK_STATE__TASK_RUNNING;
        if (t->state == TASK_PENDING) {
            st.attempt++;
            st.started_usec = task_now_usec();
        }
    } else
        st.state = AIOD__TASK_STATE__TASK_PENDING;
    if (p) {
        sched.retries = p->retries;
        sched.backoff = p->backoff;
        sched.backoff_max = p->backoff_max;
        sched.after = p->after;
        sched.n_after = p->n_after;
        st.schedule = &sched;
        st.next_run_usec = p->next_run_usec;
        st.attempts = p->attempts;
        st.n_attempts = p->n_attempts;
        st.after_met = p->after_met;
        st.after_done = p->after_done;
        st.n_after_done = p->n_after_done;
        st.interrupted = p->interrupted;
    }
    size_t len = protobuf_c_message_get_packed_size(&st.base);
    int state = (int)st.state;
    uint8_t *buf = store_put_reserve(t->id, state, state >= TASK_DONE ? t->finished_usec : 0, len);
    if (!buf)
        return false;
    protobuf_c_message_pack(&st.base, buf);
    return true;
}

/* Encodes up to `limit` dirty tasks, oldest first, into the store's batch
 * (those gated are remembered as sent); the rest stay dirty for the next
 * batch, so that no flush holds the loop for long however many changed.
 * Tasks dropped meanwhile are only let go: they do not count, so that a
 * mass cancel whose oldest outcomes retention dropped still makes a batch
 * of what is left (it once made none, and nothing woke the loop again). */
static void encode_dirty(size_t limit) {
    if (!dirty.n)
        return;
    task_vec *sent = &flight_of(store_batch_seq())->sent;
    task **v = dirty.v;
    size_t n = dirty.n, i, keep = 0, encoded = 0;
    for (i = 0; i < n && encoded < limit; i++) {
        task *t = v[i];
        /* Dropped meanwhile (its deletion is in the batch), or forgotten. */
        if (!t->in_table || !t->durable) {
            t->store_flags &= (uint8_t)~F_DIRTY;
            task_unref(t);
            continue;
        }
        encoded++;
        if (!encode(t)) {
            log_task(LOG_ERR, t, "out of memory writing the task's record; trying again");
            v[keep++] = t; /* still dirty: the next batch */
            continue;
        }
        t->store_flags &= (uint8_t)~F_DIRTY;
        if ((t->store_flags & F_GATED) && !frozen && !stopping)
            t->store_flags |= F_GATE_SENT;
        /* Only a task the commit will see has its batch noted: on_committed
         * clears the note, and one never cleared held its awaits for good. */
        if (vec_push(sent, t) < 0)
            log_task(LOG_ERR, t, "out of memory tracking the task's record");
        else
            t->store_seq = seq_tag(store_batch_seq());
        task_unref(t);
    }
    if (i < n)
        memmove(v + keep, v + i, (n - i) * sizeof(*v));
    dirty.n = keep + (n - i);
}

/* The batch's waiters learn how its commit went, in the order they came. */
static void fire_sent_waiters(flight *f, int error, const char *why) {
    list w;
    list_move_all(&w, &f->waiting);
    while (!list_empty(&w)) {
        persist_waiter *pw = container_of(list_first(&w), persist_waiter, node);
        list_remove(&pw->node);
        list_init(&pw->node);
        pw->fn(pw, error, why);
    }
}

/* Hands what changed to the store, unless it is busy, or nothing urgent
 * waits and the changes are younger than LIMIT_STORE_LAZY_MS (few). */
static void flush(void) {
    if (!enabled || backing_off || store_busy())
        return;
    if (!dirty.n && !store_batch_size() && list_empty(&waiting_next)) {
        lazy_since_ms = 0;
        return;
    }
    if (!urgent && !stopping && dirty.n + store_batch_size() < LIMIT_STORE_LAZY_ROWS) {
        uint64_t now = uv_now(loop);
        if (!lazy_since_ms)
            lazy_since_ms = now;
        if (now - lazy_since_ms < LIMIT_STORE_LAZY_MS) {
            if (!uv_is_active((uv_handle_t *)&lazy_timer))
                uv_timer_start(&lazy_timer, on_lazy, LIMIT_STORE_LAZY_MS - (now - lazy_since_ms),
                               0);
            return;
        }
    }
    lazy_since_ms = 0;
    uv_timer_stop(&lazy_timer);
    encode_dirty(LIMIT_STORE_BATCH_ROWS);
    /* What is left goes with the next batch, as soon as this one is in. */
    urgent = dirty.n > 0;
    /* Waiters go with this batch unless their task's record is left for
     * the next one. */
    flight *f = flight_of(store_batch_seq());
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &waiting_next) {
        persist_waiter *pw = container_of(pos, persist_waiter, node);
        if (!(pw->task->store_flags & F_DIRTY)) {
            list_remove(&pw->node);
            list_insert_tail(&f->waiting, &pw->node);
        }
    }
    if (!store_flush()) {
        /* Nothing to write (every dirty task was dropped): the waiters'
         * records are already committed. */
        fire_sent_waiters(f, 0, NULL);
        /* No commit will wake the loop for what is still dirty. */
        if (dirty.n)
            uv_timer_start(&lazy_timer, on_lazy, 0, 0);
    }
}

static void on_prepare(uv_prepare_t *h) {
    (void)h;
    flush();
}

static void on_lazy(uv_timer_t *h) {
    (void)h;
    flush();
}

static void on_retry(uv_timer_t *h) {
    (void)h;
    backing_off = false;
    flush();
}

/* Failed commits in a row, and when the last was logged: a full disk
 * fails one a second for as long as it stays full. */
static unsigned failed_in_a_row;
static uint64_t failure_logged_ms;

static void note_commit(int error, const char *why) {
    uint64_t now = uv_now(loop);
    if (!error) {
        if (failed_in_a_row)
            log_notice("state store: a commit went in again, after %u that failed; what they "
                       "held is written",
                       failed_in_a_row);
        failed_in_a_row = 0;
        return;
    }
    if (failed_in_a_row++ == 0 || now - failure_logged_ms >= LIMIT_STORE_FAILURE_LOG_MS) {
        log_error("%s; its changes are written again every %u ms until a commit goes in (%u "
                  "failed so far)",
                  why, LIMIT_STORE_RETRY_MS, failed_in_a_row);
        failure_logged_ms = now;
    }
}

static void on_committed(uint64_t seq, int error, const char *why) {
    flight *f = flight_of(seq);
    task_vec *sent = &f->sent;
    note_commit(error, why);
    if (error) {
        backing_off = true;
        uv_timer_start(&retry_timer, on_retry, LIMIT_STORE_RETRY_MS, 0);
    }
    for (size_t i = 0; i < sent->n; i++) {
        task *t = sent->v[i];
        /* Its latest record was in this batch (not in a later one). */
        if (t->store_seq == seq_tag(seq))
            t->store_seq = 0;
        bool gate = t->store_flags & F_GATE_SENT;
        t->store_flags &= (uint8_t)~F_GATE_SENT;
        if (error) {
            if (t->durable && !frozen)
                mark_dirty(t);
        } else if (gate && (t->store_flags & F_GATED)) {
            t->store_flags = (uint8_t)((t->store_flags & ~F_GATED) | F_START_OK);
            if (!task_finished(t))
                sched_start(t);
        }
        task_unref(t);
    }
    sent->n = 0;
    fire_sent_waiters(f, error, why);
    /* The next batch is handed over by the prepare hook, after this
     * iteration's drain: tasks submitted just now are at the gate by then,
     * and written once, as running, instead of pending and then running. */
}

/* ---------------------------------------------------------------- restart */

/*
 * Records are unpacked into an arena reset for each row: the load makes a
 * million of them, and what it keeps (arguments, result) is copied out.
 * The arena's blocks stay for the next row and are freed after the load.
 */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

static void *arena_alloc(void *u, size_t size) {
    arena *a = u;
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    arena_block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t want = size > 65536 ? size : 65536;
        arena_block *n = alloc_malloc(sizeof(*n) + want);
        if (!n)
            return NULL;
        n->used = 0;
        n->size = want;
        n->next = b;
        a->head = n;
        b = n;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

static void arena_free_one(void *u, void *p) {
    (void)u, (void)p; /* all of it goes at the reset */
}

/* Keeps the first block (the common case fits it) and frees the rest. */
static void arena_reset(arena *a) {
    arena_block *b = a->head;
    if (!b)
        return;
    for (arena_block *n = b->next, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    b->next = NULL;
    b->used = 0;
}

static void arena_done(arena *a) {
    arena_reset(a);
    free(a->head);
    a->head = NULL;
}

typedef struct load_ctx {
    arena arena;
    ProtobufCAllocator unpack_allocator;
    uint64_t started_usec; /* this start */
    uint64_t stopped_usec; /* the last clean stop, or 0 */
    size_t restored, pending, interrupted_fail, interrupted_retry, finished, missing, held;
    const char *first_missing_fn;
    char first_missing[256];
    /* Ids of the rows left in the store (their function is not loaded), so
     * that unfinished tasks that run after them stay there too. */
    hashmap *kept;
    /* Tasks that were running, settled once every row is read: a task
     * that runs after one of them (a later id) watches it by then, and
     * learns how it ended instead of finding it gone (a detached task
     * leaves the table as it ends). */
    task_vec interrupted;
    char *err;
    size_t err_len;
} load_ctx;

bool persist_retries_on_interrupt(const fn_entry *fn) {
    int policy = -1;
    for (size_t i = 0; i < cfg.n_on_interrupt; i++) {
        char name[256], how[16];
        if (sscanf(cfg.on_interrupt[i], "%255s %15s", name, how) != 2)
            continue;
        size_t n = strlen(name);
        bool match = name[n - 1] == '.' ? strncmp(fn->full_name, name, n) == 0
                                        : strcmp(fn->full_name, name) == 0;
        if (match)
            policy = strcmp(how, "retry") == 0;
    }
    if (policy >= 0)
        return policy;
    const struct aiod_function *d = fn->def;
    return d->struct_size >=
               offsetof(struct aiod_function, on_interrupt) + sizeof(d->on_interrupt) &&
           d->on_interrupt == AIOD_ON_INTERRUPT_RETRY;
}

static void format_time(uint64_t usec, char *buf, size_t len) {
    time_t s = (time_t)(usec / 1000000);
    struct tm tm;
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&s, &tm));
}

/* Why a task that was running did not end, and why it is not run again:
 * on_interrupt = fail, or retry after LIMIT_INTERRUPT_RETRIES of them. */
static void interrupted_message(const load_ctx *ctx, const task *t, char *buf, size_t len) {
    char started[64], now[64], why[96];
    if (persist_retries_on_interrupt(t->fn))
        snprintf(why, sizeof(why), "on_interrupt = retry, and it was interrupted %u times already",
                 t->plan ? t->plan->interrupted : 0);
    else
        snprintf(why, sizeof(why), "on_interrupt = fail");
    format_time(t->started_usec, started, sizeof(started));
    format_time(ctx->started_usec, now, sizeof(now));
    if (ctx->stopped_usec && ctx->stopped_usec >= t->started_usec) {
        char stopped[64];
        format_time(ctx->stopped_usec, stopped, sizeof(stopped));
        snprintf(buf, len,
                 "aiod stopped at %s while this task ran (attempt %u, started %s); it was not "
                 "run again (%s)",
                 stopped, plan_attempt(t), started, why);
    } else
        snprintf(buf, len,
                 "aiod stopped (it was killed or crashed) while this task ran (attempt %u, started "
                 "%s); aiod started again at %s; it was not run again (%s)",
                 plan_attempt(t), started, now, why);
}

/* Copies the stored arguments out of the arena; NULL when out of memory. */
static Aiod__Value **copy_args(const Aiod__StoredTask *st) {
    Aiod__Value **v = alloc_calloc(st->n_args ? st->n_args : 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < st->n_args; i++)
        if (!(v[i] = pbvalue_copy(st->args[i]))) {
            value_argv_free(v, st->n_args);
            return NULL;
        }
    return v;
}

static int restore_plan(task *t, Aiod__StoredTask *st) {
    bool needed =
        st->schedule || st->attempt > 1 || st->n_attempts || st->next_run_usec || st->interrupted;
    if (!needed)
        return 0;
    if (plan_ensure(t) < 0)
        return -ENOMEM;
    task_plan *p = t->plan;
    if (st->schedule) {
        p->retries = st->schedule->retries;
        p->backoff = st->schedule->backoff;
        p->backoff_max = st->schedule->backoff_max;
        if (st->schedule->n_after) {
            p->after = alloc_malloc(st->schedule->n_after * sizeof(uint64_t));
            if (!p->after)
                return -ENOMEM;
            memcpy(p->after, st->schedule->after, st->schedule->n_after * sizeof(uint64_t));
            p->n_after = (uint32_t)st->schedule->n_after;
        }
        /* At most one per dependency: a record saying more is damaged. */
        if (st->n_after_done > p->n_after)
            return -EBADMSG;
        if (st->n_after_done) {
            p->after_done = alloc_calloc(p->n_after, sizeof(uint64_t));
            if (!p->after_done)
                return -ENOMEM;
            memcpy(p->after_done, st->after_done, st->n_after_done * sizeof(uint64_t));
            p->n_after_done = (uint32_t)st->n_after_done;
        }
    }
    p->attempt = st->attempt;
    p->next_run_usec = st->next_run_usec;
    p->after_met = st->after_met;
    p->interrupted = st->interrupted;
    for (size_t i = 0; i < st->n_attempts; i++) {
        const Aiod__Attempt *a = st->attempts[i];
        if (plan_add_attempt(t, a->number, a->started_usec, a->finished_usec, a->error_kind,
                             a->error_message) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void restore_output(task *t, const Aiod__StoredTask *st) {
    if (!st->n_output_tail && !st->output_lines)
        return;
    output *o = task_output(t);
    if (!o)
        return;
    for (size_t i = 0; i < st->n_output_tail; i++)
        output_append(o, 1, st->output_tail[i], strlen(st->output_tail[i]));
    if (st->output_lines > o->next_seq) {
        o->dropped += st->output_lines - o->next_seq;
        o->next_seq = st->output_lines;
    }
}

/* When the interrupted attempt ended: the recorded clean stop if it came
 * after the attempt started, else (a kill, a crash) this start. */
static uint64_t interrupted_at(const load_ctx *ctx, const task *t) {
    return ctx->stopped_usec && ctx->stopped_usec >= t->started_usec ? ctx->stopped_usec
                                                                     : ctx->started_usec;
}

/* Brings back a task that was running when the daemon stopped. */
static void restore_interrupted(load_ctx *ctx, task *t) {
    char msg[LIMIT_MESSAGE];
    bool retry = persist_runs_again_after_interrupt(t);
    /* The interrupted attempt's number: a task with no plan had one. */
    unsigned number = plan_attempt(t) ? plan_attempt(t) : 1;
    if (retry && plan_ensure(t) == 0) {
        if (t->plan->attempt < number)
            t->plan->attempt = number;
        char started[64], ended[64];
        uint64_t ended_usec = interrupted_at(ctx, t);
        format_time(t->started_usec, started, sizeof(started));
        format_time(ended_usec, ended, sizeof(ended));
        if (ended_usec == ctx->stopped_usec)
            snprintf(msg, sizeof(msg), "aiod stopped at %s while this attempt ran (started %s)",
                     ended, started);
        else
            snprintf(msg, sizeof(msg),
                     "aiod stopped (it was killed or crashed) while this attempt ran (started "
                     "%s); aiod started again at %s",
                     started, ended);
        plan_add_attempt(t, number, t->started_usec, ended_usec, "Interrupted", msg);
        t->plan->interrupted++;
        t->plan->next_run_usec = 0;
        ctx->interrupted_retry++;
        task_changed(t);
        plan_start(t);
        return;
    }
    interrupted_message(ctx, t, msg, sizeof(msg));
    /* The last attempt is listed as plan_retry lists one that failed:
     * when there could have been more than one. */
    if (t->plan && (t->plan->retries || t->plan->interrupted))
        plan_add_attempt(t, number, t->started_usec, interrupted_at(ctx, t), "Interrupted", msg);
    if (t->plan)
        t->plan->no_retry = true;
    ctx->interrupted_fail++;
    task_finish(t, TASK_FAILED, NULL, alloc_strdup("Interrupted"), alloc_strdup(msg));
}

/* Row `id`'s record, unpacked into the arena; NULL (the reason in ctx->err)
 * when it is not a stored task. */
static Aiod__StoredTask *decode_row(load_ctx *ctx, uint64_t id, const void *record, size_t len) {
    arena_reset(&ctx->arena);
    Aiod__StoredTask *st = aiod__stored_task__unpack(&ctx->unpack_allocator, len, record);
    if (st && st->id == id && st->function)
        return st;
    snprintf(ctx->err, ctx->err_len,
             "the state store %s is damaged (the record of task %" PRIu64
             " cannot be read): aiod cannot tell what that task was. Restore the store "
             "from a backup, or start aiod once with --state-recover=fresh to move it aside "
             "and start with an empty store",
             store_path(), id);
    return NULL;
}

static int check_row(void *u, uint64_t id, int state, const void *record, size_t len) {
    (void)state;
    return decode_row(u, id, record, len) ? 0 : -EBADMSG;
}

static void load_ctx_init(load_ctx *ctx, char *err, size_t err_len) {
    *ctx = (load_ctx){.started_usec = task_now_usec(), .err = err, .err_len = err_len};
    ctx->unpack_allocator = (ProtobufCAllocator){
        .alloc = arena_alloc, .free = arena_free_one, .allocator_data = &ctx->arena};
}

int persist_check(char *err, size_t err_len) {
    load_ctx ctx;
    load_ctx_init(&ctx, err, err_len);
    int r = store_load(check_row, &ctx, err, err_len);
    arena_done(&ctx.arena);
    return r;
}

/* Leaves row `id` in the store, untouched. */
static int keep_row(load_ctx *ctx, uint64_t id) {
    if (!ctx->kept && !(ctx->kept = hashmap_new(0)))
        goto oom;
    if (hashmap_put_u64(ctx->kept, id, (void *)1) < 0)
        goto oom;
    return 0;
oom:
    snprintf(ctx->err, ctx->err_len, "out of memory reading task %" PRIu64, id);
    return -ENOMEM;
}

static int restore_row(void *u, uint64_t id, int state, const void *record, size_t len) {
    load_ctx *ctx = u;
    (void)state;
    Aiod__StoredTask *st = decode_row(ctx, id, record, len);
    if (!st)
        return -EBADMSG;
    fn_entry *fn = plugin_lookup(st->function);
    if (!fn || st->n_args != fn->sig.n_params) {
        if (!ctx->missing++)
            snprintf(ctx->first_missing, sizeof(ctx->first_missing), "%s", st->function);
        return keep_row(ctx, id);
    }
    /* It runs after a task left in the store: it waits there with it
     * (failing it as DependencyFailed would say its dependency is gone). */
    if (st->state < AIOD__TASK_STATE__TASK_DONE && st->schedule && ctx->kept)
        for (size_t i = 0; i < st->schedule->n_after; i++)
            if (hashmap_get_u64(ctx->kept, st->schedule->after[i])) {
                ctx->held++;
                return keep_row(ctx, id);
            }
    bool ended = st->state >= AIOD__TASK_STATE__TASK_DONE;
    Aiod__Value **argv = copy_args(st);
    task *t;
    int r = argv ? task_restore(fn, argv, st->n_args, id, (int)st->ownership, (uid_t)st->owner_uid,
                                (pid_t)st->owner_pid, st->created_usec, ended, &t)
                 : -ENOMEM;
    if (r < 0) {
        snprintf(ctx->err, ctx->err_len, "cannot restore task %" PRIu64 ": %s", id, strerror(-r));
        return r;
    }
    t->durable = true;
    t->started_usec = st->started_usec;
    ctx->restored++;
    r = restore_plan(t, st);
    if (r < 0) {
        task_unref(t);
        if (r == -EBADMSG)
            snprintf(ctx->err, ctx->err_len,
                     "task %" PRIu64 ": its record is damaged (more met dependencies than it has)",
                     id);
        else
            snprintf(ctx->err, ctx->err_len, "out of memory restoring task %" PRIu64, id);
        return r;
    }
    switch (st->state) {
    case AIOD__TASK_STATE__TASK_PENDING:
        ctx->pending++;
        plan_start(t);
        break;
    case AIOD__TASK_STATE__TASK_RUNNING:
        /* The lines a clean stop wrote with it, for its outcome. */
        restore_output(t, st);
        if (vec_push(&ctx->interrupted, t) < 0) {
            task_unref(t);
            snprintf(ctx->err, ctx->err_len, "out of memory restoring task %" PRIu64, id);
            return -ENOMEM;
        }
        break;
    default: {
        Aiod__Outcome *o = st->outcome;
        Aiod__Value *result = o && o->result ? pbvalue_copy(o->result) : NULL;
        char *kind = o && o->error_kind && *o->error_kind ? alloc_strdup(o->error_kind) : NULL;
        char *message =
            o && o->error_message && *o->error_message ? alloc_strdup(o->error_message) : NULL;
        restore_output(t, st);
        if (t->out)
            output_end(t->out, (int)st->state);
        ctx->finished++;
        task_restore_ended(t, (int)st->state, result, kind, message, st->started_usec,
                           st->finished_usec);
        break;
    }
    }
    task_unref(t);
    return 0;
}

int persist_start(uv_loop_t *l, char *err, size_t err_len) {
    loop = l;
    for (size_t k = 0; k < STORE_MAX_HANDED; k++)
        list_init(&flights[k].waiting);
    load_ctx ctx;
    load_ctx_init(&ctx, err, err_len);
    uint64_t v;
    if (store_get_meta("stopped_usec", &v) == 0)
        ctx.stopped_usec = v;
    /* Changes made while loading (interrupted tasks, pruned outcomes) go
     * to the store like any other. */
    task_set_store_hook(on_task_event);
    enabled = true;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Outcomes past their retention are not read back at all. */
    uint64_t expired = 0, keep_usec = (uint64_t)cfg.retain_seconds * 1000000u;
    if (keep_usec < ctx.started_usec &&
        store_prune_finished(TASK_DONE, ctx.started_usec - keep_usec, &expired) == 0 && expired)
        log_info("state store: %" PRIu64 " outcomes past retain_seconds deleted", expired);
    int r = store_load(restore_row, &ctx, err, err_len);
    arena_done(&ctx.arena);
    hashmap_free(ctx.kept);
    for (size_t i = 0; i < ctx.interrupted.n; i++) {
        if (r >= 0)
            restore_interrupted(&ctx, ctx.interrupted.v[i]);
        task_unref(ctx.interrupted.v[i]);
    }
    free(ctx.interrupted.v);
    if (r < 0) {
        enabled = false;
        task_set_store_hook(NULL);
        return r;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (ctx.restored || ctx.missing)
        log_info("state store %s: %zu tasks restored in %.3f s (%zu pending, %zu finished, %zu "
                 "interrupted and failed, %zu interrupted and run again)",
                 store_path(), ctx.restored, took, ctx.pending, ctx.finished, ctx.interrupted_fail,
                 ctx.interrupted_retry);
    if (ctx.missing)
        log_warning("state store: %zu tasks name functions that are not loaded now (the first: "
                    "%s) or whose parameters changed; they stay in the store, untouched, and are "
                    "read again at the next start",
                    ctx.missing, ctx.first_missing);
    if (ctx.held)
        log_warning("state store: %zu unfinished tasks run after one of those; they stay in the "
                    "store with them",
                    ctx.held);
    /* This start is not a clean stop. */
    store_put_meta("stopped_usec", 0);
    r = store_start(loop, on_committed);
    if (r < 0) {
        snprintf(err, err_len, "cannot start the state store's thread: %s", strerror(-r));
        enabled = false;
        task_set_store_hook(NULL);
        return r;
    }
    uv_prepare_init(loop, &prepare);
    uv_prepare_start(&prepare, on_prepare);
    uv_unref((uv_handle_t *)&prepare);
    uv_timer_init(loop, &retry_timer);
    uv_unref((uv_handle_t *)&retry_timer);
    uv_timer_init(loop, &lazy_timer);
    uv_unref((uv_handle_t *)&lazy_timer);
    handles_init = true;
    return 0;
}

bool persist_runs_again_after_interrupt(const task *t) {
    return persist_retries_on_interrupt(t->fn) &&
           (!t->plan || t->plan->interrupted < LIMIT_INTERRUPT_RETRIES);
}

bool persist_cut_off_while_running(const task *t) {
    return t->store_flags & F_WAS_RUNNING;
}

const char *persist_cut_off_fate(const task *t) {
    if (!persist_cut_off_while_running(t))
        return "is kept in the state store as it was and goes on after the restart";
    return persist_runs_again_after_interrupt(t)
               ? "was running: it is kept in the state store and runs again after the restart "
                 "(on_interrupt = retry)"
               : "was running: it is kept in the state store, and the restart ends it failed, "
                 "kind Interrupted (on_interrupt = fail)";
}

void persist_freeze(void) {
    if (!enabled || frozen || stopping)
        return;
    /* Tasks let through the gate but not started keep a pending record:
     * cancelled by the stop, they never ran. */
    for (task *t = task_first(); t; t = task_after(t)) {
        if (!t->durable)
            continue;
        if (t->state == TASK_RUNNING)
            t->store_flags |= F_WAS_RUNNING;
        else if (t->state == TASK_PENDING &&
                 (t->store_flags & (F_GATED | F_GATE_SENT | F_START_OK))) {
            t->store_flags &= (uint8_t) ~(F_GATED | F_START_OK);
            mark_dirty(t);
        }
    }
    stopping = true;
    store_put_meta("stopped_usec", task_now_usec());
    flush();
}

void persist_done(void) {
    if (!enabled)
        return;
    /* What changed since the last batch is written by store_close, and so
     * are the tasks of the batches it was not seen to commit: one that
     * failed is not written again whole, as its records may be older than
     * a later batch's (store.h). */
    for (size_t k = 0; k < STORE_MAX_HANDED; k++) {
        task_vec *sent = &flights[k].sent;
        for (size_t i = 0; i < sent->n; i++)
            if (sent->v[i]->durable && sent->v[i]->in_table)
                mark_dirty(sent->v[i]);
    }
    if (!frozen)
        encode_dirty(SIZE_MAX);
    frozen = true;
    task_set_store_hook(NULL);
    if (handles_init) {
        uv_close((uv_handle_t *)&prepare, NULL);
        uv_close((uv_handle_t *)&retry_timer, NULL);
        uv_close((uv_handle_t *)&lazy_timer, NULL);
        handles_init = false;
    }
    for (size_t i = 0; i < dirty.n; i++)
        task_unref(dirty.v[i]);
    for (size_t k = 0; k < STORE_MAX_HANDED; k++) {
        task_vec *sent = &flights[k].sent;
        for (size_t i = 0; i < sent->n; i++)
            task_unref(sent->v[i]);
        free(sent->v);
        *sent = (task_vec){0};
    }
    free(dirty.v);
    dirty = (task_vec){0};
    store_close();
    uint64_t batches, rows, max_rows;
    store_stats(&batches, &rows, &max_rows);
    log_info("state store: %" PRIu64 " commits wrote %" PRIu64 " records (%.1f per commit, at "
             "most %" PRIu64 ")",
             batches, rows, batches ? (double)rows / (double)batches : 0.0, max_rows);
    enabled = false;
}

void persist_stats(uint64_t *ret_batches, uint64_t *ret_rows, uint64_t *ret_max_rows) {
    store_stats(ret_batches, ret_rows, ret_max_rows);
}

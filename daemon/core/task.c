/*
 * The task table and task lifecycle (task.h).
 */
#include "core/task.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "system/config.h"
#include "base/hashmap.h"
#include "base/slab.h"
#include "base/utf8.h"
#include "core/idle.h"
#include "system/log.h"
#include "macro.h"
#include "pbvalue.h"
#include "core/output.h"
#include "core/reclaim.h"
#include "host/registry.h"
#include "system/policy.h"
#include "system/sd.h"

/* Task structs and run parts come from slabs (slab.h): a burst of a million
 * tasks maps a few hundred huge-page chunks instead of faulting in a few
 * hundred thousand pages, and the next burst reuses them. Empty chunks are
 * kept up to TASK_SLAB_IDLE per slab, and all given back once the daemon
 * is idle. */
#define TASK_SLAB_IDLE ((size_t)512 << 20)
static slab task_blocks = SLAB_INIT(sizeof(task), TASK_SLAB_IDLE);
static slab run_blocks = SLAB_INIT(sizeof(task_run), TASK_SLAB_IDLE);

static hashmap *table;

void task_cache_release(void) {
    slab_trim(&task_blocks, 0);
    slab_trim(&run_blocks, 0);
    /* Removals leave the table of a burst up to 32 times too large. */
    if (table)
        hashmap_compact(table);
}

/* Every task in the table, in id order (task.order_node). */
static list in_order = {&in_order, &in_order};
static uint64_t next_id = 1;
/* Ids below this are ours to hand out; then id_reserve gives more. */
static uint64_t id_end = UINT64_MAX;
static task_id_reserve_fn id_reserve;
static size_t unfinished;
static size_t running;
static uint64_t finished_total;
/* Finished tasks kept for later awaits, oldest first. */
/* Finished tasks kept for later awaits, per owner uid, each list in the
 * order they were kept: memory (retain_bytes) is taken back from the uid
 * that holds the most, so that one user's big outcomes cannot push out
 * everyone else's, while count and age go by the oldest of all (the oldest
 * of the lists' heads: uids are few). */
typedef struct retainer {
    uid_t uid;
    list tasks; /* task.retain_node */
    uint64_t bytes;
    size_t count;
} retainer;
static retainer **retainers;
static size_t n_retainers, cap_retainers;
static size_t n_retained;
/* Their retained_bytes together, and the one kept last (never taken back
 * for memory: its client may be about to ask for it). */
static uint64_t retained_bytes;
static task *newest_retained;

uint64_t task_now_usec(void) {
    struct timespec ts;
    /* The coarse clock (a few ms of resolution) is enough for task times
     * and costs a fraction of the precise one, three times per task. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Fires when the oldest retained outcome is past retain_seconds, so that
 * outcomes expire (and their memory goes back) while no task ends either. */
static uv_timer_t expiry;
static bool expiry_init;

/* The fields of log lines about a task (log.h). */
static void describe(const void *p, log_subject *ret) {
    const task *t = p;
    *ret = (log_subject){
        .task_id = t->id,
        .function = t->fn->full_name,
        .plugin = t->fn->owner->name,
        .owner_uid = (unsigned)t->uid,
        .state = task_finished(t) ? task_state_name(t->state) : NULL,
        .error_kind = t->error_kind,
        .error_message = t->error_message,
    };
}

int task_table_init(uv_loop_t *loop) {
    log_set_describer(describe);
    table = hashmap_new(0);
    if (!table)
        return -ENOMEM;
    uv_timer_init(loop, &expiry);
    uv_unref((uv_handle_t *)&expiry);
    expiry_init = true;
    return 0;
}

/* Unfinished tasks per uid, for max_tasks_per_uid, and the KiB their
 * arguments hold, for max_task_bytes_per_uid. */
static hashmap *per_uid, *per_uid_kib;

static uint32_t uid_tasks(uid_t uid) {
    return hashmap_count_get(per_uid, uid);
}

static uint32_t kib_of(uint32_t bytes) {
    return (uint32_t)(((uint64_t)bytes + 1023) >> 10);
}

/* t joins (+1) or leaves (-1) its user's unfinished tasks. */
static void uid_tasks_add(const task *t, int delta) {
    if (t->uid == 0) /* root is exempt from the per-user limits: no count */
        return;
    hashmap_count_add(&per_uid, t->uid, delta);
    uint32_t kib = kib_of(t->arg_bytes);
    if (kib)
        hashmap_count_add(&per_uid_kib, t->uid, delta * (int)kib);
}

void task_count_pinned(const task *t, int delta) {
    if (t->uid == 0)
        return;
    uint32_t kib = kib_of(t->retained_bytes);
    if (kib)
        hashmap_count_add(&per_uid_kib, t->uid, delta * (int)kib);
}

static uint32_t clamp_u32(size_t n) {
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static uint32_t args_footprint(Aiod__Value *const *argv, size_t argc) {
    size_t n = 0;
    for (size_t i = 0; i < argc; i++)
        n += pbvalue_footprint(argv[i]);
    return clamp_u32(n);
}

static void (*store_hook)(task *t, int event);

void task_set_store_hook(void (*hook)(task *t, int event)) {
    store_hook = hook;
}

void task_changed(task *t) {
    if (t->durable && store_hook)
        store_hook(t, TASK_STORE_CHANGED);
}

/* uid's retainer; with `make`, a new one if it has none (NULL: no memory). */
static retainer *retainer_of(uid_t uid, bool make) {
    for (size_t i = 0; i < n_retainers; i++)
        if (retainers[i]->uid == uid)
            return retainers[i];
    if (!make)
        return NULL;
    if (n_retainers == cap_retainers) {
        size_t cap = cap_retainers ? 2 * cap_retainers : 8;
        retainer **n = alloc_realloc(retainers, cap * sizeof(*n));
        if (!n)
            return NULL;
        retainers = n;
        cap_retainers = cap;
    }
    retainer *r = alloc_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->uid = uid;
    list_init(&r->tasks);
    retainers[n_retainers++] = r;
    return r;
}

static void unretain(task *t) {
    retainer *r = retainer_of(t->uid, false);
    assert(r);
    list_remove(&t->retain_node);
    n_retained--;
    r->count--;
    retained_bytes -= t->retained_bytes;
    r->bytes -= t->retained_bytes;
    if (t == newest_retained)
        newest_retained = NULL;
    if (!list_empty(&r->tasks))
        return;
    for (size_t i = 0; i < n_retainers; i++)
        if (retainers[i] == r) {
            retainers[i] = retainers[--n_retainers];
            break;
        }
    free(r);
}

static task *head_of(const retainer *r) {
    return container_of(list_first(&r->tasks), task, retain_node);
}

/* r's first task other than `skip`, or NULL. */
static task *first_but(const retainer *r, const task *skip) {
    task *h = head_of(r);
    if (h != skip)
        return h;
    list *next = h->retain_node.next;
    return next == &r->tasks ? NULL : container_of(next, task, retain_node);
}

/* The retained task other than `skip` that ended first (NULL if none). */
static task *oldest_retained_but(const task *skip) {
    task *best = NULL;
    for (size_t i = 0; i < n_retainers; i++) {
        task *h = first_but(retainers[i], skip);
        if (h && (!best || h->finished_usec < best->finished_usec ||
                  (h->finished_usec == best->finished_usec && h->id < best->id)))
            best = h;
    }
    return best;
}

static task *oldest_retained(void) {
    return oldest_retained_but(NULL);
}

/* What to take back: the oldest outcome of the uid that holds the most
 * memory (by_count false: for retain_bytes) or has the most outcomes kept
 * (for retain_count), so that one user's big or many outcomes do not push
 * out everyone else's; never the newest of all (then the oldest of the
 * others). */
static task *largest_holders_oldest(bool by_count) {
    retainer *top = NULL;
    for (size_t i = 0; i < n_retainers; i++)
        if (!top ||
            (by_count ? retainers[i]->count > top->count : retainers[i]->bytes > top->bytes))
            top = retainers[i];
    task *t = top ? first_but(top, newest_retained) : NULL;
    return t ? t : oldest_retained_but(newest_retained);
}

static void table_drop(task *t) {
    if (!t->in_table)
        return;
    if (t->durable && store_hook)
        store_hook(t, TASK_STORE_DROPPED);
    hashmap_remove_u64(table, t->id);
    list_remove(&t->order_node);
    t->in_table = false;
    if (list_linked(&t->retain_node))
        unretain(t);
    task_unref(t);
}

void task_table_done(void) {
    while (n_retainers > 0)
        table_drop(head_of(retainers[0]));
    free(retainers);
    retainers = NULL;
    cap_retainers = 0;
    while (!list_empty(&in_order))
        table_drop(container_of(list_first(&in_order), task, order_node));
    hashmap_free(table);
    table = NULL;
    hashmap_free(per_uid);
    hashmap_free(per_uid_kib);
    per_uid = per_uid_kib = NULL;
    task_cache_release();
    if (expiry_init)
        uv_close((uv_handle_t *)&expiry, NULL);
    expiry_init = false;
}

int task_set_id_source(task_id_reserve_fn reserve) {
    uint64_t first, end;
    int r = reserve(&first, &end);
    if (r < 0)
        return r;
    assert(first > 0 && end > first);
    id_reserve = reserve;
    next_id = first;
    id_end = end;
    return 0;
}

/* Makes sure next_id is ours to use. */
static int ensure_id(void) {
    if (next_id < id_end)
        return 0;
    uint64_t first, end;
    int r = id_reserve(&first, &end);
    if (r < 0)
        return r;
    /* The counter on disk went backwards (edited by hand, or a restored
     * backup): using it would hand out ids again. Refuse new tasks instead. */
    if (first < id_end || end <= first) {
        log_error("the id counter went back from %llu to %llu; no new task until it is fixed",
                  (unsigned long long)id_end, (unsigned long long)first);
        return -EBADMSG;
    }
    next_id = first;
    id_end = end;
    return 0;
}

/* A new task struct with its run part, in the table under `id`, holding
 * the caller's and the table's references. argv is taken, also on
 * failure. */
static int task_make(fn_entry *fn, Aiod__Value **argv, size_t argc, uint32_t arg_bytes, uint64_t id,
                     int ownership, uid_t uid, pid_t pid, output *out, bool ended, task **ret) {
    task *t = slab_alloc(&task_blocks);
    /* A task restored as ended never runs: it needs no run part. */
    task_run *r = t && !ended ? slab_alloc(&run_blocks) : NULL;
    if (!t || (!r && !ended)) {
        slab_free(&task_blocks, t);
        value_argv_free(argv, argc);
        return -ENOMEM;
    }
    t->run = r;
    if (r)
        r->task = t;
    t->refs = 1; /* the caller's */
    t->id = id;
    t->state = TASK_PENDING;
    t->ownership = ownership;
    t->fn = fn;
    t->argv = argv;
    t->argc = (uint32_t)argc; /* at most LIMIT_PARAMS */
    t->arg_bytes = arg_bytes;
    t->uid = uid;
    t->pid = pid;
    t->created_usec = task_now_usec();
    if (r) {
        list_init(&r->children);
        list_init(&r->child_node);
        list_init(&r->owner_node);
        list_init(&r->ready_node);
        list_init(&r->waiters);
        list_init(&r->limit_node);
        list_init(&r->fut_wait.node);
        list_init(&r->open_scopes);
    }
    t->aio = fn->owner && fn->owner->desc && fn->owner->desc->abi_minor >= 4;
    list_init(&t->retain_node);
    t->out = output_ref(out);
    t->end_step = 0;
    if (hashmap_put_u64(table, t->id, t) < 0) {
        output_unref(t->out);
        value_argv_free(argv, argc);
        slab_free(&run_blocks, r);
        slab_free(&task_blocks, t);
        return -ENOMEM;
    }
    /* Ids only grow (restored tasks come first, in id order): the newest
     * task goes last. */
    list_insert_tail(&in_order, &t->order_node);
    t->in_table = true;
    t->refs++; /* the table's */
    unfinished++;
    uid_tasks_add(t, +1);
    plugin_hold(fn->owner);
    *ret = t;
    return 0;
}

int task_new(fn_entry *fn, Aiod__Value **argv, size_t argc, int ownership, uid_t uid, pid_t pid,
             output *out, task **ret) {
    if (unfinished >= cfg.max_tasks) {
        value_argv_free(argv, argc);
        return -EAGAIN;
    }
    if (uid != 0 && uid_tasks(uid) >= policy_lim.max_tasks_per_uid) {
        value_argv_free(argv, argc);
        return -EDQUOT;
    }
    uint32_t arg_bytes = args_footprint(argv, argc);
    uint64_t limit_kib = policy_lim.max_task_bytes_per_uid >> 10;
    if (uid != 0 && (uint64_t)hashmap_count_get(per_uid_kib, uid) + kib_of(arg_bytes) > limit_kib) {
        value_argv_free(argv, argc);
        /* Over it alone, it would never fit: not a reason to wait. */
        return kib_of(arg_bytes) > limit_kib ? -E2BIG : -ENOBUFS;
    }
    for (;;) {
        int idr = ensure_id();
        if (idr < 0) {
            value_argv_free(argv, argc);
            return idr == -ENOMEM ? idr : -EIO;
        }
        if (!hashmap_get_u64(table, next_id))
            break;
        /* Only if the counter was behind the tasks restored (main.c moves
         * it past them at start): never hand out an id twice. */
        log_error("task id %llu is already in use; skipping it", (unsigned long long)next_id);
        next_id++;
    }
    int r = task_make(fn, argv, argc, arg_bytes, next_id, ownership, uid, pid, out, false, ret);
    if (r == 0)
        next_id++;
    return r;
}

int task_restore(fn_entry *fn, Aiod__Value **argv, size_t argc, uint64_t id, int ownership,
                 uid_t uid, pid_t pid, uint64_t created_usec, bool ended, task **ret) {
    if (hashmap_get_u64(table, id)) {
        value_argv_free(argv, argc);
        return -EEXIST;
    }
    int r = task_make(fn, argv, argc, args_footprint(argv, argc), id, ownership, uid, pid, NULL,
                      ended, ret);
    if (r == 0)
        (*ret)->created_usec = created_usec;
    return r;
}

/* Whether the retention may keep t's outcome once it is settled. */
static bool retainable(const task *t) {
    return t->parent_id == 0 && t->ownership != AIOD__OWNERSHIP__DETACHED && cfg.retain_count > 0;
}

/* The end state and its outcome (all taken; a result only for done). The
 * values are sized now, with the task's own end, and not when the outcome
 * joins the retention: for attached tasks that is when their connection
 * closes, all of them at once. */
static void set_outcome(task *t, int state, Aiod__Value *result, char *kind, char *message) {
    t->state = (uint8_t)state;
    t->result = state == TASK_DONE ? result : NULL;
    if (state != TASK_DONE)
        pbvalue_free(result);
    t->error_kind = kind;
    t->error_message = message;
    /* An attached client task's outcome may be pinned for its connection
     * (finish.c), and is then counted against max_task_bytes_per_uid by
     * this size, whether or not the retention keeps outcomes. */
    bool may_pin = t->parent_id == 0 && t->ownership == AIOD__OWNERSHIP__ATTACHED;
    if (!retainable(t) && !may_pin)
        return;
    t->retained_bytes = clamp_u32(pbvalue_footprint(t->result) + t->arg_bytes);
}

void task_restore_ended(task *t, int state, Aiod__Value *result, char *kind, char *message,
                        uint64_t started_usec, uint64_t finished_usec) {
    assert(t->state == TASK_PENDING && state >= TASK_DONE && !t->run);
    set_outcome(t, state, result, kind, message);
    t->started_usec = started_usec;
    t->finished_usec = finished_usec;
    uid_tasks_add(t, -1);
    unfinished--;
    /* It ended in an earlier life: nothing of task_finish is left to do
     * but to let go of the plugin's code and settle. */
    plugin_release(t->fn->owner);
    t->end_step = TASK_END_SETTLED_VALUE;
    task_retain_or_drop(t);
}

void task_set_pending_again(task *t) {
    assert(t->state == TASK_RUNNING);
    t->state = TASK_PENDING;
    if (--running == 0)
        idle_maybe(); /* waiting for its next attempt, as the rest may */
    sd_status_changed();
}

static void plan_free(task_plan *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n_attempts; i++) {
        free(p->attempts[i]->error_kind);
        free(p->attempts[i]->error_message);
        free(p->attempts[i]);
    }
    free(p->attempts);
    free(p->after);
    free(p->after_done);
    assert(!p->after_waiters);
    free(p);
}

task *task_ref(task *t) {
    if (t)
        t->refs++;
    return t;
}

static void free_timer(uv_handle_t *h) {
    free(h);
}

void task_note_cancel(task *t, const char *msg) {
    if (!t->run)
        return;
    free(t->run->seen_cancel_msg);
    t->run->seen_cancel_msg = msg ? alloc_strdup(msg) : NULL;
}

void task_scope_entered(task *t, open_scope *s) {
    assert(t->run);
    list_insert_tail(&t->run->open_scopes, &s->node);
}

void task_scope_left(open_scope *s) {
    list_remove(&s->node);
    list_init(&s->node);
}

size_t task_close_open_scopes(task *t) {
    size_t n = 0;
    while (t->run && !list_empty(&t->run->open_scopes)) {
        open_scope *s = container_of(list_last(&t->run->open_scopes), open_scope, node);
        task_scope_left(s);
        s->close(s);
        n++;
    }
    return n;
}

/* Frees the run part: the task has left every list it linked. */
static void release_run(task *t) {
    task_run *r = TAKE_PTR(t->run);
    if (!r)
        return;
    pbvalue_free(r->exit_value);
    caller_unref(r->caller);
    free(r->pending_kind);
    free(r->pending_message);
    free(r->cancel_msg);
    free(r->seen_cancel_msg);
    if (r->co)
        coro_free(r->co);
    if (r->timer)
        uv_close((uv_handle_t *)r->timer, free_timer);
    slab_free(&run_blocks, r);
}

void task_settle(task *t) {
    if (t->run && task_finished(t) && !t->pinned && !t->run->queued)
        release_run(t);
}

task *task_unref(task *t) {
    if (!t || --t->refs > 0)
        return NULL;
    release_run(t);
    if (t->retained_bytes >= RECLAIM_MIN_BYTES)
        reclaim_values(t->argv, t->argc, t->result);
    else {
        value_argv_free(t->argv, t->argc);
        pbvalue_free(t->result);
    }
    free(t->error_kind);
    free(t->error_message);
    output_unref(t->out);
    plan_free(t->plan);
    free(t->name);
    plugin_unref(t->fn->owner);
    slab_free(&task_blocks, t);
    return NULL;
}

task *task_lookup(uint64_t id) {
    return table ? hashmap_get_u64(table, id) : NULL;
}

bool task_finished(const task *t) {
    return t->state >= TASK_DONE;
}

void task_add_waiter(task *t, waiter *w) {
    if (task_finished(t)) {
        list_init(&w->node);
        w->fn(w, t);
        return;
    }
    list_insert_tail(&t->run->waiters, &w->node);
}

void task_remove_waiter(waiter *w) {
    list_remove(&w->node);
}

const char *task_state_name(int state) {
    switch (state) {
    case TASK_PENDING:
        return "pending";
    case TASK_RUNNING:
        return "running";
    case TASK_DONE:
        return "done";
    case TASK_FAILED:
        return "failed";
    case TASK_CANCELLED:
        return "cancelled";
    default:
        return "unknown";
    }
}

static void evict_retained(void) {
    uint64_t now = task_now_usec();
    while (n_retained > 0) {
        task *old = oldest_retained();
        if (now - old->finished_usec > (uint64_t)cfg.retain_seconds * 1000000u) {
            table_drop(old);
            continue;
        }
        if (n_retained > cfg.retain_count) {
            table_drop(largest_holders_oldest(true));
            continue;
        }
        if (n_retained < 2 || retained_bytes <= cfg.retain_bytes)
            break;
        static bool told;
        if (!told) {
            told = true;
            log_notice("retained outcomes hold more than retain_bytes (%zu bytes) with %zu "
                       "kept: the oldest of whoever holds the most are forgotten, before "
                       "retain_count (%u) is reached (said once)",
                       cfg.retain_bytes, n_retained, cfg.retain_count);
        }
        table_drop(largest_holders_oldest(false));
    }
}

static void on_expiry(uv_timer_t *h);

/* Arms the expiry timer for the oldest retained outcome, a second late so
 * that outcomes that ended close together go in one wake-up. */
static void arm_expiry(void) {
    if (!expiry_init || n_retained == 0)
        return;
    const task *old = oldest_retained();
    uint64_t due = old->finished_usec + (uint64_t)cfg.retain_seconds * 1000000u;
    uint64_t now = task_now_usec();
    uint64_t ms = (due > now ? (due - now) / 1000u : 0) + 1000u;
    uv_timer_start(&expiry, on_expiry, ms, 0);
}

static void on_expiry(uv_timer_t *h) {
    (void)h;
    task_retention_changed(); /* evicts, re-arms, hands the memory back */
}

void task_retention_changed(void) {
    evict_retained();
    if (expiry_init)
        uv_timer_stop(&expiry);
    arm_expiry();
    if (task_count_unfinished() == 0)
        idle_maybe(); /* hand the memory back */
}

/* Frees, while the task is still in the cache, what a retained outcome does
 * not need: an output nobody printed into or follows any more. */
static void shrink_for_retention(task *t) {
    output *o = t->out;
    if (o && o->task_id == t->id && o->refs == 1 && o->next_seq == 0 && !output_followed(o))
        t->out = output_unref(o);
}

/* About how much memory t's retained outcome holds: the struct, its
 * arguments and result (sized by set_outcome), error and output (when it
 * is its own). */
static size_t retained_size(const task *t) {
    size_t n = sizeof(*t) + t->retained_bytes;
    n += t->error_kind ? strlen(t->error_kind) + 1 : 0;
    n += t->error_message ? strlen(t->error_message) + 1 : 0;
    /* A retried task's ended attempts, each with its error: up to 1,001 of
     * 2 KiB, which retain_bytes did not see. */
    const task_plan *p = t->plan;
    if (p) {
        n += sizeof(*p) + p->n_after * sizeof(uint64_t) * 2;
        for (size_t i = 0; i < p->n_attempts; i++)
            n += sizeof(*p->attempts[i]) + sizeof(p->attempts[i]) +
                 strlen(p->attempts[i]->error_kind) + strlen(p->attempts[i]->error_message) + 2;
    }
    if (t->out && t->out->task_id == t->id)
        n += output_footprint(t->out);
    return n;
}

void task_retain_or_drop(task *t) {
    task_settle(t);
    /* Cut off by the stop: no outcome (the state store keeps the task as
     * it was), so it stays in the table for the rest of the stop outside
     * retention. Counted there, it pushed the oldest outcomes out, and
     * their rows were deleted. */
    if (t->store_flags & TASK_STORE_CUT_OFF)
        return;
    if (retainable(t)) {
        retainer *r = retainer_of(t->uid, true);
        if (!r) {
            table_drop(t); /* no memory to keep it */
            return;
        }
        shrink_for_retention(t);
        t->retained_bytes = clamp_u32(retained_size(t));
        retained_bytes += t->retained_bytes;
        r->bytes += t->retained_bytes;
        r->count++;
        list_insert_tail(&r->tasks, &t->retain_node);
        n_retained++;
        newest_retained = t;
        evict_retained();
        /* An armed timer is due no later than the oldest outcome's expiry:
         * it re-arms itself for the next when it fires. */
        if (expiry_init && !uv_is_active((uv_handle_t *)&expiry))
            arm_expiry();
    } else
        table_drop(t);
}

void task_discard(task *t) {
    assert(t->state == TASK_PENDING && t->run && !t->run->co && !t->durable && !t->plan);
    task_detach_owner(t);
    uid_tasks_add(t, -1);
    plugin_release(t->fn->owner);
    /* Finished for whoever still holds it, with no outcome to give. */
    t->state = TASK_CANCELLED;
    t->end_step = TASK_END_SETTLED_VALUE;
    table_drop(t);
    if (--unfinished == 0)
        idle_maybe();
}

/* Counts ends; compared within one finished_usec, where far fewer than
 * 32768 ends fall. */
static uint16_t end_seq;

const char *task_unstarted_cancel_message(const task *t) {
    return t->plan && t->plan->n_attempts > 0
               ? "task was cancelled while it waited for its next attempt"
               : "task was cancelled before it started";
}

bool task_ended_before(const task *a, const task *b) {
    if (a->finished_usec != b->finished_usec)
        return a->finished_usec < b->finished_usec;
    return (int16_t)(uint16_t)(a->end_seq - b->end_seq) < 0;
}

void task_record_end(task *t, int state, Aiod__Value *result, char *kind, char *message) {
    assert(!task_finished(t) && state >= TASK_DONE);
    if (t->state == TASK_RUNNING && --running == 0 && unfinished > 1)
        idle_maybe(); /* the rest only wait */
    set_outcome(t, state, result, kind, message);
    t->finished_usec = task_now_usec();
    t->end_seq = ++end_seq;
    uid_tasks_add(t, -1);
    if (--unfinished == 0)
        idle_maybe();
    finished_total++;
    sd_status_changed();
    task_changed(t);
}

int task_set_pending_error(task *t, const char *kind, const char *message) {
    if (!t->run)
        return -EINVAL;
    /* Plugins write these: they reach clients as protobuf strings, so as
     * valid UTF-8 (ill-formed sequences become U+FFFD), and bounded. */
    char *k = utf8_sanitize(kind, strlen(kind), LIMIT_MESSAGE, NULL);
    char *m = utf8_sanitize(message, strlen(message), LIMIT_MESSAGE, NULL);
    if (!k || !m) {
        free(k);
        free(m);
        return -ENOMEM;
    }
    free(t->run->pending_kind);
    free(t->run->pending_message);
    t->run->pending_kind = k;
    t->run->pending_message = m;
    t->run->pending_errno = 0;
    return 0;
}

int task_raise(task *t, int err, const char *kind, const char *message) {
    assert(err < 0);
    int r = task_set_pending_error(t, kind, message);
    if (r == 0)
        t->run->pending_errno = err;
    return r;
}

const char *task_pending_kind(const task *t, int err, const char **ret_message) {
    const task_run *run = t->run;
    if (!run->pending_kind || (run->pending_errno != 0 && run->pending_errno != err))
        return NULL;
    *ret_message = run->pending_message;
    return run->pending_kind;
}

/* The result of every done task that returned nothing (never freed). */
static Aiod__Value null_result = AIOD__VALUE__INIT;

const Aiod__Value *task_result(const task *t) {
    if (t->state != TASK_DONE)
        return NULL;
    return t->result ? t->result : &null_result;
}

output *task_output(task *t) {
    if (!t->out)
        t->out = output_new(t->id, cfg.max_output_lines);
    return t->out;
}

uint64_t task_output_lines(const task *t) {
    return t->out && t->out->task_id == t->id ? t->out->next_seq : 0;
}

uint64_t task_output_dropped(const task *t) {
    return t->out && t->out->task_id == t->id ? t->out->dropped : 0;
}

void task_outcome(const task *t, Aiod__Outcome *o) {
    aiod__outcome__init(o);
    o->task_id = t->id;
    o->state = (Aiod__TaskState)t->state;
    if (t->state == TASK_DONE)
        o->result = (Aiod__Value *)task_result(t);
    if (t->error_kind)
        o->error_kind = t->error_kind;
    if (t->error_message)
        o->error_message = t->error_message;
}

void task_set_running(task *t) {
    if (t->plan)
        t->plan->attempt++;
    t->state = TASK_RUNNING;
    t->started_usec = task_now_usec();
    running++;
    sd_status_changed();
}

size_t task_count_unfinished(void) {
    return unfinished;
}

size_t task_count_running(void) {
    return running;
}

uint64_t task_count_finished_total(void) {
    return finished_total;
}

task *task_first(void) {
    return list_empty(&in_order) ? NULL : container_of(list_first(&in_order), task, order_node);
}

task *task_last(void) {
    return list_empty(&in_order) ? NULL : container_of(in_order.prev, task, order_node);
}

task *task_before(const task *t) {
    assert(t->in_table);
    return t->order_node.prev == &in_order ? NULL
                                           : container_of(t->order_node.prev, task, order_node);
}

task *task_after(const task *t) {
    assert(t->in_table);
    return t->order_node.next == &in_order ? NULL
                                           : container_of(t->order_node.next, task, order_node);
}

void task_attach_owner(task *t, void *owner, list *owner_list) {
    assert(t->run && !t->run->owner);
    t->run->owner = owner;
    list_insert_tail(owner_list, &t->run->owner_node);
}

void task_detach_owner(task *t) {
    if (!t->run)
        return;
    list_remove(&t->run->owner_node);
    t->run->owner = NULL;
}

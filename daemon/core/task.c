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
#include "system/config.h"
#include "net/conn.h"
#include "base/freelist.h"
#include "base/hashmap.h"
#include "core/idle.h"
#include "core/limit.h"
#include "system/log.h"
#include "macro.h"
#include "core/output.h"
#include "host/registry.h"
#include "system/policy.h"
#include "core/sched.h"
#include "system/sd.h"

/* Task structs and run parts are recycled (freelist.h): a task struct is
 * freed when its outcome is evicted, long after it was in the cache, and
 * the next task_new takes it back at once. */
#define TASK_CACHE_MAX 1024u
static freelist task_blocks = FREELIST_INIT(sizeof(task), TASK_CACHE_MAX);
static freelist run_blocks = FREELIST_INIT(sizeof(task_run), TASK_CACHE_MAX);

void task_cache_release(void) {
    freelist_release(&task_blocks);
    freelist_release(&run_blocks);
}

static hashmap *table;
static uint64_t next_id = 1;
/* Ids below this are ours to hand out; then id_reserve gives more. */
static uint64_t id_end = UINT64_MAX;
static task_id_reserve_fn id_reserve;
static size_t unfinished;
static size_t running;
static uint64_t finished_total;
/* Finished tasks kept for later awaits, oldest first. */
static list retained;
static size_t n_retained;

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

int task_table_init(uv_loop_t *loop) {
    list_init(&retained);
    table = hashmap_new(0);
    if (!table)
        return -ENOMEM;
    uv_timer_init(loop, &expiry);
    uv_unref((uv_handle_t *)&expiry);
    expiry_init = true;
    return 0;
}

/* Unfinished tasks per uid, for max_tasks_per_uid. */
static hashmap *per_uid;

static uint32_t uid_tasks(uid_t uid) {
    return hashmap_count_get(per_uid, uid);
}

static void uid_tasks_add(uid_t uid, int delta) {
    if (uid != 0) /* root is exempt from max_tasks_per_uid: no count */
        hashmap_count_add(&per_uid, uid, delta);
}

static void table_drop(task *t) {
    if (!t->in_table)
        return;
    hashmap_remove_u64(table, t->id);
    t->in_table = false;
    if (list_linked(&t->retain_node)) {
        list_remove(&t->retain_node);
        n_retained--;
    }
    task_unref(t);
}

void task_table_done(void) {
    while (!list_empty(&retained))
        table_drop(container_of(list_first(&retained), task, retain_node));
    if (table) {
        size_t st = 0;
        void *cur = NULL;
        task *t;
        /* Collect first: dropping changes the map. */
        size_t n = hashmap_size(table), k = 0;
        task **all = alloc_malloc((n ? n : 1) * sizeof(*all));
        while (all && (t = hashmap_next(table, &st, &cur)))
            all[k++] = t;
        for (size_t i = 0; i < k; i++)
            table_drop(all[i]);
        free(all);
    }
    hashmap_free(table);
    table = NULL;
    hashmap_free(per_uid);
    per_uid = NULL;
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
    int idr = ensure_id();
    if (idr < 0) {
        value_argv_free(argv, argc);
        return idr == -ENOMEM ? idr : -EIO;
    }
    task *t = freelist_take(&task_blocks);
    task_run *r = t ? freelist_take(&run_blocks) : NULL;
    if (!r) {
        freelist_give(&task_blocks, t);
        value_argv_free(argv, argc);
        return -ENOMEM;
    }
    t->run = r;
    r->task = t;
    t->refs = 1; /* the caller's */
    t->id = next_id;
    t->state = TASK_PENDING;
    t->ownership = ownership;
    t->fn = fn;
    t->argv = argv;
    t->argc = (uint32_t)argc; /* at most LIMIT_PARAMS */
    t->uid = uid;
    t->pid = pid;
    t->created_usec = task_now_usec();
    list_init(&r->children);
    list_init(&r->child_node);
    list_init(&r->conn_node);
    list_init(&r->ready_node);
    list_init(&r->waiters);
    list_init(&r->limit_node);
    list_init(&t->retain_node);
    t->out = output_ref(out);
    if (hashmap_put_u64(table, t->id, t) < 0) {
        output_unref(t->out);
        value_argv_free(argv, argc);
        freelist_give(&run_blocks, r);
        freelist_give(&task_blocks, t);
        return -ENOMEM;
    }
    next_id++;
    t->in_table = true;
    t->refs++; /* the table's */
    unfinished++;
    uid_tasks_add(uid, +1);
    plugin_hold(fn->owner);
    *ret = t;
    return 0;
}

task *task_ref(task *t) {
    if (t)
        t->refs++;
    return t;
}

static void free_run_memory(uv_handle_t *h) {
    freelist_give(&run_blocks, h->data);
}

/* Frees the run part: the task has left every list it linked. */
static void release_run(task *t) {
    task_run *r = TAKE_PTR(t->run);
    if (!r)
        return;
    pbvalue_free(r->exit_value);
    free(r->pending_kind);
    free(r->pending_message);
    if (r->co)
        coro_free(r->co);
    if (r->timer_init) {
        r->timer.data = r;
        uv_close((uv_handle_t *)&r->timer, free_run_memory);
    } else
        freelist_give(&run_blocks, r);
}

void task_settle(task *t) {
    if (t->run && task_finished(t) && !t->pinned && !t->run->queued)
        release_run(t);
}

task *task_unref(task *t) {
    if (!t || --t->refs > 0)
        return NULL;
    release_run(t);
    value_argv_free(t->argv, t->argc);
    pbvalue_free(t->result);
    free(t->error_kind);
    free(t->error_message);
    output_unref(t->out);
    plugin_unref(t->fn->owner);
    freelist_give(&task_blocks, t);
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
    while (!list_empty(&retained)) {
        task *old = container_of(list_first(&retained), task, retain_node);
        bool too_many = n_retained > cfg.retain_count;
        bool too_old = now - old->finished_usec > (uint64_t)cfg.retain_seconds * 1000000u;
        if (!too_many && !too_old)
            break;
        table_drop(old);
    }
}

static void on_expiry(uv_timer_t *h);

/* Arms the expiry timer for the oldest retained outcome, a second late so
 * that outcomes that ended close together go in one wake-up. */
static void arm_expiry(void) {
    if (!expiry_init || list_empty(&retained))
        return;
    const task *old = container_of(list_first(&retained), task, retain_node);
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

/* Every top-level task's outcome goes to the log (journal fields TASK_ID,
 * FUNCTION, OWNER_UID, STATE, ERROR_KIND, ERROR_MESSAGE), as log_outcomes
 * says: successes at info, cancellations at notice, failures at warning. */
static void log_outcome(task *t) {
    static const char *const kinds[] = {
        [AIOD__OWNERSHIP__ATTACHED] = "attached",
        [AIOD__OWNERSHIP__SUBMITTED] = "submitted",
        [AIOD__OWNERSHIP__DETACHED] = "detached",
    };
    const char *kind = t->ownership < ELEMENTSOF(kinds) ? kinds[t->ownership] : "?";
    if (cfg.log_outcomes == LOG_OUTCOMES_NONE ||
        (cfg.log_outcomes == LOG_OUTCOMES_FAILURES && t->state == TASK_DONE))
        return;
    if (t->state == TASK_DONE) {
        if (log_get_max_priority() < LOG_INFO)
            return; /* spare the JSON */
        char *json = pbvalue_to_json(task_result(t));
        log_task(LOG_INFO, t, "%s task done: %s", kind, json ? json : "?");
        free(json);
    } else
        log_task(t->state == TASK_FAILED ? LOG_WARNING : LOG_NOTICE, t, "%s task %s: %s: %s", kind,
                 task_state_name(t->state), t->error_kind ? t->error_kind : "",
                 t->error_message ? t->error_message : "");
}

/* Frees, while the task is still in the cache, what a retained outcome does
 * not need: an output nobody printed into or follows any more. */
static void shrink_for_retention(task *t) {
    output *o = t->out;
    if (o && o->task_id == t->id && o->refs == 1 && o->next_seq == 0 && list_empty(&o->followers))
        t->out = output_unref(o);
}

/* A finished task either joins the retained outcomes (top-level, not
 * detached) or leaves the table. */
static void retain_or_drop(task *t) {
    task_settle(t);
    if (t->parent_id == 0 && t->ownership != AIOD__OWNERSHIP__DETACHED && cfg.retain_count > 0) {
        shrink_for_retention(t);
        list_insert_tail(&retained, &t->retain_node);
        n_retained++;
        evict_retained();
        /* An armed timer is due no later than the oldest outcome's expiry:
         * it re-arms itself for the next when it fires. */
        if (expiry_init && !uv_is_active((uv_handle_t *)&expiry))
            arm_expiry();
    } else
        table_drop(t);
}

void task_finish(task *t, int state, Aiod__Value *result, char *kind, char *message) {
    if (task_finished(t)) {
        pbvalue_free(result);
        free(kind);
        free(message);
        return;
    }
    task_ref(t);
    if (t->state == TASK_RUNNING)
        running--;
    t->state = state;
    t->result = state == TASK_DONE ? result : NULL;
    if (state != TASK_DONE)
        pbvalue_free(result);
    t->error_kind = kind;
    t->error_message = message;
    t->finished_usec = task_now_usec();
    limit_release(t);
    uid_tasks_add(t->uid, -1);
    if (--unfinished == 0)
        idle_maybe();
    finished_total++;
    sd_status_changed();
    plugin_release(t->fn->owner);
    task_run *r = t->run;
    list_remove(&r->child_node);
    /* An attached task's outcome is kept for its connection until delivered
     * to it (or it closes), whatever else finishes meanwhile: a client that
     * submits and then awaits must find it. Pinned before the waiters run,
     * since a client's Await or Gather among them delivers the outcome and
     * releases the pin at once. */
    bool pin = t->parent_id == 0 && t->ownership == AIOD__OWNERSHIP__ATTACHED && r->owner_conn;
    t->pinned = pin;
    if (!pin)
        task_detach_conn(t);

    /* Children still running are cancelled, as asyncio.run cancels what is
     * left when main returns. */
    while (!list_empty(&r->children)) {
        task *c = task_of(list_first(&r->children), child_node);
        list_remove(&c->run->child_node);
        if (!c->shielded)
            sched_cancel(c);
    }

    /* Output first, so followers see every line and OutputEnd before any
     * reply that reports the end of the task. */
    if (t->out && t->out->task_id == t->id)
        output_end(t->out, state);

    /* Taken off the task first: a waiter that delivers the outcome releases
     * the pin, and that settles the task and frees its run part. */
    list waiters;
    list_move_all(&waiters, &r->waiters);
    while (!list_empty(&waiters)) {
        waiter *w = container_of(list_first(&waiters), waiter, node);
        list_remove(&w->node);
        w->fn(w, t);
    }

    if (t->parent_id == 0)
        log_outcome(t);
    /* A pin released by a waiter has already retained or dropped it. */
    if (!pin)
        retain_or_drop(t);
    task_unref(t);
}

void task_release_pin(task *t) {
    if (!t->pinned)
        return;
    t->pinned = false;
    task_detach_conn(t);
    task_ref(t);
    retain_or_drop(t);
    task_unref(t);
}

int task_set_pending_error(task *t, const char *kind, const char *message) {
    if (!t->run)
        return -EINVAL;
    char *k = alloc_strdup(kind), *m = alloc_strdup(message);
    if (!k || !m) {
        free(k);
        free(m);
        return -ENOMEM;
    }
    free(t->run->pending_kind);
    free(t->run->pending_message);
    t->run->pending_kind = k;
    t->run->pending_message = m;
    return 0;
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

task *task_next(size_t *state, void **cursor) {
    return table ? hashmap_next(table, state, cursor) : NULL;
}

void task_detach_conn(task *t) {
    if (!t->run)
        return;
    list_remove(&t->run->conn_node);
    t->run->owner_conn = NULL;
}

/*
 * Task schedules (plan.h).
 *
 * A planned task stays TASK_PENDING while it waits: for the tasks it runs
 * after (a waiter on each), then for its time (the run part's timer, which
 * it does not use before it runs). A failed attempt with retries left goes
 * back to pending the same way. Cancelling a waiting task ends it at once,
 * as for any pending task.
 */
#include "core/plan.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "core/finish.h"
#include "core/limit.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"
#include "macro.h"
#include "system/config.h"
#include "system/log.h"

int plan_ensure(task *t) {
    if (t->plan)
        return 0;
    t->plan = alloc_calloc(1, sizeof(task_plan));
    return t->plan ? 0 : -ENOMEM;
}

static bool bad_seconds(double s) {
    return !(s >= 0) || !isfinite(s) || s > LIMIT_TIMEOUT_SECONDS;
}

int plan_check(const Aiod__Schedule *s, char *why, size_t why_len) {
    if (!s)
        return 0;
    if (s->retries > LIMIT_RETRIES) {
        snprintf(why, why_len, "schedule: retries %u is over the limit of %u", s->retries,
                 LIMIT_RETRIES);
        return -EINVAL;
    }
    const struct {
        const char *name;
        double v;
    } times[] = {{"backoff", s->backoff}, {"backoff_max", s->backoff_max}, {"delay", s->delay}};
    for (size_t i = 0; i < ELEMENTSOF(times); i++)
        if (bad_seconds(times[i].v)) {
            snprintf(why, why_len, "schedule: %s must be between 0 and 1e9 seconds", times[i].name);
            return -EINVAL;
        }
    if (s->n_after > LIMIT_AFTER) {
        snprintf(why, why_len, "schedule: %zu tasks to run after, over the limit of %u", s->n_after,
                 LIMIT_AFTER);
        return -E2BIG;
    }
    return 0;
}

int plan_apply(task *t, const Aiod__Schedule *s) {
    assert(t->state == TASK_PENDING && !t->plan);
    if (!s)
        return 0;
    uint64_t start = s->at_usec;
    if (s->delay > 0) {
        uint64_t d = t->created_usec + (uint64_t)(s->delay * 1e6);
        if (d > start)
            start = d;
    }
    if (!s->retries && !s->n_after && !start)
        return 0;
    if (plan_ensure(t) < 0)
        return -ENOMEM;
    task_plan *p = t->plan;
    p->retries = s->retries;
    p->backoff = s->backoff;
    p->backoff_max = s->backoff_max;
    p->next_run_usec = start;
    if (s->n_after) {
        p->after = alloc_malloc(s->n_after * sizeof(uint64_t));
        if (!p->after)
            return -ENOMEM;
        memcpy(p->after, s->after, s->n_after * sizeof(uint64_t));
        p->n_after = (uint32_t)s->n_after;
    }
    return 0;
}

/* Attempts cut off by a restart under on_interrupt = retry come on top of
 * the retries: an interruption is not the task's failure. */
unsigned plan_max_attempts(const task *t) {
    return t->plan ? t->plan->retries + 1 + t->plan->interrupted : 1;
}

unsigned plan_attempt(const task *t) {
    if (t->plan)
        return t->plan->attempt;
    return t->started_usec ? 1 : 0;
}

/* ---------------------------------------------------------------- waiting */

static void on_time(uv_timer_t *h) {
    task *t = h->data;
    if (task_finished(t) || !t->plan)
        return;
    t->plan->timer_armed = false;
    plan_start(t);
}

/* One waiter on a dependency fired (or had nothing to wait for). After
 * the last one nothing refers to `t` any more: the array and the
 * reference watch_dependencies took go, and a task not failed meanwhile
 * starts. */
static void dependency_settled(task *t) {
    task_plan *p = t->plan;
    assert(p && p->after_left > 0);
    if (--p->after_left > 0)
        return;
    free(TAKE_PTR(p->after_waiters));
    if (!task_finished(t) && !p->after_cut) {
        p->after_met = true;
        task_changed(t);
        plan_start(t);
    }
    task_unref(t);
}

/* Fails `t` for a dependency that will never be done. */
static void dependency_failed(task *t, const char *msg) {
    if (task_finished(t))
        return;
    t->plan->no_retry = true;
    task_finish(t, TASK_FAILED, NULL, alloc_strdup("DependencyFailed"), alloc_strdup(msg));
}

/* The cause of a failed dependency as this task's message says it: for
 * one that itself failed a dependency, that one's cause, so that every
 * link of a long chain names where it broke rather than a message nested
 * once per link and cut at LIMIT_MESSAGE. */
static void dependency_message(const task *dep, char *msg, size_t len) {
    static const char mark[] = "; where the chain broke: ";
    const char *why = dep->error_message ? dep->error_message : "";
    const char *root = dep->error_kind && strcmp(dep->error_kind, "DependencyFailed") == 0
                           ? strstr(why, mark)
                           : NULL;
    if (root)
        snprintf(msg, len, "task %llu, which this one runs after, ended %s (DependencyFailed)%s",
                 (unsigned long long)dep->id, task_state_name(dep->state), root);
    else if (dep->error_kind && strcmp(dep->error_kind, "DependencyFailed") == 0)
        snprintf(msg, len, "task %llu, which this one runs after, ended %s (DependencyFailed)%s%s",
                 (unsigned long long)dep->id, task_state_name(dep->state), mark, why);
    else if (dep->error_kind)
        snprintf(msg, len, "task %llu, which this one runs after, ended %s (%s: %s)",
                 (unsigned long long)dep->id, task_state_name(dep->state), dep->error_kind, why);
    else
        snprintf(msg, len, "task %llu, which this one runs after, ended %s",
                 (unsigned long long)dep->id, task_state_name(dep->state));
}

/*
 * Dependents whose dependency ended badly, failed in turn from this queue,
 * not from inside the waiter: failing one ends it, which fires the waiters
 * of what runs after it, and a chain of thousands failed by recursion took
 * a stack frame (and a message) per link, past the end of the stack. The
 * waiter only queues (the message is made when the dependent is failed),
 * and the queue is worked for LIMIT_DEPENDENTS_SLICE_MS per loop turn at
 * most: one task's 200,000 dependents held the loop 0.53 s at once.
 */
typedef struct dep_end {
    task *t;   /* referenced */
    task *dep; /* referenced: the dependency that ended badly */
} dep_end;

static dep_end *dep_ends;
static size_t n_dep_ends, cap_dep_ends, dep_ends_head;
static bool dep_ends_running;
/* This turn's slice: until when it lasts (uv_hrtime), whether it ran out,
 * and whether the callback that starts the next one is queued. */
static uint64_t slice_until;
static bool slice_over, next_turn_queued;

static void fail_dependent(task *t, task *dep) {
    char msg[LIMIT_MESSAGE];
    dependency_message(dep, msg, sizeof(msg));
    dependency_failed(t, msg);
}

static void settle_queued(void);

static void settle_next_turn(void *data) {
    (void)data;
    next_turn_queued = slice_over = false;
    settle_queued();
}

static void settle_later(task *t, task *dep) {
    if (n_dep_ends == cap_dep_ends) {
        size_t cap = cap_dep_ends ? cap_dep_ends * 2 : 64;
        dep_end *n = realloc(dep_ends, cap * sizeof(*n));
        if (!n) {
            /* No room to queue it: settled here, as before the queue. */
            fail_dependent(t, dep);
            dependency_settled(t);
            return;
        }
        dep_ends = n;
        cap_dep_ends = cap;
    }
    dep_ends[n_dep_ends++] = (dep_end){task_ref(t), task_ref(dep)};
}

/* In the order they were queued, so a chain fails link by link. */
static void settle_queued(void) {
    if (dep_ends_running || slice_over || dep_ends_head == n_dep_ends)
        return;
    if (!next_turn_queued) {
        /* The first this turn: its slice starts (without the callback, no
         * memory, it has none and settles everything now). */
        next_turn_queued = soon_call(settle_next_turn, NULL, NULL) == 0;
        slice_until = uv_hrtime() + (uint64_t)LIMIT_DEPENDENTS_SLICE_MS * 1000000;
    }
    dep_ends_running = true;
    for (size_t done = 0; dep_ends_head < n_dep_ends; done++) {
        if (next_turn_queued && done % 16 == 0 && uv_hrtime() > slice_until) {
            slice_over = true; /* settle_next_turn goes on */
            break;
        }
        dep_end e = dep_ends[dep_ends_head++];
        fail_dependent(e.t, e.dep);
        dependency_settled(e.t);
        task_unref(e.t);
        task_unref(e.dep);
    }
    if (dep_ends_head == n_dep_ends) {
        n_dep_ends = dep_ends_head = 0;
        if (cap_dep_ends > 1024) {
            free(dep_ends);
            dep_ends = NULL;
            cap_dep_ends = 0;
        }
    }
    dep_ends_running = false;
}

void plan_done(void) {
    while (dep_ends_head < n_dep_ends) {
        dep_end e = dep_ends[dep_ends_head++];
        /* The reference watch_dependencies took goes with the last
         * dependency settled (dependency_settled), without starting it. */
        task_plan *p = e.t->plan;
        if (p && p->after_left > 0 && --p->after_left == 0) {
            free(TAKE_PTR(p->after_waiters));
            task_unref(e.t);
        }
        task_unref(e.t);
        task_unref(e.dep);
    }
    free(dep_ends);
    dep_ends = NULL;
    n_dep_ends = cap_dep_ends = dep_ends_head = 0;
}

/* A task it runs after ended. */
static void on_dependency(waiter *w, task *dep) {
    task *t = w->data;
    if (dep->state != TASK_DONE && (dep->store_flags & TASK_STORE_CUT_OFF)) {
        /* The stop cut it off, as it is about to cut off `t`: both keep
         * their records, and `t` waits for it again after the restart. */
        t->plan->after_cut = true;
        dependency_settled(t);
    } else if (dep->state != TASK_DONE) {
        settle_later(t, dep);
        settle_queued();
    } else {
        /* Met for good: stored, so that a restart need not find it. */
        task_plan *p = t->plan;
        if (!p->after_done)
            p->after_done = alloc_calloc(p->n_after, sizeof(uint64_t));
        if (p->after_done && p->n_after_done < p->n_after) {
            p->after_done[p->n_after_done++] = dep->id;
            task_changed(t);
        }
        dependency_settled(t);
    }
}

static bool after_met_already(const task_plan *p, uint64_t id) {
    for (uint32_t i = 0; i < p->n_after_done; i++)
        if (p->after_done[i] == id)
            return true;
    return false;
}

/* Hangs a waiter on every task `t` runs after; those already finished fire
 * at once. A task that is gone fails `t`. */
static void watch_dependencies(task *t) {
    task_plan *p = t->plan;
    p->after_waiters = alloc_calloc(p->n_after, sizeof(waiter));
    if (!p->after_waiters) {
        p->no_retry = true;
        task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                    alloc_strdup("no memory to wait for the tasks this one runs after"));
        return;
    }
    task_ref(t); /* until every waiter fired: dependency_settled */
    p->after_left = p->n_after;
    /* after_left reaches 0 only with the last one: the array stays. */
    for (uint32_t i = 0; i < p->n_after; i++) {
        waiter *w = &p->after_waiters[i];
        w->fn = on_dependency;
        w->data = t;
        if (after_met_already(p, p->after[i])) {
            dependency_settled(t);
            continue;
        }
        task *dep = task_lookup(p->after[i]);
        if (dep) {
            task_add_waiter(dep, w);
            continue;
        }
        char msg[LIMIT_MESSAGE];
        snprintf(msg, sizeof(msg),
                 "task %llu, which this one runs after, is no longer known (its outcome was "
                 "not retained)",
                 (unsigned long long)p->after[i]);
        dependency_failed(t, msg);
        dependency_settled(t);
    }
}

void plan_start(task *t) {
    task_plan *p = t->plan;
    if (task_finished(t))
        return;
    if (!p) {
        sched_start(t);
        return;
    }
    if (p->n_after && !p->after_met) {
        if (!p->after_waiters)
            watch_dependencies(t);
        /* on_dependency starts it once all of them are done. */
        return;
    }
    uint64_t now = task_now_usec();
    if (p->next_run_usec > now) {
        if (sched_start_timer(t, on_time, (double)(p->next_run_usec - now) / 1e6) == 0) {
            p->timer_armed = true;
            return;
        }
        log_task(LOG_ERR, t, "no memory for the timer of its next attempt; starting it now");
    }
    sched_start(t);
}

/* ---------------------------------------------------------------- retries */

int plan_add_attempt(task *t, uint32_t number, uint64_t started_usec, uint64_t finished_usec,
                     const char *kind, const char *message) {
    if (plan_ensure(t) < 0)
        return -ENOMEM;
    task_plan *p = t->plan;
    Aiod__Attempt **a = alloc_realloc(p->attempts, (p->n_attempts + 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    p->attempts = a;
    Aiod__Attempt *at = alloc_malloc(sizeof(*at));
    char *k = alloc_strdup(kind ? kind : ""), *m = alloc_strdup(message ? message : "");
    if (!at || !k || !m) {
        free(at);
        free(k);
        free(m);
        return -ENOMEM;
    }
    aiod__attempt__init(at);
    at->number = number;
    at->started_usec = started_usec;
    at->finished_usec = finished_usec;
    at->error_kind = k;
    at->error_message = m;
    p->attempts[p->n_attempts++] = at;
    return 0;
}

/* A uniformly random double in [0, 1): xorshift64*, seeded from the clock
 * once. Jitter needs spread, not secrecy. */
static double uniform(void) {
    static uint64_t x;
    if (!x)
        x = task_now_usec() | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

bool plan_retry(task *t, char *kind, char *message) {
    task_plan *p = t->plan;
    if (!p || p->no_retry || t->cancel_requested || t->state != TASK_RUNNING || !t->run ||
        t->run->co)
        return false;
    uint64_t now = task_now_usec();
    if (p->attempt > p->retries + p->interrupted) {
        /* The last attempt: its error is the task's, and listed too when
         * there was more than one. */
        if (p->retries || p->interrupted)
            plan_add_attempt(t, p->attempt, t->started_usec, now, kind, message);
        return false;
    }
    if (plan_add_attempt(t, p->attempt, t->started_usec, now, kind, message) < 0)
        return false;
    /* The children of the failed attempt end with it, as at any end. */
    task_run *r = t->run;
    task_cancel_children(t);
    limit_release(t, sched_start);
    r->exit_code = 0;
    r->suspended = false;
    r->wake_pending = false;
    task_set_pending_again(t);
    double base = p->backoff > 0 ? p->backoff : LIMIT_BACKOFF_DEFAULT;
    double cap = p->backoff_max > 0 ? p->backoff_max : LIMIT_BACKOFF_MAX_DEFAULT;
    double wait = base * pow(2.0, (double)(p->attempt - 1));
    if (!(wait <= cap))
        wait = cap;
    wait *= uniform();
    p->next_run_usec = now + (uint64_t)(wait * 1e6);
    /* A failed attempt is an outcome of sorts: log_outcomes = none keeps
     * it out of the log too, and its text is cut (up to 1,001 attempts of
     * 2 KiB each flooded the log). */
    if (cfg.log_outcomes != LOG_OUTCOMES_NONE) {
        const char *k = kind ? kind : "", *m = message ? message : "";
        log_task(LOG_NOTICE, t, "attempt %u of %u failed (%.*s: %.*s); the next in %.3f s",
                 p->attempt, p->retries + 1, (int)utf8_cut(k, strlen(k), 64), k,
                 (int)utf8_cut(m, strlen(m), 200), m, wait);
    }
    free(kind);
    free(message);
    task_changed(t);
    plan_start(t);
    return true;
}

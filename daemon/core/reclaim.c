/*
 * Big value trees freed on the pool (reclaim.h).
 */
#include "core/reclaim.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "base/value.h"
#include "macro.h"
#include "pbvalue.h"
#include "system/log.h"

/* One handed-over set of values, on a job's list. */
typedef struct parcel {
    struct parcel *next;
    Aiod__Value **argv;
    size_t argc;
    Aiod__Value *result;
} parcel;

typedef struct {
    uv_work_t work;
    parcel *parcels;
    size_t n; /* how many parcels the job freed */
} job;

static uv_loop_t *loop;
/* Handed over while a job runs: the next job's. */
static parcel *waiting;
static bool running;

static void free_now(Aiod__Value **argv, size_t argc, Aiod__Value *result) {
    value_argv_free(argv, argc);
    pbvalue_free(result);
}

/* Frees the parcels and their values; how many they were. */
static size_t free_parcels(parcel *p) {
    size_t n = 0;
    for (; p; n++) {
        parcel *next = p->next;
        free_now(p->argv, p->argc, p->result);
        free(p);
        p = next;
    }
    return n;
}

/* On a pool thread. */
static void on_work(uv_work_t *w) {
    job *j = w->data;
    j->n = free_parcels(TAKE_PTR(j->parcels));
}

static void start_job(void);

static void on_after_work(uv_work_t *w, int status) {
    (void)status; /* never cancelled */
    job *j = w->data;
    assert(!j->parcels);
    log_debug("the values of %zu finished tasks were freed on the thread pool", j->n);
    free(j);
    running = false;
    start_job();
}

static void start_job(void) {
    if (running || !waiting)
        return;
    job *j = loop ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        free_parcels(TAKE_PTR(waiting));
        return;
    }
    j->work.data = j;
    j->parcels = waiting;
    waiting = NULL;
    running = true;
    int r = uv_queue_work(loop, &j->work, on_work, on_after_work);
    assert(r == 0); /* fails only for a NULL callback */
    (void)r;
}

void reclaim_set_loop(uv_loop_t *l) {
    loop = l;
}

void reclaim_values(Aiod__Value **argv, size_t argc, Aiod__Value *result) {
    if (!argv && !result)
        return;
    parcel *p = malloc(sizeof(*p));
    if (!p) {
        free_now(argv, argc, result);
        return;
    }
    *p = (parcel){.next = waiting, .argv = argv, .argc = argc, .result = result};
    waiting = p;
    start_job();
}

/*
 * Paged task lists (listing.h).
 */
#include "request/listing.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "core/task.h"
#include "host/registry.h"
#include "request/describe.h"
#include "system/config.h"
#include "system/policy.h"

#define ERR(code) AIOD__ERROR_CODE__##code

/* Bytes a TaskList adds around each TaskInfo (tag and length), and around
 * the list (envelope, more, next_after_id): kept free below max_frame. */
#define ITEM_OVERHEAD 6u
#define PAGE_OVERHEAD 64u

/* One TaskInfo and the buffer of its call line. */
typedef struct listed {
    Aiod__TaskInfo info;
    char call_text[CALL_TEXT_MAX + 1];
} listed;

static bool state_wanted(const Aiod__ListTasks *l, const task *t) {
    if (l->n_states == 0)
        return l->all || !task_finished(t);
    for (size_t i = 0; i < l->n_states; i++)
        if ((int)l->states[i] == t->state)
            return true;
    return false;
}

/* "plugin.function" names one function, "plugin." every function of it. */
static bool function_wanted(const Aiod__ListTasks *l, const task *t) {
    if (l->n_functions == 0)
        return true;
    const char *name = t->fn->full_name;
    for (size_t i = 0; i < l->n_functions; i++) {
        const char *f = l->functions[i];
        size_t n = strlen(f);
        if (n > 0 && f[n - 1] == '.' ? strncmp(name, f, n) == 0 : strcmp(name, f) == 0)
            return true;
    }
    return false;
}

static bool owner_wanted(const Aiod__ListTasks *l, const task *t) {
    if (l->n_owner_uids == 0)
        return true;
    for (size_t i = 0; i < l->n_owner_uids; i++)
        if (l->owner_uids[i] == (uint32_t)t->uid)
            return true;
    return false;
}

static bool wanted(const session *s, const Aiod__ListTasks *l, const task *t) {
    return state_wanted(l, t) && owner_wanted(l, t) && function_wanted(l, t) &&
           policy_may_act(&s->peer, t->uid);
}

/* Checks the filters, or answers with an Error naming the one that is
 * wrong. */
static bool filters_valid(req *r, const Aiod__ListTasks *l) {
    if (l->n_states > LIMIT_LIST_FILTERS || l->n_functions > LIMIT_LIST_FILTERS ||
        l->n_owner_uids > LIMIT_LIST_FILTERS) {
        req_end_error(r, ERR(ERROR_LIMIT),
                      "ListTasks: a filter of more than %u entries (states %zu, functions %zu, "
                      "owner_uids %zu)",
                      LIMIT_LIST_FILTERS, l->n_states, l->n_functions, l->n_owner_uids);
        return false;
    }
    /* A function's full name is at most 255 bytes: a longer filter matches
     * nothing, and compared on every task visited it held the loop for
     * seconds (4 MiB of one filter, 65,536 tasks a page). */
    for (size_t i = 0; i < l->n_functions; i++) {
        size_t len = strnlen(l->functions[i], 256);
        if (len > 255) {
            req_end_error(r, ERR(ERROR_LIMIT),
                          "ListTasks: functions[%zu] is longer than 255 bytes, the longest "
                          "function name",
                          i);
            return false;
        }
    }
    for (size_t i = 0; i < l->n_states; i++)
        if (l->states[i] < AIOD__TASK_STATE__TASK_PENDING ||
            l->states[i] > AIOD__TASK_STATE__TASK_CANCELLED) {
            req_end_error(r, ERR(ERROR_BAD_ARGUMENT),
                          "ListTasks: states[%zu] is %d, not a task state", i, (int)l->states[i]);
            return false;
        }
    return true;
}

/*
 * Where the page starts: the first task with an id above `after_id`. When
 * the task named is still in the table (a page's cursor usually is) that is
 * one step. When it is gone (dropped from retention since), the ids just
 * above it are tried, then the table is walked from both ends at once, so
 * that the walk is at most half the table (a few milliseconds at a million
 * tasks), and only when a cursor's task went away.
 */
#define SEEK_PROBES 64u

static task *page_start(uint64_t after_id) {
    if (after_id == 0)
        return task_first();
    task *t = task_lookup(after_id);
    if (t)
        return task_after(t);
    for (uint64_t id = after_id + 1; id <= after_id + SEEK_PROBES && id > after_id; id++)
        if ((t = task_lookup(id)))
            return t;
    task *back = task_last();
    if (!back || back->id <= after_id)
        return NULL; /* nothing above the cursor */
    /* back is above the cursor; the answer lies between front and back. */
    for (task *front = task_first();; front = task_after(front)) {
        if (front->id > after_id)
            return front;
        task *prev = task_before(back);
        if (prev->id <= after_id)
            return back;
        back = prev;
    }
}

void listing_handle(session *s, req *r, const Aiod__ListTasks *l) {
    if (!filters_valid(r, l))
        return;
    uint32_t limit = l->limit == 0 || l->limit > LIMIT_LIST_PAGE ? LIMIT_LIST_PAGE : l->limit;
    uint32_t visits = LIMIT_LIST_VISITS;
    uint64_t reached = 0;
    size_t n = 0, cap = 64, bytes = PAGE_OVERHEAD;
    listed *items = alloc_malloc(cap * sizeof(*items));
    Aiod__TaskInfo **ptrs = NULL;
    bool more = false;
    if (!items)
        goto oom;
    for (task *t = page_start(l->after_id); t; t = task_after(t)) {
        if (visits-- == 0 || n == limit) {
            more = true;
            break;
        }
        reached = t->id;
        if (!wanted(s, l, t))
            continue;
        if (n == cap) {
            listed *bigger = alloc_realloc(items, cap * 2 * sizeof(*items));
            if (!bigger)
                goto oom;
            items = bigger;
            cap *= 2;
        }
        describe_task(t, &items[n].info, items[n].call_text, NULL, false);
        items[n].info.call_text = items[n].call_text;
        size_t size = protobuf_c_message_get_packed_size(&items[n].info.base) + ITEM_OVERHEAD;
        if (bytes + size > cfg.max_frame && n > 0) {
            /* Full: the next page goes on after the last task in this one
             * (still in the table, so found in one step). */
            more = true;
            reached = items[n - 1].info.id;
            break;
        }
        bytes += size;
        n++;
    }
    ptrs = alloc_malloc((n ? n : 1) * sizeof(*ptrs));
    if (!ptrs)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = &items[i].info;
        ptrs[i]->call_text = items[i].call_text; /* moved by realloc */
    }
    Aiod__TaskList tl = AIOD__TASK_LIST__INIT;
    tl.n_tasks = n;
    tl.tasks = ptrs;
    tl.more = more;
    tl.next_after_id = more ? reached : 0;
    req_end(r, AIOD__SERVER_MESSAGE__BODY_TASK_LIST, &tl);
    free(ptrs);
    free(items);
    return;
oom:
    free(items);
    req_end_error(r, ERR(ERROR_INTERNAL), "out of memory listing tasks");
}

/*
 * list: listing tasks (`ps`) page by page. An aioc_list_query holds the
 * filters (finished tasks too, states, functions, owners); aioc_list_page
 * asks the daemon for the tasks after a cursor and moves the cursor on;
 * aioc_list_all and aioc_list loop over the pages.
 *
 * The daemon answers a ListTasks with at most one page (10000 tasks, and
 * fewer when it looked at its bound of tasks for one request: a page may
 * even be empty with `more` set). The library also applies the query to
 * each page it gets, so that a daemon older than the filters and pages
 * (which ignores them and sends everything in one page) yields the same
 * tasks: the filters are exact on both sides, so this removes nothing a
 * newer daemon would have sent.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "client.h"
#include "info.h"
#include "macro.h"
#include "pbvalue.h"
#include "wire.h"

/* The daemon's page size: a larger limit means this many. */
#define LIST_PAGE_MAX 10000u

struct aioc_list_query {
    /* AIOC_LIST_* flags. */
    unsigned flags;
    /* Wanted states as the wire has them (no duplicates; at most the five
     * states). Empty: all states, or the unfinished ones without
     * AIOC_LIST_ALL. */
    Aiod__TaskState states[AIOC_STATE_CANCELLED];
    size_t n_states;
    /* "plugin.function" or "plugin." names (owned strings). */
    char **functions;
    size_t n_functions, cap_functions;
    uint32_t *owners;
    size_t n_owners, cap_owners;
};

AIOC_EXPORT int aioc_list_query_new(unsigned flags, aioc_list_query **ret) {
    if (!ret || (flags & ~AIOC_LIST_ALL))
        return -EINVAL;
    aioc_list_query *q = alloc_calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->flags = flags;
    *ret = q;
    return 0;
}

AIOC_EXPORT void aioc_list_query_free(aioc_list_query *q) {
    if (!q)
        return;
    for (size_t i = 0; i < q->n_functions; i++)
        free(q->functions[i]);
    free(q->functions);
    free(q->owners);
    free(q);
}

AIOC_EXPORT int aioc_list_query_add_state(aioc_list_query *q, int state) {
    if (!q || state < AIOC_STATE_PENDING || state > AIOC_STATE_CANCELLED)
        return -EINVAL;
    for (size_t i = 0; i < q->n_states; i++)
        if (q->states[i] == (Aiod__TaskState)state)
            return 0;
    q->states[q->n_states++] = (Aiod__TaskState)state;
    return 0;
}

/* "plugin.function" or "plugin.": a name before the dot, no blank or
 * control character, valid UTF-8. */
static bool function_name_valid(const char *name) {
    const char *dot = strchr(name, '.');
    if (!dot || dot == name)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return pbvalue_utf8_valid(name, strlen(name));
}

AIOC_EXPORT int aioc_list_query_add_function(aioc_list_query *q, const char *name) {
    if (!q || !name || !function_name_valid(name))
        return -EINVAL;
    for (size_t i = 0; i < q->n_functions; i++)
        if (strcmp(q->functions[i], name) == 0)
            return 0;
    if (q->n_functions == q->cap_functions) {
        size_t cap = q->cap_functions ? q->cap_functions * 2 : 4;
        char **f = alloc_realloc(q->functions, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;
        q->functions = f;
        q->cap_functions = cap;
    }
    char *copy = alloc_strdup(name);
    if (!copy)
        return -ENOMEM;
    q->functions[q->n_functions++] = copy;
    return 0;
}

AIOC_EXPORT int aioc_list_query_add_owner(aioc_list_query *q, uint32_t uid) {
    if (!q)
        return -EINVAL;
    for (size_t i = 0; i < q->n_owners; i++)
        if (q->owners[i] == uid)
            return 0;
    if (q->n_owners == q->cap_owners) {
        size_t cap = q->cap_owners ? q->cap_owners * 2 : 4;
        uint32_t *o = alloc_realloc(q->owners, cap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        q->owners = o;
        q->cap_owners = cap;
    }
    q->owners[q->n_owners++] = uid;
    return 0;
}

/* Does the task match the query's filters (those an older daemon
 * ignores)? AIOC_LIST_ALL is left to the daemon, which has always kept
 * to it. */
static bool matches(const aioc_list_query *q, const Aiod__TaskInfo *t) {
    if (!q)
        return true;
    if (q->n_states) {
        bool hit = false;
        for (size_t i = 0; i < q->n_states && !hit; i++)
            hit = q->states[i] == t->state;
        if (!hit)
            return false;
    }
    if (q->n_functions) {
        bool hit = false;
        for (size_t i = 0; i < q->n_functions && !hit; i++) {
            const char *f = q->functions[i];
            size_t len = strlen(f);
            hit =
                f[len - 1] == '.' ? strncmp(t->function, f, len) == 0 : strcmp(t->function, f) == 0;
        }
        if (!hit)
            return false;
    }
    if (q->n_owners) {
        bool hit = false;
        for (size_t i = 0; i < q->n_owners && !hit; i++)
            hit = q->owners[i] == t->owner_uid;
        if (!hit)
            return false;
    }
    return true;
}

/* One ListTasks exchange: the daemon's TaskList reply (free with
 * wire_free) for the tasks after `after`. */
static int ask(aioc_client *c, const aioc_list_query *q, uint64_t after, size_t limit,
               Aiod__ServerMessage **ret_reply) {
    Aiod__ListTasks l = AIOD__LIST_TASKS__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;

    if (q) {
        l.all = !!(q->flags & AIOC_LIST_ALL);
        l.states = (Aiod__TaskState *)q->states;
        l.n_states = q->n_states;
        l.functions = q->functions;
        l.n_functions = q->n_functions;
        l.owner_uids = q->owners;
        l.n_owner_uids = q->n_owners;
    }
    l.after_id = after;
    l.limit = (uint32_t)MIN(limit, (size_t)LIST_PAGE_MAX);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS;
    m.list_tasks = &l;
    int r = client_begin(c);
    if (r < 0)
        return r;
    return client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_TASK_LIST, ret_reply);
}

AIOC_EXPORT int aioc_list_page(aioc_client *c, const aioc_list_query *q, uint64_t *cursor,
                               size_t limit, aioc_task_info ***ret_tasks, size_t *ret_n) {
    CLIENT_SCOPE(c);
    Aiod__ServerMessage *reply = NULL;

    if (!c || !cursor || !ret_tasks || !ret_n)
        return -EINVAL;
    uint64_t after = *cursor;
    int r = ask(c, q, after, limit, &reply);
    if (r < 0)
        return r;

    Aiod__TaskList *tl = reply->task_list;
    /* A daemon that says more may come must move the cursor on, or the
     * caller would ask for the same page for ever. */
    if (tl->more && tl->next_after_id <= after) {
        wire_free(reply);
        return -EPROTO;
    }
    size_t want = limit ? MIN(limit, tl->n_tasks) : tl->n_tasks;
    aioc_task_info **a = alloc_calloc(want ? want : 1, sizeof(*a));
    if (!a) {
        wire_free(reply);
        return -ENOMEM;
    }
    size_t n = 0, i;
    uint64_t last = after;
    bool cut = false;
    for (i = 0; i < tl->n_tasks; i++) {
        Aiod__TaskInfo *t = tl->tasks[i];
        /* In id order and after the cursor: an older daemon sends them
         * all, every time. */
        if (t->id <= last || !matches(q, t))
            continue;
        if (limit && n == limit) {
            cut = true; /* more of this page match: they come next time */
            break;
        }
        a[n] = info_wrap(TAKE_PTR(tl->tasks[i]), false);
        if (!a[n]) {
            wire_free(reply);
            aioc_task_info_array_free(a, n);
            return -ENOMEM;
        }
        last = aioc_task_info_id(a[n]);
        n++;
    }
    int more = 0;
    if (cut) {
        more = 1;
    } else if (tl->more) {
        more = 1;
        last = MAX(last, tl->next_after_id);
    }
    wire_free(reply);
    *cursor = last;
    *ret_tasks = a;
    *ret_n = n;
    return more;
}

/* Every page of the query into one array. */
static int list_all(aioc_client *c, const aioc_list_query *q, aioc_task_info ***ret_tasks,
                    size_t *ret_n) {
    aioc_task_info **all = NULL;
    size_t n = 0, cap = 0;
    uint64_t cursor = 0;
    int r;

    do {
        aioc_task_info **page;
        size_t k;
        r = aioc_list_page(c, q, &cursor, 0, &page, &k);
        if (r < 0)
            break;
        if (n + k > cap) {
            size_t ncap = MAX(cap * 2, n + k);
            aioc_task_info **b = alloc_realloc(all, (ncap ? ncap : 1) * sizeof(*b));
            if (!b) {
                aioc_task_info_array_free(page, k);
                r = -ENOMEM;
                break;
            }
            all = b;
            cap = ncap;
        }
        memcpy(all + n, page, k * sizeof(*page));
        n += k;
        free(page);
    } while (r > 0);
    if (r < 0) {
        aioc_task_info_array_free(all, n);
        return r;
    }
    if (!all) {
        /* Nothing matched: still a new array, as aioc_list always gave. */
        all = alloc_calloc(1, sizeof(*all));
        if (!all)
            return -ENOMEM;
    }
    *ret_tasks = all;
    *ret_n = n;
    return 0;
}

AIOC_EXPORT int aioc_list_all(aioc_client *c, const aioc_list_query *q, aioc_task_info ***ret_tasks,
                              size_t *ret_n) {
    CLIENT_SCOPE(c);
    if (!c || !ret_tasks || !ret_n)
        return -EINVAL;
    return list_all(c, q, ret_tasks, ret_n);
}

AIOC_EXPORT int aioc_list(aioc_client *c, unsigned flags, aioc_task_info ***ret_tasks,
                          size_t *ret_n) {
    CLIENT_SCOPE(c);
    aioc_list_query q = {.flags = flags};
    if (!c || !ret_tasks || !ret_n || (flags & ~AIOC_LIST_ALL))
        return -EINVAL;
    return list_all(c, &q, ret_tasks, ret_n);
}

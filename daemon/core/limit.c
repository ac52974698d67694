/*
 * Concurrency limits (limit.h). A limiter is a counting semaphore with a
 * FIFO of waiting tasks; limiters are created on first use, keyed by
 * "function NAME" or "group NAME", and live until exit.
 */
#include "core/limit.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/hashmap.h"
#include "base/list.h"
#include "host/registry.h"
#include "core/task.h"

typedef struct limiter {
    char *key;
    uint32_t max;
    /* What the function or group's descriptor says (max without settings). */
    uint32_t declared;
    uint32_t running;
    /* Tasks waiting for a slot (task.limit_node), oldest first. */
    list waiting;
} limiter;

/* key -> limiter (created on use), and key -> override from the settings. */
static hashmap *limiters;
static hashmap *overrides;
/* Bumped whenever overrides change, invalidating the limiter each function
 * entry caches (fn_entry.limiter); starts at 1 so a zeroed entry is stale. */
static unsigned epoch = 1;
/* find_limiter ran out of memory: its NULL is not to be cached. */
static bool oom;

typedef struct override {
    char *key;
    uint32_t max;
} override;

int limit_set_override(const char *key, uint32_t max) {
    if (!overrides && !(overrides = hashmap_new(1)))
        return -ENOMEM;
    override *o = hashmap_get_str(overrides, key);
    if (!o) {
        o = alloc_calloc(1, sizeof(*o));
        if (!o || !(o->key = alloc_strdup(key)) || hashmap_put_str(overrides, o->key, o) < 0) {
            if (o)
                free(o->key);
            free(o);
            return -ENOMEM;
        }
    }
    o->max = max;
    epoch++;
    /* A limiter already in use follows the new value for later starts. */
    limiter *l = limiters ? hashmap_get_str(limiters, key) : NULL;
    if (l)
        l->max = max;
    return 0;
}

void limit_clear_overrides(void) {
    size_t st = 0;
    void *cur = NULL;
    override *o;
    while (overrides && (o = hashmap_next(overrides, &st, &cur))) {
        free(o->key);
        free(o);
    }
    hashmap_free(overrides);
    overrides = NULL;
    epoch++;
    /* Limiters in use go back to what their functions declare; a limiter
     * is keyed by one function or one group, so any of its tasks' entries
     * tells. Recomputed lazily: a limiter with max 0 is looked up again. */
    st = 0;
    limiter *l;
    while (limiters && (l = hashmap_next(limiters, &st, &cur)))
        l->max = l->declared;
}

/* The descriptor's max_concurrent and group, if its struct has them. */
static void descriptor_limit(const fn_entry *f, uint32_t *ret_max, const char **ret_group) {
    const struct aiod_function *d = f->def;
    *ret_max = 0;
    *ret_group = NULL;
    if (d->struct_size >= offsetof(struct aiod_function, group) + sizeof(d->group)) {
        *ret_max = d->max_concurrent;
        *ret_group = d->group;
    }
}

/* The limiter for a task's function, or NULL when unlimited. */
static limiter *find_limiter(const fn_entry *f) {
    uint32_t max;
    const char *group;
    char key[256];
    descriptor_limit(f, &max, &group);
    if (group && *group)
        snprintf(key, sizeof(key), "group %s", group);
    else
        snprintf(key, sizeof(key), "function %s", f->full_name);
    uint32_t declared = max;
    override *o = overrides ? hashmap_get_str(overrides, key) : NULL;
    if (o)
        max = o->max;
    limiter *l = limiters ? hashmap_get_str(limiters, key) : NULL;
    if (l) {
        /* A new generation of the plugin may declare another limit. */
        l->declared = declared;
        l->max = max;
        return l->max ? l : NULL;
    }
    if (max == 0 && declared == 0)
        return NULL;
    if (!limiters && !(limiters = hashmap_new(1)))
        return NULL;
    l = alloc_calloc(1, sizeof(*l));
    if (!l || !(l->key = alloc_strdup(key)) || hashmap_put_str(limiters, l->key, l) < 0) {
        if (l)
            free(l->key);
        free(l);
        oom = true;
        return NULL; /* out of memory: run unlimited rather than not at all */
    }
    l->max = max;
    l->declared = declared;
    list_init(&l->waiting);
    return l->max ? l : NULL;
}

/* find_limiter, cached in the function's entry: it runs for every task. */
static limiter *limiter_for(fn_entry *f) {
    if (f->limit_epoch != epoch) {
        oom = false;
        f->limiter = find_limiter(f);
        f->limit_epoch = oom ? 0 : epoch;
    }
    return f->limiter;
}

uint32_t limit_room(fn_entry *fn) {
    limiter *l = limiter_for(fn);
    if (!l)
        return UINT32_MAX;
    if (!list_empty(&l->waiting) || l->running >= l->max)
        return 0;
    return l->max - l->running;
}

bool limit_acquire(task *t) {
    if (t->run->limit_slot || t->run->limit)
        return t->run->limit_slot;
    limiter *l = limiter_for(t->fn);
    if (!l)
        return true;
    t->run->limit = l;
    if (l->running < l->max && list_empty(&l->waiting)) {
        l->running++;
        t->run->limit_slot = true;
        return true;
    }
    list_insert_tail(&l->waiting, &t->run->limit_node);
    return false;
}

/* Starts, in order, the waiting tasks the limit has room for; all of them
 * when it is 0 (removed by a reload: nothing waits for it any more). */
static void start_room(limiter *l, void (*start)(task *next)) {
    while ((l->max == 0 || l->running < l->max) && !list_empty(&l->waiting)) {
        task *next = task_of(list_first(&l->waiting), limit_node);
        list_remove(&next->run->limit_node);
        l->running++;
        next->run->limit_slot = true;
        start(next);
    }
}

void limit_release(task *t, void (*start)(task *next)) {
    limiter *l = t->run->limit;
    if (!l)
        return;
    t->run->limit = NULL;
    if (!t->run->limit_slot) {
        list_remove(&t->run->limit_node); /* cancelled while waiting */
        return;
    }
    t->run->limit_slot = false;
    l->running--;
    start_room(l, start);
}

void limit_start_waiting(void (*start)(task *next)) {
    size_t st = 0;
    void *cur = NULL;
    limiter *l;
    while (limiters && (l = hashmap_next(limiters, &st, &cur)))
        start_room(l, start);
}

int limit_load_rules(char *const *rules, size_t n) {
    limit_clear_overrides();
    for (size_t i = 0; i < n; i++) {
        char word[256], name[256], key[300];
        unsigned long max = 0;
        if (sscanf(rules[i], "%255s %255s %lu", word, name, &max) == 3 &&
            strcmp(word, "group") == 0)
            snprintf(key, sizeof(key), "group %s", name);
        else if (sscanf(rules[i], "%255s %lu", name, &max) == 2)
            snprintf(key, sizeof(key), "function %s", name);
        else
            continue; /* checked when parsed */
        if (limit_set_override(key, (uint32_t)max) < 0)
            return -ENOMEM;
    }
    return 0;
}

const char *limit_waiting_for(const task *t) {
    if (!t->run || !t->run->limit || t->run->limit_slot)
        return NULL;
    return ((const limiter *)t->run->limit)->key;
}

void limit_done(void) {
    size_t st = 0;
    void *cur = NULL;
    limiter *l;
    while (limiters && (l = hashmap_next(limiters, &st, &cur))) {
        free(l->key);
        free(l);
    }
    hashmap_free(limiters);
    limiters = NULL;
    limit_clear_overrides(); /* also invalidates the functions' cached limiters */
}

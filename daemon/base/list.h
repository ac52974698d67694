/*
 * Intrusive circular doubly-linked lists. A `list` is both the head and the
 * node type; an unlinked node points to itself, so list_remove is safe to
 * call twice.
 */
#ifndef AIOD_LIST_H
#define AIOD_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list {
    struct list *prev;
    struct list *next;
} list;

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(list *l) {
    l->prev = l->next = l;
}

static inline bool list_empty(const list *l) {
    return l->next == l;
}

/* Whether a node is on some list (nodes are initialised unlinked). */
static inline bool list_linked(const list *n) {
    return n->next != n;
}

static inline void list_insert_tail(list *head, list *n) {
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(list *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of `from` onto the empty list `to`; `from` is left empty. */
static inline void list_move_all(list *to, list *from) {
    if (list_empty(from)) {
        list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

static inline list *list_first(const list *head) {
    return list_empty(head) ? NULL : head->next;
}

static inline list *list_last(const list *head) {
    return list_empty(head) ? NULL : head->prev;
}

#define list_foreach_safe(pos, tmp, head)                                                          \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif

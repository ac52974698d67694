/*
 * Thread-pool work for tasks (pool.h). Not implemented yet.
 */
#include "pool.h"

#include <errno.h>

int pool_to_thread(task *t, int (*work)(void *arg), void (*release)(void *arg), void *arg) {
    (void)t, (void)work, (void)release, (void)arg;
    return -ENOSYS;
}

/*
 * Work handed to libuv's thread pool on behalf of a task (asyncio.to_thread),
 * with late results of cancelled tasks dropped safely.
 */
#ifndef AIOD_POOL_H
#define AIOD_POOL_H

#include "forward.h"

/* Inside a task: see aiod_api.to_thread. */
int pool_to_thread(task *t, int (*work)(void *arg), void (*release)(void *arg), void *arg);

#endif

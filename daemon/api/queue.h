/*
 * asyncio's Queue, LifoQueue and PriorityQueue for plugins (aiod/plugin.h, ABI 1.4), built on
 * core futures (core/future.h) and the waiter FIFOs of api/sync.h. The api table's entries.
 *
 * A queue belongs to the loop, not to a task: any task may put, get or join, and it is freed only
 * by queue_free (-EBUSY while a task is inside put, get or join). It owns the values in it.
 */
#ifndef AIOD_API_QUEUE_H
#define AIOD_API_QUEUE_H

#include <aiod/plugin.h>

int api_queue_new(uint32_t kind, int64_t maxsize, aiod_queue **ret_queue);
int api_queue_free(aiod_queue *q);
int api_queue_put(aiod_task *task, aiod_queue *q, int64_t priority, aiod_value *item);
int api_queue_put_nowait(aiod_queue *q, int64_t priority, aiod_value *item);
int api_queue_get(aiod_task *task, aiod_queue *q, aiod_value **ret_item);
int api_queue_get_nowait(aiod_queue *q, aiod_value **ret_item);
int api_queue_task_done(aiod_queue *q);
int api_queue_join(aiod_task *task, aiod_queue *q);
size_t api_queue_size(const aiod_queue *q);
int64_t api_queue_maxsize(const aiod_queue *q);
int api_queue_shutdown(aiod_queue *q, int immediate);

#endif

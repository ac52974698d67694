/*
 * Task groups (asyncio.TaskGroup) for aio tasks: children added to a group
 * are awaited together at its end; the first to fail cancels the others
 * and the task running the block, and the errors come back together.
 */
#ifndef AIOD_GROUP_H
#define AIOD_GROUP_H

#include "aiod-pb.h"
#include "base/forward.h"

typedef struct tgroup tgroup;

/* A new group of the running task t. 0, -ENOMEM. */
int group_new(task *t, tgroup **ret);
/* The task whose group it is (the one that may wait for it). */
task *group_task(const tgroup *g);
/* Adds the unfinished child (a child of `spawner`) to the group, which
 * takes a reference. -EINVAL if the child is not the spawner's or has
 * ended, or the group is shutting down (the child is then cancelled). */
int group_add(tgroup *g, task *spawner, task *child);
/*
 * Inside the group's task: the end of the block, which ended with
 * `status`. Waits for every child; see aiod_api.group_wait. Frees g.
 */
int group_wait(tgroup *g, int status, Aiod__Value **ret_errors);
/* Gives the empty member blocks kept for reuse back to the kernel (idle). */
void group_cache_release(void);

#endif

/*
 * Child processes for tasks: spawn with argv/env/cwd/stdin, capture and
 * stream stdout and stderr, await the exit; on cancellation SIGTERM, then
 * SIGKILL after a grace period. No zombies, no leaked descriptors.
 */
#ifndef AIOD_PROC_H
#define AIOD_PROC_H

#include <aiod/plugin.h>

#include "forward.h"
#include "pbvalue.h"

/* Inside a task: see aiod_api.proc_run. */
int proc_run(task *t, const struct aiod_proc_spec *spec, Aiod__Value **ret_result);

#endif

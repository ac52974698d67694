/*
 * Child processes for tasks: spawn with argv/env/cwd/stdin, capture and
 * stream stdout and stderr (lines as valid UTF-8), await the exit; on
 * cancellation SIGTERM, then SIGKILL after a grace period. No zombies, no
 * leaked descriptors, and no process of the child's group outlives the
 * task; a direct child dies with the daemon (PR_SET_PDEATHSIG).
 */
#ifndef AIOD_PROC_H
#define AIOD_PROC_H

#include <aiod/plugin.h>

#include "base/forward.h"
#include "pbvalue.h"

/*
 * Inside a task: see aiod_api.proc_run. The spec is copied (argv, envp,
 * cwd and stdin data go to the heap) before the task first suspends, so it
 * may live on the task's stack. On success *ret_result gets the map
 * {"exit", "stdout", "stderr"} (each output a string when it is UTF-8
 * without NUL, else bytes), and when a stream wrote more than
 * LIMIT_PROC_CAPTURE also "stdout_truncated"/"stderr_truncated" (true) and
 * "stdout_bytes"/"stderr_bytes" (how many it wrote). -ENOENT (program or cwd
 * not found) and other spawn errors also set the task's pending error
 * ("FileNotFoundError"/"OSError"), so a plugin can just return them.
 */
int proc_run(task *t, const struct aiod_proc_spec *spec, Aiod__Value **ret_result);

/* Children alive now (statistics and tests). */
unsigned proc_count(void);

/*
 * At exit, after the loop stopped running tasks and before the remaining
 * handles are closed: SIGKILLs the process group of every child still
 * known and closes its handles with their proper callbacks, so the next
 * uv_run frees them.
 */
void proc_shutdown(void);

#endif

/*
 * Child processes (proc.h). Not implemented yet.
 */
#include "proc.h"

#include <errno.h>

int proc_run(task *t, const struct aiod_proc_spec *spec, Aiod__Value **ret_result) {
    (void)t, (void)spec, (void)ret_result;
    return -ENOSYS;
}

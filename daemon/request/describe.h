/*
 * Tasks and functions as the protocol describes them: TaskInfo (ps, show)
 * with the call as one short line of text, and FunctionInfo (plugins).
 */
#ifndef AIOD_DESCRIBE_H
#define AIOD_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>

#include "aiod-pb.h"
#include "base/forward.h"

/* The length TaskInfo.call_text is cut to, in bytes, "…" included. */
#define CALL_TEXT_MAX 120u

/*
 * Fills `ti` for task `t`, borrowing the task's strings. `call_text` is the
 * caller's buffer of CALL_TEXT_MAX + 1 bytes for the call line. With
 * `detail` (show) also the arguments and, once finished, the outcome (into
 * `o`).
 */
void describe_task(const task *t, Aiod__TaskInfo *ti, char *call_text, Aiod__Outcome *o,
                   bool detail);

/* The call of `t` as one line: the function and its arguments (strings as
 * they are, other values as JSON; a rest parameter's list as its items;
 * trailing arguments equal to their defaults left out), cut at a UTF-8 character boundary to at
 * most CALL_TEXT_MAX bytes, ending in "…" when cut. `buf` has
 * CALL_TEXT_MAX + 1 bytes. */
void describe_call(const task *t, char *buf);

/* Fills `fi` for function `f`, with its parameters in ps[0..n) and their
 * pointers in pp (both the caller's, n = f->sig.n_params). */
void describe_function(const fn_entry *f, Aiod__FunctionInfo *fi, Aiod__Param *ps,
                       Aiod__Param **pp);

#endif

/*
 * Logging for the daemon: plain lines on stderr ("aiod[pid]: <level>: text")
 * or, when stderr is connected to the journal (JOURNAL_STREAM), structured
 * journal entries: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=aiod, CODE_FILE,
 * CODE_LINE, CODE_FUNC, ERRNO when there is one, and for a line about a task
 * TASK_ID, FUNCTION, PLUGIN and OWNER_UID (journalctl TASK_ID=12). Only the
 * edges log (connections, dispatch, plugin loader, main); parsers never do.
 *
 * An entry is always one line: control characters in the text (and in the
 * function name on stderr) are escaped, \n, \r and \t as such and the other
 * C0 controls and DEL as \xHH, so a message a client or plugin wrote can
 * never forge a line of its own. Journal fields other than MESSAGE keep
 * their bytes.
 */
#ifndef AIOD_LOG_H
#define AIOD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "base/forward.h"
#include "macro.h"

/* Chooses the sink from the environment; sets the maximum level logged. */
void log_setup(int max_priority);
void log_set_max_priority(int priority);
int log_get_max_priority(void);
/* Parses "debug", "info", "notice", "warning", "err"/"error", "crit",
 * "alert", "emerg". 0 or -EINVAL. */
int log_level_from_string(const char *s, int *ret_priority);
/* The name of a level ("info"), "?" when out of range. */
const char *log_level_to_string(int priority);
/* Whether entries go to the journal. */
bool log_to_journal(void);
/* Whether stderr is systemd's journal (JOURNAL_STREAM names it): lines
 * written there may start with a <N> priority prefix. Usable before
 * log_setup. */
bool log_stderr_is_journal(void);

/* What a log line says about the task it concerns. */
typedef struct log_subject {
    uint64_t task_id;
    const char *function;
    const char *plugin;
    unsigned owner_uid;
    /* NULL while the task is unfinished. */
    const char *state;
    const char *error_kind;
    const char *error_message;
} log_subject;

/* How the core describes a task, which this layer sees only as a pointer:
 * set once by the task table. */
void log_set_describer(void (*describe)(const void *task, log_subject *ret));

/*
 * Logs one line at `priority`; the task `t` (NULL for none) gives the
 * fields naming it (id, function, plugin, owner). If error > 0 it is
 * appended as ": strerror". Returns -error so callers can
 * `return log_error_errno(r, ...)`.
 */
int log_internal(int priority, int error, const void *t, const char *file, int line,
                 const char *func, const char *fmt, ...) _printf_(7, 8);

#define log_full_errno(prio, err, ...)                                                             \
    log_internal(prio, (err) < 0 ? -(err) : (err), NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_task(prio, t, ...) log_internal(prio, 0, t, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(LOG_WARNING, err, __VA_ARGS__)
#define log_error_errno(err, ...) log_full_errno(LOG_ERR, err, __VA_ARGS__)
#define log_debug_errno(err, ...) log_full_errno(LOG_DEBUG, err, __VA_ARGS__)

#endif

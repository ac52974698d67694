/*
 * Log sinks (log.h). The journal is used only when stderr is the very stream
 * systemd connected (JOURNAL_STREAM names its device and inode), as
 * systemd's own tools decide; otherwise lines go to stderr.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "plugin.h"
#include "task.h"

static int max_priority = LOG_INFO;
static int use_journal;

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
                                          "warning", "notice", "info", "debug"};

static int stderr_is_journal(void) {
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(int priority) {
    max_priority = priority;
    use_journal = stderr_is_journal();
}

void log_set_max_priority(int priority) {
    max_priority = priority;
}

int log_get_max_priority(void) {
    return max_priority;
}

int log_level_from_string(const char *s, int *ret_priority) {
    for (int i = 0; i < (int)ELEMENTSOF(level_names); i++)
        if (strcmp(s, level_names[i]) == 0) {
            *ret_priority = i;
            return 0;
        }
    if (strcmp(s, "error") == 0) {
        *ret_priority = LOG_ERR;
        return 0;
    }
    return -EINVAL;
}

int log_internal(int priority, int error, const task *t, const char *file, int line,
                 const char *func, const char *fmt, ...) {
    uint64_t task_id = t ? t->id : 0;
    const char *function = t ? t->fn->full_name : NULL;
    if (priority > max_priority)
        return -error;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -error;
    if (error > 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(error));

    if (use_journal) {
        char code_line[32], task_field[48], fn[300], err[32];
        snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
        snprintf(task_field, sizeof(task_field), "AIOD_TASK=%llu", (unsigned long long)task_id);
        snprintf(fn, sizeof(fn), "AIOD_FUNCTION=%s", function ? function : "");
        snprintf(err, sizeof(err), "ERRNO=%d", error);
        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "CODE_FILE=%s", file,
                        code_line, "CODE_FUNC=%s", func, task_id ? task_field : "AIOD_TASK=",
                        function ? fn : "AIOD_FUNCTION=", error ? err : "ERRNO=0", NULL);
        return -error;
    }
    if (task_id)
        fprintf(stderr, "aiod[%d]: %s: task %llu%s%s: %s\n", (int)getpid(), level_names[priority & 7],
                (unsigned long long)task_id, function ? " " : "", function ? function : "", msg);
    else
        fprintf(stderr, "aiod[%d]: %s: %s\n", (int)getpid(), level_names[priority & 7], msg);
    return -error;
}

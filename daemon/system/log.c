/*
 * Log sinks (log.h). The journal is used only when stderr is the very stream
 * systemd connected (JOURNAL_STREAM names its device and inode), as
 * systemd's own tools decide; otherwise lines go to stderr. If the journal
 * refuses an entry the line goes to stderr instead, so nothing is lost.
 */
#define SD_JOURNAL_SUPPRESS_LOCATION /* we pass the caller's location ourselves */
#include "system/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static int max_priority = LOG_INFO;
static bool use_journal;

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
                                          "warning", "notice", "info", "debug"};

bool log_stderr_is_journal(void) {
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(int priority) {
    max_priority = priority;
    use_journal = log_stderr_is_journal();
}

void log_set_max_priority(int priority) {
    max_priority = priority;
}

int log_get_max_priority(void) {
    return max_priority;
}

bool log_to_journal(void) {
    return use_journal;
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

const char *log_level_to_string(int priority) {
    return priority >= 0 && priority < (int)ELEMENTSOF(level_names) ? level_names[priority] : "?";
}

/* One "NAME=value" journal field in `buf`, appended to `iov`. */
_printf_(4, 5) static void field(struct iovec *iov, size_t *n, char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, 128, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    iov[*n].iov_base = buf;
    iov[*n].iov_len = (size_t)len < 128 ? (size_t)len : 127;
    (*n)++;
}

static void (*describer)(const void *task, log_subject *ret);

/*
 * Copies s into dst (size bytes, NUL included) with each control character
 * escaped: \n, \r and \t as such, the other C0 controls and DEL as \xHH.
 * Log text carries what clients and plugins wrote (task error messages,
 * function names); a raw newline in it would start a line of its own that
 * reads as the daemon's ("aiod[1]: crit: ..."), and escape sequences would
 * drive the terminal that shows it. Cut at a whole escape, never inside one.
 */
static const char *escape_controls(char *dst, size_t size, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[4];
        size_t n = 0;
        if (c >= 0x20 && c != 0x7f)
            e[n++] = (char)c;
        else {
            e[n++] = '\\';
            if (c == '\n')
                e[n++] = 'n';
            else if (c == '\r')
                e[n++] = 'r';
            else if (c == '\t')
                e[n++] = 't';
            else {
                e[n++] = 'x';
                e[n++] = hex[c >> 4];
                e[n++] = hex[c & 15];
            }
        }
        if (o + n >= size)
            break;
        memcpy(dst + o, e, n);
        o += n;
    }
    dst[o] = '\0';
    return dst;
}

void log_set_describer(void (*describe)(const void *task, log_subject *ret)) {
    describer = describe;
}

static int send_journal(int priority, int error, const log_subject *t, const char *file, int line,
                        const char *func, const char *msg) {
    struct iovec iov[16];
    char b[12][128];
    size_t n = 0, k = 0;
    /* MESSAGE= may be long: point at it instead of copying. */
    static const char message[] = "MESSAGE=";
    _cleanup_free_ char *m = NULL;
    size_t ml = strlen(msg);
    m = malloc(sizeof(message) + ml);
    if (!m)
        return -ENOMEM;
    memcpy(m, message, sizeof(message) - 1);
    memcpy(m + sizeof(message) - 1, msg, ml);
    iov[n].iov_base = m;
    iov[n].iov_len = sizeof(message) - 1 + ml;
    n++;
    field(iov, &n, b[k++], "PRIORITY=%d", priority & 7);
    field(iov, &n, b[k++], "SYSLOG_IDENTIFIER=aiod");
    field(iov, &n, b[k++], "CODE_FILE=%s", file);
    field(iov, &n, b[k++], "CODE_LINE=%d", line);
    field(iov, &n, b[k++], "CODE_FUNC=%s", func);
    if (error > 0)
        field(iov, &n, b[k++], "ERRNO=%d", error);
    if (t) {
        field(iov, &n, b[k++], "TASK_ID=%llu", (unsigned long long)t->task_id);
        field(iov, &n, b[k++], "FUNCTION=%s", t->function);
        field(iov, &n, b[k++], "PLUGIN=%s", t->plugin);
        field(iov, &n, b[k++], "OWNER_UID=%u", t->owner_uid);
        if (t->state)
            field(iov, &n, b[k++], "STATE=%s", t->state);
        if (t->error_kind)
            field(iov, &n, b[k++], "ERROR_KIND=%s", t->error_kind);
    }
    /* The error message may be long too. */
    static const char emsg[] = "ERROR_MESSAGE=";
    _cleanup_free_ char *e = NULL;
    if (t && t->error_message) {
        size_t el = strlen(t->error_message);
        e = malloc(sizeof(emsg) + el);
        if (e) {
            memcpy(e, emsg, sizeof(emsg) - 1);
            memcpy(e + sizeof(emsg) - 1, t->error_message, el);
            iov[n].iov_base = e;
            iov[n].iov_len = sizeof(emsg) - 1 + el;
            n++;
        }
    }
    return sd_journal_sendv(iov, (int)n);
}

int log_internal(int priority, int error, const void *subject_of, const char *file, int line,
                 const char *func, const char *fmt, ...) {
    if (priority > max_priority)
        return -error;
    log_subject subject, *t = NULL;
    if (subject_of && describer) {
        describer(subject_of, &subject);
        t = &subject;
    }

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -error;
    if (error > 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(error));

    /* One entry is one line, whatever was formatted into it: MESSAGE too,
     * since journalctl and syslog readers show it as lines. The journal's
     * other fields keep their bytes (it stores them length-prefixed). */
    char text[4 * sizeof(msg)];
    escape_controls(text, sizeof(text), msg);
    if (use_journal && send_journal(priority, error, t, file, line, func, text) >= 0)
        return -error;
    if (t) {
        char fn[4 * 128];
        fprintf(stderr, "aiod[%d]: %s: task %llu %s (uid %u): %s\n", (int)getpid(),
                level_names[priority & 7], (unsigned long long)t->task_id,
                escape_controls(fn, sizeof(fn), t->function ? t->function : "?"), t->owner_uid,
                text);
    } else
        fprintf(stderr, "aiod[%d]: %s: %s\n", (int)getpid(), level_names[priority & 7], text);
    return -error;
}

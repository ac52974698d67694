/*
 * print: aioctl's output formats (print.h). JSON lines are assembled from
 * pieces that are JSON already: values come from aioc_value_to_json and
 * strings are quoted by jansson, so nothing here escapes by hand.
 */
#include "print.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "macro.h"

/* Is s[0] the first byte of a character a terminal acts on: a C0 control
 * but TAB, DEL, or a C1 control in UTF-8 (C2 80 to C2 9F)? Returns how
 * many bytes it has, 0 when it is not one. */
static size_t control_len(const char *s) {
    unsigned char c = (unsigned char)s[0];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
        return 1;
    if (c == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f)
        return 2;
    return 0;
}

/* Copies s into a new string with each control character of control_len
 * written by `escape` (which returns its length, at most 12 bytes). */
static char *replace_controls(const char *s, size_t (*escape)(char *out, const char *c, size_t n)) {
    size_t n = 0, len = 0;
    for (const char *p = s; *p; p += n ? n : 1)
        len += (n = control_len(p)) ? 12 : 1;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p;) {
        n = control_len(p);
        if (n) {
            o += escape(o, p, n);
            p += n;
        } else
            *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* "\n" for a newline, else "\xNN" for each byte. */
static size_t escape_text(char *out, const char *c, size_t n) {
    if (*c == '\n') {
        memcpy(out, "\\n", 2);
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        sprintf(out + 4 * i, "\\x%02x", (unsigned char)c[i]);
    return 4 * n;
}

/* "\u00NN" for the code point (only DEL and C1 can occur in JSON text:
 * jansson escapes C0, and they are inside strings). */
static size_t escape_json(char *out, const char *c, size_t n) {
    unsigned cp = n == 2 ? (unsigned char)c[1] : (unsigned char)c[0];
    sprintf(out, "\\u%04x", cp);
    return 6;
}

char *print_text(const char *s) {
    return replace_controls(s ? s : "", escape_text);
}

char *print_safe_json(char *json) {
    if (!json)
        return NULL;
    char *safe = replace_controls(json, escape_json);
    free(json);
    return safe;
}

char *print_json_string(const char *s) {
    json_t *j = json_string(s ? s : "");
    if (!j) /* not UTF-8: the library already replaced such bytes */
        j = json_string("?");
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return print_safe_json(text);
}

char *print_value_json(const aioc_value *v) {
    return print_safe_json(aioc_value_to_json(v));
}

void print_line(FILE *f, const char *prefix, const char *s, const char *suffix) {
    _cleanup_free_ char *t = print_text(s);
    fprintf(f, "%s%s%s", prefix, t ? t : "?", suffix);
}

/* Lines are written to stdout's buffer, and it is flushed when the library
 * is about to wait for the daemon (print_flush_cb): a reader sees each
 * line as soon as no more are at hand, and a task printing millions of
 * lines costs a write per buffer, not per line. */
void print_output_cb(uint64_t task_id, int stream, const char *line, void *userdata) {
    const bool *json = userdata;
    if (*json) {
        _cleanup_free_ char *q = print_json_string(line);
        printf("{\"output\":%s,\"task\":%" PRIu64 ",\"stream\":%d}\n", q ? q : "null", task_id,
               stream);
    } else if (stream == 2) {
        /* A child process's stderr goes where stderr goes, after what
         * stdout holds. */
        print_flush();
        fprintf(stderr, "%s\n", line);
    } else {
        printf("%s\n", line);
    }
}

void print_logs_cb(uint64_t task_id, int stream, const char *line, void *userdata) {
    const bool *json = userdata;
    FILE *f = stream == 2 ? stderr : stdout;
    static int tty[3] = {-1, -1, -1};
    int fd = stream == 2 ? 2 : 1;
    if (tty[fd] < 0)
        tty[fd] = isatty(fd);
    if (*json || !tty[fd]) {
        print_output_cb(task_id, stream, line, userdata);
        return;
    }
    /* Someone's program wrote it, and it goes to a terminal: escaped as
     * aioctl's other lines are, TAB kept. */
    if (f == stderr)
        print_flush();
    print_line(f, "", line, "\n");
}

void print_error(FILE *f, const char *prefix, const char *kind, const char *msg) {
    _cleanup_free_ char *k = print_text(*kind ? kind : "Error");
    _cleanup_free_ char *m = print_text(msg);
    fprintf(f, "%s%s%s%s\n", prefix, k ? k : "?", *msg ? ": " : "", m ? m : "?");
}

void print_flush(void) {
    if (fflush(stdout) == 0 && !ferror(stdout))
        return;
    int e = errno;
    if (e != EPIPE)
        fprintf(stderr, "aioctl: cannot write its output: %s\n",
                e ? strerror(e) : "a write to stdout failed");
    _exit(EXIT_OUTPUT);
}

void print_flush_cb(void *userdata) {
    (void)userdata;
    print_flush();
}

int print_outcome_exit(const aioc_outcome *o) {
    switch (aioc_outcome_state(o)) {
    case AIOC_STATE_DONE:
        return EXIT_OK;
    case AIOC_STATE_CANCELLED:
        return EXIT_CANCELLED;
    default:
        return EXIT_TASK_FAILED;
    }
}

int print_outcome(bool json, const aioc_outcome *o) {
    uint64_t id = aioc_outcome_task_id(o);
    int state = aioc_outcome_state(o);

    if (state == AIOC_STATE_DONE) {
        _cleanup_free_ char *v = print_value_json(aioc_outcome_result(o));
        if (json)
            printf("{\"result\":%s,\"task\":%" PRIu64 "}\n", v ? v : "null", id);
        else
            printf("%s\n", v ? v : "null");
    } else if (state == AIOC_STATE_FAILED || state == AIOC_STATE_CANCELLED) {
        const char *kind = aioc_outcome_error_kind(o), *msg = aioc_outcome_error_message(o);
        if (json) {
            _cleanup_free_ char *k = print_json_string(kind), *m = print_json_string(msg);
            printf("{\"error\":{\"kind\":%s,\"message\":%s},\"task\":%" PRIu64 "}\n",
                   k ? k : "null", m ? m : "null", id);
        } else {
            print_flush();
            print_error(stderr, "", kind, msg);
        }
    } else {
        /* Not ended (an await cannot return this, but be honest). */
        print_state(json, id, state);
        if (!json)
            printf("%s\n", aioc_state_name(state));
    }
    print_flush();
    return print_outcome_exit(o);
}

void print_id(bool json, uint64_t id) {
    if (json)
        printf("{\"id\":%" PRIu64 "}\n", id);
    else
        printf("%" PRIu64 "\n", id);
    if (fflush(stdout) == 0 && !ferror(stdout))
        return;
    /* The task exists: its id goes to stderr, which may still work, so
     * that it can be found. */
    int e = errno;
    if (e != EPIPE)
        fprintf(stderr,
                "aioctl: task %" PRIu64 " was submitted, but its id could not be written: %s\n", id,
                e ? strerror(e) : "a write to stdout failed");
    _exit(EXIT_OUTPUT);
}

void print_state(bool json, uint64_t task_id, int state) {
    if (!json)
        return;
    printf("{\"state\":\"%s\",\"task\":%" PRIu64 "}\n", aioc_state_name(state), task_id);
    print_flush();
}

char *print_time(uint64_t usec, char *buf, size_t len) {
    struct tm tm;
    char date[32], zone[8];
    time_t t = (time_t)(usec / 1000000u);

    if (usec == 0 || !localtime_r(&t, &tm) ||
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
        strftime(zone, sizeof(zone), "%z", &tm) != 5) {
        snprintf(buf, len, "-");
        return buf;
    }
    /* ISO 8601 wants the offset as +hh:mm. */
    snprintf(buf, len, "%s.%03u%.3s:%.2s", date, (unsigned)(usec / 1000u % 1000u), zone, zone + 3);
    return buf;
}

char *print_age(uint64_t created_usec, char *buf, size_t len) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_usec = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    uint64_t s = created_usec && now_usec > created_usec ? (now_usec - created_usec) / 1000000u : 0;

    if (created_usec == 0)
        snprintf(buf, len, "-");
    else if (s < 120)
        snprintf(buf, len, "%" PRIu64 "s", s);
    else if (s < 2 * 3600)
        snprintf(buf, len, "%" PRIu64 "m", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, len, "%" PRIu64 "h", s / 3600);
    else
        snprintf(buf, len, "%" PRIu64 "d", s / 86400);
    return buf;
}

void print_dropped(const char *what, uint64_t dropped) {
    if (dropped == 0)
        return;
    /* After the lines that were printed, so that it reads as their end. */
    print_flush();
    fprintf(stderr,
            "aioctl: %s%s%" PRIu64 " output %s dropped (the daemon's buffer of the task's output "
            "overflowed before aioctl read them)\n",
            what ? what : "", what ? ": " : "", dropped, dropped == 1 ? "line was" : "lines were");
}

/*
 * print: everything aioctl writes on stdout, in plain form or, with --json,
 * as one JSON object per line. Errors of tasks go to stderr in plain mode.
 */
#ifndef AIOCTL_PRINT_H
#define AIOCTL_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aioc.h"

/* The output callback: one line of a task's output, flushed at once. The
 * userdata is a pointer to a bool, the --json flag. */
/*
 * Flushes stdout. A write that failed, now or earlier (a full disk, a
 * reader that went away with SIGPIPE ignored), ends aioctl at once with
 * EXIT_OUTPUT after saying so on stderr (not for EPIPE: a reader that left
 * is told nothing); the connection closes with it, so an attached task is
 * cancelled, as when SIGPIPE kills aioctl.
 */
void print_flush(void);

/* The idle callback: flushes what print_output_cb buffered. */
void print_flush_cb(void *userdata);
void print_output_cb(uint64_t task_id, int stream, const char *line, void *userdata);

/* `aioctl logs`' output callback: print_output_cb, but a line going to a
 * terminal (stdout, or stderr for stream 2) without --json goes through
 * print_text (a task's output into a pipe or a file stays the program's
 * bytes). */
void print_logs_cb(uint64_t task_id, int stream, const char *line, void *userdata);

/* Prints how a task ended: its result (exit EXIT_OK), or its error kind and
 * message (EXIT_TASK_FAILED, EXIT_CANCELLED). Returns the exit code. */
int print_outcome(bool json, const aioc_outcome *o);

/* The exit code for an outcome, printing nothing. */
int print_outcome_exit(const aioc_outcome *o);

/* A new task's id: "42" or {"id":42}. */
void print_id(bool json, uint64_t id);

/* {"state":S,"task":ID} (json only; plain prints nothing). */
void print_state(bool json, uint64_t task_id, int state);

/* When `dropped` is not 0, says on stderr (after flushing stdout) that so
 * many of a followed task's output lines were dropped because aioctl read
 * them too slowly: "aioctl: WHAT: N output lines were dropped (...)", WHAT
 * and its colon left out when NULL. */
void print_dropped(const char *what, uint64_t dropped);

/*
 * Terminal safety (aioctl(1)): every string from the daemon that aioctl
 * prints for a human goes through print_text, so that another user's
 * words cannot act on the reader's terminal. C0 controls but TAB, DEL and
 * the C1 controls U+0080..U+009F become visible: a newline "\n", every
 * other byte "\xNN" (a C1 control is the two bytes of its UTF-8,
 * "\xc2\x9b"). Returns a new string, NULL on OOM.
 */
char *print_text(const char *s);

/* Prints prefix, s through print_text ("?" on OOM), and suffix on f. */
void print_line(FILE *f, const char *prefix, const char *s, const char *suffix);

/* "PREFIXKIND: MESSAGE\n" (KIND "Error" when empty, ": MESSAGE" left out
 * when empty), both through print_text. */
void print_error(FILE *f, const char *prefix, const char *kind, const char *msg);

/* JSON text with DEL and C1 controls (which jansson leaves raw inside
 * strings) written \u007f, \u0080..\u009f: the same JSON. Takes `json`
 * (freed), returns a new string, NULL when json is NULL or on OOM. */
char *print_safe_json(char *json);

/* aioc_value_to_json through print_safe_json. */
char *print_value_json(const aioc_value *v);

/* Returns the JSON text of a string (a new string, through
 * print_safe_json), or NULL on OOM. */
char *print_json_string(const char *s);

/* ISO-8601 local time with milliseconds and UTC offset into buf, or "-" for
 * 0. Returns buf. */
char *print_time(uint64_t usec, char *buf, size_t len);

/* A short age such as "42s", "3m", "5h", "2d" into buf. Returns buf. */
char *print_age(uint64_t created_usec, char *buf, size_t len);

#endif

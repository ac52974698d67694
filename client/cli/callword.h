/*
 * callword: the parser of one CALL word of `aioctl gather`, such as
 * 'demo.sleep 3 "two words"'. Pure: no I/O and no global state, so that it
 * can be fuzzed on its own.
 *
 * Grammar, like a small shell: words are separated by blanks (space, tab,
 * newline); '...' keeps everything literally; "..." keeps everything except
 * that \" and \\ stand for " and \; outside quotes a backslash makes the
 * next character literal. Quoted and unquoted pieces next to each other form
 * one word, and '' is an empty word. The first word is the function, the
 * others are its arguments as text. A CALL made of digits only (blanks
 * around allowed) is instead the id of an existing task.
 */
#ifndef AIOCTL_CALLWORD_H
#define AIOCTL_CALLWORD_H

#include <stddef.h>
#include <stdint.h>

typedef struct callword {
    /* Nonzero when the CALL named an existing task; then n_words is 0. */
    uint64_t task_id;
    /* words[0] is the function, the rest its text arguments; all owned. */
    char **words;
    size_t n_words;
} callword;

/*
 * Parses `text` into *ret (which the caller later clears with
 * callword_done). 0 on success; -EINVAL with *ret_why set to a static
 * description (and *ret_pos, if not NULL, to the byte offset the problem
 * was found at) for an empty call, an unterminated quote, a trailing
 * backslash or a task id of 0 or out of range; -ENOMEM.
 */
int callword_parse(const char *text, callword *ret, const char **ret_why, size_t *ret_pos);

/* Frees what callword_parse stored and zeroes *cw. Accepts a zeroed one. */
void callword_done(callword *cw);

#endif

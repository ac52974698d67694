/*
 * callword: splitting a CALL word into a function and text arguments
 * (callword.h). One pass over the text, building the current word in a
 * scratch buffer no longer than the input.
 */
#include "callword.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void callword_done(callword *cw) {
    if (!cw)
        return;
    for (size_t i = 0; i < cw->n_words; i++)
        free(cw->words[i]);
    free(cw->words);
    *cw = (callword){0};
}

/* A CALL of digits only, with optional blanks around: a task id.
 * 1 and *ret_id when it is one, 0 when it is not, -EINVAL/-ERANGE. */
static int parse_task_id(const char *text, uint64_t *ret_id, const char **ret_why) {
    const char *p = text;
    uint64_t id = 0;

    while (is_blank(*p))
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (id > (UINT64_MAX - d) / 10) {
            *ret_why = "task id out of range";
            return -EINVAL;
        }
        id = id * 10 + d;
    }
    while (is_blank(*p))
        p++;
    if (*p)
        return 0;
    if (id == 0) {
        *ret_why = "task id 0 does not exist (ids start at 1)";
        return -EINVAL;
    }
    *ret_id = id;
    return 1;
}

static int add_word(callword *cw, const char *s, size_t len) {
    char **words = alloc_realloc(cw->words, (cw->n_words + 1) * sizeof(*words));
    if (!words)
        return -ENOMEM;
    cw->words = words;
    words[cw->n_words] = alloc_strndup(s, len);
    if (!words[cw->n_words])
        return -ENOMEM;
    cw->n_words++;
    return 0;
}

int callword_parse(const char *text, callword *ret, const char **ret_why, size_t *ret_pos) {
    callword cw = {0};
    const char *why = NULL;
    size_t pos = 0;
    int r;

    if (!text || !ret || !ret_why)
        return -EINVAL;

    r = parse_task_id(text, &cw.task_id, &why);
    if (r != 0) {
        if (r < 0) {
            *ret_why = why;
            if (ret_pos)
                *ret_pos = 0;
            return r;
        }
        *ret = cw;
        return 0;
    }

    size_t len = strlen(text);
    char *buf = alloc_malloc(len + 1);
    if (!buf)
        return -ENOMEM;

    size_t n = 0;         /* Bytes in the current word. */
    bool in_word = false; /* A word has started (it may still be empty: ''). */
    for (size_t i = 0; i <= len; i++) {
        char c = text[i];
        if (c == '\0' || is_blank(c)) {
            if (in_word) {
                r = add_word(&cw, buf, n);
                if (r < 0)
                    goto fail;
                n = 0;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (c == '\'') {
            size_t start = i++;
            while (i < len && text[i] != '\'')
                buf[n++] = text[i++];
            if (i >= len) {
                why = "unterminated single quote";
                pos = start;
                r = -EINVAL;
                goto fail;
            }
        } else if (c == '"') {
            size_t start = i++;
            while (i < len && text[i] != '"') {
                if (text[i] == '\\' && (text[i + 1] == '"' || text[i + 1] == '\\'))
                    i++;
                buf[n++] = text[i++];
            }
            if (i >= len) {
                why = "unterminated double quote";
                pos = start;
                r = -EINVAL;
                goto fail;
            }
        } else if (c == '\\') {
            if (i + 1 >= len) {
                why = "backslash at the end (nothing to escape)";
                pos = i;
                r = -EINVAL;
                goto fail;
            }
            buf[n++] = text[++i];
        } else {
            buf[n++] = c;
        }
    }
    free(buf);
    buf = NULL;

    if (cw.n_words == 0) {
        why = "empty call (expected a function name or a task id)";
        r = -EINVAL;
        goto fail;
    }
    if (cw.words[0][0] == '\0') {
        why = "empty function name";
        r = -EINVAL;
        goto fail;
    }
    *ret = cw;
    return 0;

fail:
    free(buf);
    callword_done(&cw);
    if (r == -EINVAL) {
        *ret_why = why;
        if (ret_pos)
            *ret_pos = pos;
    }
    return r;
}

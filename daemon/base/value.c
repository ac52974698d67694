/*
 * Call checking and text conversion (value.h).
 */
#include "base/value.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"

/* Values quoted in error texts show at most this many bytes, cut between two
 * characters (the text goes to the client as a protobuf string). */
#define SHOWN_MAX 60

/* The precision for "%.*s" that shows s cut to SHOWN_MAX bytes. */
static int shown_len(const char *s) {
    return (int)utf8_cut(s, strnlen(s, SHOWN_MAX + 1), SHOWN_MAX);
}
#define SHOWN(s) shown_len(s), (s)

static int parse_int(const char *s, int64_t *ret) {
    char *end;
    errno = 0;
    if (!*s || strchr(" \t\n", *s))
        return -EINVAL;
    /* Decimal, or hexadecimal after 0x: never octal, which strtoll's base 0
     * would make of a leading 0 ("010" is ten, and "09" a number). */
    const char *d = s + (*s == '-' || *s == '+');
    bool hex = d[0] == '0' && (d[1] == 'x' || d[1] == 'X');
    long long v = strtoll(s, &end, hex ? 16 : 10);
    if (errno || *end || end == d + (hex ? 2 : 0))
        return -EINVAL;
    *ret = (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *ret) {
    char *end;
    errno = 0;
    if (!*s || strchr(" \t\n", *s))
        return -EINVAL;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_bool(const char *s, bool *ret) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* How a call's arguments are checked (check_call and the functions it
 * calls). */
typedef struct checking {
    bool text;
    unsigned max_depth;
    /* Every argument passed pbvalue_check already. */
    bool checked;
    /* JSON text already parsed off the loop thread (NULL: none). */
    value_json_fn json;
    const void *json_ctx;
} checking;

/* Text parsed as JSON within the limits a binary value is held to: depth
 * max_depth, and LIMIT_FRAME_VALUES values (-E2BIG), checked by a scan
 * before jansson makes anything, so that text over them costs one pass;
 * or the value `c` parsed for `arg` on the pool. 0, -EINVAL (not JSON:
 * jansson's reason in why), -ELOOP or -E2BIG (the limit in why), -ENOMEM. */
static int parse_json(const checking *c, const Aiod__Value *arg, const char *text,
                      Aiod__Value **ret, char *why, size_t why_len) {
    if (c->json && arg) {
        const char *pwhy = NULL;
        int r = c->json(c->json_ctx, arg, ret, &pwhy);
        if (r < 0)
            snprintf(why, why_len, "%s", pwhy ? pwhy : "not JSON");
        if (r != 0)
            return r < 0 ? r : 0;
    }
    return pbvalue_from_json_bounded(text, c->max_depth, LIMIT_FRAME_VALUES, ret, NULL, why,
                                     why_len);
}

/* value_from_text for `arg` (a string; NULL for text of the daemon's own),
 * with -E2BIG for text over LIMIT_FRAME_VALUES. */
static int from_text(const checking *c, uint32_t type, const Aiod__Value *arg, const char *text,
                     Aiod__Value **ret, char *why, size_t why_len) {
    Aiod__Value *v = NULL;
    int64_t i;
    double d;
    bool b;
    char jwhy[160];

    switch (type) {
    case PBVALUE_INT:
        if (parse_int(text, &i) < 0)
            goto bad;
        v = pbvalue_int(i);
        break;
    case PBVALUE_DOUBLE:
        if (parse_double(text, &d) < 0)
            goto bad;
        v = pbvalue_double(d);
        break;
    case PBVALUE_BOOL:
        if (parse_bool(text, &b) < 0)
            goto bad;
        v = pbvalue_bool(b);
        break;
    case PBVALUE_NULL:
        if (strcmp(text, "null") != 0)
            goto bad;
        v = pbvalue_null();
        break;
    case PBVALUE_STRING:
        v = pbvalue_string(text);
        if (!v && !pbvalue_utf8_valid(text, strlen(text))) {
            snprintf(why, why_len, "text is not valid UTF-8");
            return -EINVAL;
        }
        break;
    case PBVALUE_BYTES:
        v = pbvalue_bytes(text, strlen(text));
        break;
    case PBVALUE_LIST:
    case PBVALUE_MAP: {
        int r = parse_json(c, arg, text, &v, jwhy, sizeof(jwhy));
        if (r == -ENOMEM)
            return r;
        if (r == -ELOOP || r == -E2BIG) {
            snprintf(why, why_len, "%s", jwhy);
            return r == -E2BIG ? r : -EINVAL;
        }
        if (r < 0) {
            snprintf(why, why_len, "expected %s as JSON, got \"%.*s\" (%s)",
                     pbvalue_type_name(type), SHOWN(text), jwhy);
            return -EINVAL;
        }
        if (pbvalue_type(v) != type) {
            snprintf(why, why_len, "expected %s, got %s \"%.*s\"", pbvalue_type_name(type),
                     pbvalue_type_name(pbvalue_type(v)), SHOWN(text));
            pbvalue_free(v);
            return -EINVAL;
        }
        break;
    }
    case PBVALUE_ANY: {
        int r = parse_json(c, arg, text, &v, jwhy, sizeof(jwhy));
        if (r == -ENOMEM)
            return r;
        /* JSON over the limits is refused, not taken as a string: it is
         * what the text says it is. */
        if (r == -ELOOP || r == -E2BIG) {
            snprintf(why, why_len, "%s", jwhy);
            return r == -E2BIG ? r : -EINVAL;
        }
        if (r < 0) {
            v = pbvalue_string(text);
            if (!v && !pbvalue_utf8_valid(text, strlen(text))) {
                snprintf(why, why_len, "text is not valid UTF-8");
                return -EINVAL;
            }
        }
        break;
    }
    default:
        snprintf(why, why_len, "unknown type code %u", (unsigned)type);
        return -EINVAL;
    }
    if (!v)
        return -ENOMEM;
    *ret = v;
    return 0;
bad:
    snprintf(why, why_len, "expected %s, got \"%.*s\"", pbvalue_type_name(type), SHOWN(text));
    return -EINVAL;
}

int value_from_text(uint32_t type, const char *text, Aiod__Value **ret, char *why, size_t why_len) {
    const checking c = {.text = true, .max_depth = LIMIT_VALUE_DEPTH};
    int r = from_text(&c, type, NULL, text, ret, why, why_len);
    return r == -E2BIG ? -EINVAL : r;
}

void value_describe(const Aiod__Value *v, char *buf, size_t len) {
    switch (pbvalue_type(v)) {
    case PBVALUE_NULL:
        snprintf(buf, len, "null");
        break;
    case PBVALUE_BOOL:
        snprintf(buf, len, "bool %s", v->bool_value ? "true" : "false");
        break;
    case PBVALUE_INT:
        snprintf(buf, len, "int %" PRId64, v->int_value);
        break;
    case PBVALUE_DOUBLE:
        snprintf(buf, len, "double %g", v->double_value);
        break;
    case PBVALUE_STRING:
        snprintf(buf, len, "string \"%.*s\"", SHOWN(v->string_value));
        break;
    case PBVALUE_BYTES:
        snprintf(buf, len, "bytes of length %zu", v->bytes_value.len);
        break;
    default:
        snprintf(buf, len, "%s of %zu", pbvalue_type_name(pbvalue_type(v)), pbvalue_length(v));
        break;
    }
}

void value_argv_free(Aiod__Value **argv, size_t n) {
    if (!argv)
        return;
    for (size_t i = 0; i < n; i++)
        pbvalue_free(argv[i]);
    free(argv);
}

/* Checks or converts one argument for parameter p (args[i] is taken into
 * *ret on success). */
static int check_one(const value_sig *sig, const value_param *p, uint32_t type, Aiod__Value **arg,
                     const checking *c, Aiod__Value **ret, char *err, size_t err_len) {
    char why[256];
    const char *depth_why = NULL;
    if (!c->checked && pbvalue_check(*arg, c->max_depth, &depth_why) < 0) {
        snprintf(err, err_len, "%s: parameter '%s': %s", sig->function, p->name,
                 depth_why ? depth_why : "invalid value");
        return -EINVAL;
    }
    if (c->text) {
        if (pbvalue_type(*arg) != PBVALUE_STRING) {
            snprintf(err, err_len, "%s: parameter '%s': text arguments must be strings",
                     sig->function, p->name);
            return -EINVAL;
        }
        int r = from_text(c, type, *arg, (*arg)->string_value, ret, why, sizeof(why));
        if (r == -EINVAL || r == -E2BIG)
            snprintf(err, err_len, "%s: parameter '%s': %s", sig->function, p->name, why);
        return r;
    }
    uint32_t have = pbvalue_type(*arg);
    if (!pbvalue_type_fits(type, have)) {
        value_describe(*arg, why, sizeof(why));
        snprintf(err, err_len, "%s: parameter '%s': expected %s, got %s", sig->function, p->name,
                 pbvalue_type_name(type), why);
        return -EINVAL;
    }
    *ret = *arg;
    *arg = NULL;
    if (type == PBVALUE_DOUBLE && have == PBVALUE_INT) {
        (*ret)->kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
        (*ret)->double_value = (double)(*ret)->int_value;
    }
    return 0;
}

/* Collects the arguments for a rest parameter into a new list. */
static int collect_rest(const value_sig *sig, const value_param *p, Aiod__Value **args, size_t n,
                        const checking *c, Aiod__Value **ret, char *err, size_t err_len) {
    Aiod__Value *list = pbvalue_list();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        Aiod__Value *item = NULL;
        int r = check_one(sig, p, p->type & ~VALUE_REST, &args[i], c, &item, err, err_len);
        if (r == 0)
            r = pbvalue_list_append(list, item);
        if (r < 0) {
            pbvalue_free(list);
            return r;
        }
    }
    *ret = list;
    return 0;
}

/* The rest parameter of sig, or NULL. */
static const value_param *rest_param(const value_sig *sig) {
    return sig->n_params && (sig->params[sig->n_params - 1].type & VALUE_REST)
               ? &sig->params[sig->n_params - 1]
               : NULL;
}

/* -EINVAL with the message when n arguments are too many for sig, else 0. */
static int check_count(const value_sig *sig, size_t n, char *err, size_t err_len) {
    if (n <= sig->n_params || rest_param(sig))
        return 0;
    snprintf(err, err_len, "%s: takes at most %zu argument%s (%zu given)", sig->function,
             sig->n_params, sig->n_params == 1 ? "" : "s", n);
    return -EINVAL;
}

/* value_check_call, as `c` says. */
static int check_call(const value_sig *sig, Aiod__Value **args, size_t n, const checking *c,
                      Aiod__Value ***ret_argv, char *err, size_t err_len) {
    Aiod__Value **argv = NULL;
    int r = -EINVAL;

    const value_param *rest = rest_param(sig);
    if (check_count(sig, n, err, err_len) < 0)
        goto fail;
    /* A function without parameters gets no vector (NULL), not an empty one. */
    argv = sig->n_params ? alloc_calloc(sig->n_params, sizeof(*argv)) : NULL;
    if (!argv && sig->n_params) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < sig->n_params; i++) {
        const value_param *p = &sig->params[i];
        if (p == rest) {
            r = collect_rest(sig, p, args + i, n > i ? n - i : 0, c, &argv[i], err, err_len);
            if (r < 0)
                goto fail;
            r = -EINVAL;
            break;
        }
        if (i >= n) {
            if (!p->default_value) {
                snprintf(err, err_len, "%s: missing argument '%s' (%s)", sig->function, p->name,
                         pbvalue_type_name(p->type));
                goto fail;
            }
            argv[i] = pbvalue_copy(p->default_value);
            if (!argv[i]) {
                r = -ENOMEM;
                goto fail;
            }
            continue;
        }
        r = check_one(sig, p, p->type, &args[i], c, &argv[i], err, err_len);
        if (r < 0)
            goto fail;
        r = -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        pbvalue_free(args[i]);
        args[i] = NULL;
    }
    *ret_argv = argv;
    return 0;
fail:
    for (size_t i = 0; i < n; i++) {
        pbvalue_free(args[i]);
        args[i] = NULL;
    }
    value_argv_free(argv, sig->n_params);
    return r;
}

int value_check_call(const value_sig *sig, Aiod__Value **args, size_t n, bool text,
                     unsigned max_depth, Aiod__Value ***ret_argv, char *err, size_t err_len) {
    const checking c = {.text = text, .max_depth = max_depth};
    return check_call(sig, args, n, &c, ret_argv, err, err_len);
}

/* The checks of a request's arguments that come before any is copied or
 * taken: their number, each value's rules (pbvalue_check), and strings when
 * they are text. -EINVAL with a message, -ENOMEM. */
static int check_all(const value_sig *sig, Aiod__Value *const *args, size_t n, bool text,
                     unsigned max_depth, value_verdict_fn verdict, const void *verdict_ctx,
                     char *err, size_t err_len) {
    if (check_count(sig, n, err, err_len) < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const value_param *p = i < sig->n_params ? &sig->params[i] : rest_param(sig);
        const char *why = NULL;
        int r =
            verdict ? verdict(verdict_ctx, args[i], &why) : pbvalue_check(args[i], max_depth, &why);
        if (r < 0) {
            snprintf(err, err_len, "%s: parameter '%s': %s", sig->function, p->name,
                     why ? why : "invalid value");
            return r == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        if (text && pbvalue_type(args[i]) != PBVALUE_STRING) {
            snprintf(err, err_len, "%s: parameter '%s': text arguments must be strings",
                     sig->function, p->name);
            return -EINVAL;
        }
    }
    return 0;
}

int value_check_call_borrowed(const value_sig *sig, Aiod__Value *const *args, size_t n, bool text,
                              unsigned max_depth, Aiod__Value ***ret_argv, char *err,
                              size_t err_len) {
    /* Everything is checked before anything is copied: the copy keeps what
     * it is given (duplicate map keys, keys that are not UTF-8), and a frame
     * of 4 MiB must cost no more than O(n log n) (pbvalue_check) before it
     * is refused. Values already checked are not checked again. */
    int r = check_all(sig, args, n, text, max_depth, NULL, NULL, err, err_len);
    if (r < 0)
        return r;
    Aiod__Value *small[8], **copies = n <= 8 ? small : alloc_calloc(n, sizeof(*copies));
    if (!copies)
        return -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!(copies[i] = pbvalue_copy(args[i]))) {
            while (i-- > 0)
                pbvalue_free(copies[i]);
            r = -ENOMEM;
        }
    const checking c = {.text = text, .max_depth = max_depth, .checked = true};
    if (r == 0)
        r = check_call(sig, copies, n, &c, ret_argv, err, err_len);
    if (copies != small)
        free(copies);
    return r;
}

int value_check_call_take(const value_sig *sig, Aiod__Value **args, size_t n, bool text,
                          unsigned max_depth, value_verdict_fn verdict, value_json_fn json,
                          const void *ctx, Aiod__Value ***ret_argv, char *err, size_t err_len) {
    /* The same checks, in the same order, as value_check_call_borrowed, so
     * that a request gets the same answer whichever way it was decoded. */
    int r = check_all(sig, args, n, text, max_depth, verdict, ctx, err, err_len);
    const checking c = {
        .text = text, .max_depth = max_depth, .checked = true, .json = json, .json_ctx = ctx};
    return r < 0 ? r : check_call(sig, args, n, &c, ret_argv, err, err_len);
}

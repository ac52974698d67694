/*
 * JSON text for values and values from JSON text (pbvalue.h), through
 * jansson, Debian's well-kept JSON library: it escapes, validates UTF-8 and
 * parses numbers exactly, which is all of the hard part. Used by the daemon
 * to convert command-line text for list, map and any parameters, and by the
 * client to print results.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "pbvalue.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const uint8_t *d, size_t n) {
    char *out = alloc_malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        *o++ = b64[w >> 18 & 63];
        *o++ = b64[w >> 12 & 63];
        *o++ = i + 1 < n ? b64[w >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[w & 63] : '=';
    }
    *o = '\0';
    return out;
}

/*
 * Whether "%.*g" with `p` significant digits writes `v` so that it reads back
 * exactly, without an exponent for its integer digits (below 17), so that
 * 100.0 is not written 1e+02.
 */
static bool precision_fits(double v, int p) {
    /* Its integer digits, counted without libm (the client library has
     * none to link). */
    double a = v < 0 ? -v : v;
    int digits = 0;
    for (double t = 1; t <= a && digits < 17; t *= 10)
        digits++;
    if (digits > p && digits < 17)
        return false;
    char buf[40];
    snprintf(buf, sizeof(buf), "%.*g", p, v);
    return strtod(buf, NULL) == v;
}

/*
 * The precision a text's reals need, given `floor`, what its earlier reals
 * needed. jansson writes every real of a text with one precision, by
 * default 17, which makes 0.1 "0.10000000000000001": the text takes the
 * largest of its reals' precisions, and %g drops the trailing zeros the
 * others get. A real that fits the floor costs one snprintf; only one that
 * needs more searches (precision_fits is monotonic in p).
 */
static int real_precision(double v, int floor) {
    if (floor >= 17 || precision_fits(v, floor))
        return floor;
    int lo = floor + 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (precision_fits(v, mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* `limit` (0: none) bounds the work for a text that will be cut to that
 * many bytes: strings are cut to it (on a character boundary), lists and
 * maps to that many items, each taking at least a byte of the text. `prec`
 * gathers the precision its reals need (real_precision). */
static json_t *to_json(const Aiod__Value *v, size_t limit, int *prec) {
    json_t *j = NULL;
    switch (pbvalue_type(v)) {
    case PBVALUE_NULL:
        return json_null();
    case PBVALUE_BOOL:
        return json_boolean(v->bool_value);
    case PBVALUE_INT:
        return json_integer((json_int_t)v->int_value);
    case PBVALUE_DOUBLE:
        if (!isfinite(v->double_value))
            return json_null();
        *prec = real_precision(v->double_value, *prec);
        return json_real(v->double_value);
    case PBVALUE_STRING: {
        size_t n = strlen(v->string_value);
        return json_stringn(v->string_value,
                            limit ? pbvalue_utf8_cut(v->string_value, n, limit) : n);
    }
    case PBVALUE_BYTES: {
        char *s = base64(v->bytes_value.data, v->bytes_value.len);
        if (!s)
            return NULL;
        j = json_pack("{s:s}", "$bytes", s);
        free(s);
        return j;
    }
    case PBVALUE_LIST:
        j = json_array();
        for (size_t i = 0; j && i < pbvalue_length(v) && (!limit || i <= limit); i++)
            if (json_array_append_new(j, to_json(v->list_value->items[i], limit, prec)) < 0) {
                json_decref(j);
                return NULL;
            }
        return j;
    case PBVALUE_MAP:
        j = json_object();
        for (size_t i = 0; j && i < pbvalue_length(v) && (!limit || i <= limit); i++) {
            const Aiod__MapEntry *e = v->map_value->entries[i];
            if (json_object_set_new(j, e->key, to_json(e->value, limit, prec)) < 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    default:
        return NULL;
    }
}

static char *json_text(const Aiod__Value *v, size_t limit) {
    int prec = 1;
    json_t *j = to_json(v, limit, &prec);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(prec));
    json_decref(j);
    if (!s)
        return NULL;
    /* jansson allocates with its own malloc; hand back one of ours. */
    char *r = alloc_strdup(s);
    free(s);
    return r;
}

char *pbvalue_to_json(const Aiod__Value *v) {
    return json_text(v, 0);
}

char *pbvalue_to_json_prefix(const Aiod__Value *v, size_t limit) {
    return json_text(v, limit ? limit : 1);
}

static Aiod__Value *from_json(json_t *j) {
    Aiod__Value *v = NULL;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return pbvalue_null();
    case JSON_TRUE:
        return pbvalue_bool(true);
    case JSON_FALSE:
        return pbvalue_bool(false);
    case JSON_INTEGER:
        return pbvalue_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return pbvalue_double(json_real_value(j));
    case JSON_STRING:
        return pbvalue_stringn(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        /* The arrays are sized at once: appending one by one reallocates
         * each time, which costs quadratic time where realloc cannot grow
         * in place (AddressSanitizer's never does). */
        size_t i, n = json_array_size(j);
        json_t *item;
        v = pbvalue_list();
        if (v && n && !(v->list_value->items = alloc_malloc(n * sizeof(*v->list_value->items))))
            goto fail;
        json_array_foreach(j, i, item) {
            Aiod__Value *c = v ? from_json(item) : NULL;
            if (!c)
                goto fail;
            v->list_value->items[v->list_value->n_items++] = c;
        }
        return v;
    }
    case JSON_OBJECT: {
        /* Keys are unique (JSON_REJECT_DUPLICATES) and valid UTF-8 without
         * NUL (jansson checks): none is searched for or checked again. */
        size_t n = json_object_size(j);
        const char *key;
        json_t *item;
        v = pbvalue_map();
        if (v && n && !(v->map_value->entries = alloc_malloc(n * sizeof(*v->map_value->entries))))
            goto fail;
        json_object_foreach(j, key, item) {
            Aiod__MapEntry *e = v ? alloc_malloc(sizeof(*e)) : NULL;
            if (!e)
                goto fail;
            aiod__map_entry__init(e);
            v->map_value->entries[v->map_value->n_entries++] = e;
            char *k = alloc_strdup(key);
            if (!k)
                goto fail;
            e->key = k;
            if (!(e->value = from_json(item)))
                goto fail;
        }
        return v;
    }
    default:
        return NULL;
    }
fail:
    pbvalue_free(v);
    return NULL;
}

/* The values and the nesting of JSON text, counted without parsing it:
 * exact for valid JSON. -ELOOP past max_depth (at most 63: the map bits),
 * -E2BIG past max_values, -EINVAL where the text is seen not to be
 * JSON (a character no token has, or two values without a comma or colon
 * between them), so that a text meant as a string is not refused for
 * limits it was never held to; else 0 and the count in *ret. Any value
 * jansson makes before it finds an error starts at a character counted
 * here, so a text that passes bounds what parsing it costs. */
static int measure(const char *s, unsigned max_depth, size_t max_values, size_t *ret) {
    size_t values = 0;
    unsigned depth = 0;
    uint64_t in_object = 0; /* bit d: the container at depth d is a map */
    bool key = false;       /* the next string is a map key, not a value */
    bool after = false;     /* a value (or key) just ended */
    for (const char *p = s; *p; p++) {
        bool starts = false;
        switch (*p) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            continue;
        case '"':
            starts = !key;
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p)
                return -EINVAL; /* unterminated */
            if (after)
                return -EINVAL;
            key = false;
            after = true;
            break;
        case '[':
        case '{':
            /* A container is one deeper than what holds it, as a scalar
             * is (checked below); its items are one deeper still. */
            if (after)
                return -EINVAL;
            if (depth + 1 > max_depth)
                return -ELOOP;
            depth++;
            in_object =
                *p == '{' ? in_object | (uint64_t)1 << depth : in_object & ~((uint64_t)1 << depth);
            key = *p == '{';
            values++;
            break;
        case ']':
        case '}':
            depth -= depth > 0;
            key = false;
            after = true;
            break;
        case ',':
            key = depth > 0 && (in_object >> depth & 1);
            after = false;
            break;
        case ':':
            key = false;
            after = false;
            break;
        default:
            /* A number or a literal: one value, whatever its length. */
            if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == 't' || *p == 'f' || *p == 'n') ||
                after)
                return -EINVAL;
            starts = true;
            after = true;
            while (p[1] && strchr("0123456789+-.eEtruefalsn", p[1]))
                p++;
            break;
        }
        if (starts) {
            if (depth + 1 > max_depth)
                return -ELOOP;
            values++;
        }
        if (values > max_values)
            return -E2BIG;
    }
    *ret = values;
    return 0;
}

int pbvalue_from_json_bounded(const char *text, unsigned max_depth, size_t max_values,
                              Aiod__Value **ret, size_t *ret_values, char *why_buf,
                              size_t why_len) {
    size_t n = 0;
    if (max_depth == 0 || max_depth > 63)
        max_depth = 63;
    int r = measure(text, max_depth, max_values, &n);
    /* Not JSON: jansson says where, having made no more values than the
     * scan counted before it stopped. */
    if (r == -EINVAL)
        r = 0;
    if (r == -ELOOP && why_buf && why_len)
        snprintf(why_buf, why_len, "values nested too deeply (more than %u levels)", max_depth);
    if (r == -E2BIG && why_buf && why_len)
        snprintf(why_buf, why_len, "text makes more than %zu values (the limit per request)",
                 max_values);
    if (r < 0)
        return r;
    r = pbvalue_from_json(text, ret, why_buf, why_len);
    if (r == 0 && ret_values)
        *ret_values = n;
    return r;
}

int pbvalue_from_json(const char *text, Aiod__Value **ret, char *why_buf, size_t why_len) {
    json_error_t err;
    /* JSON_REJECT_DUPLICATES keeps map keys unique; JSON_ALLOW_NUL is off so
     * strings stay C strings. */
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        if (why_buf && why_len)
            snprintf(why_buf, why_len, "%s", err.text);
        return -EINVAL;
    }
    Aiod__Value *v = from_json(j);
    json_decref(j);
    if (!v)
        return -ENOMEM;
    *ret = v;
    return 0;
}

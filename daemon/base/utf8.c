/*
 * UTF-8 validation, cutting and replacement (utf8.h).
 */
#include "base/utf8.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

/*
 * Decodes the character at p[0..len) (len >= 1). Returns its length (1 to 4)
 * when it is well formed; else 0, with *ret_bad the length of the maximal
 * ill-formed subpart there (1 to 3): the lead byte and the continuation bytes
 * that could still have been part of a valid character.
 */
static size_t decode(const unsigned char *p, size_t len, size_t *ret_bad) {
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates above */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF above */
    } else {
        *ret_bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < n && i < len; i++) {
        unsigned char b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            break;
    }
    if (i == n)
        return n;
    *ret_bad = i;
    return 0;
}

size_t utf8_char_len(const char *s, size_t len) {
    size_t bad;
    return len ? decode((const unsigned char *)s, len, &bad) : 0;
}

/* Bytes from s on that are ASCII, eight at a time (a multiple of 8; the
 * caller looks at the rest). Output lines are mostly ASCII, and every one
 * is checked. */
static size_t ascii_words(const unsigned char *p, size_t len) {
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
    }
    return i;
}

size_t utf8_valid_prefix(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < len) {
        i += ascii_words(p + i, len - i);
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = decode(p + i, len - i, &bad);
        if (!n)
            break;
        i += n;
    }
    return i;
}

bool utf8_valid_text(const char *s, size_t len) {
    return utf8_valid_prefix(s, len) == len && !memchr(s, '\0', len);
}

size_t utf8_cut(const char *s, size_t len, size_t max) {
    if (len <= max)
        return len;
    size_t n = max;
    /* s[n] is the first byte left out: step back while it continues a
     * character that started before it. */
    for (unsigned back = 0; n > 0 && back < 3 && ((unsigned char)s[n] & 0xC0) == 0x80; back++)
        n--;
    if (((unsigned char)s[n] & 0xC0) == 0x80)
        return max; /* not UTF-8 there anyway: nothing to keep whole */
    return n;
}

size_t utf8_trim_partial(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t bad;
    /* The last lead byte within 3 bytes of the end, if only continuation
     * bytes follow it. */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = p[len - back];
        if ((c & 0xC0) == 0x80)
            continue;
        if (c < 0x80)
            return len;
        /* A prefix of a character is an ill-formed subpart as long as all
         * of it: then the character was cut short. */
        if (c >= 0xC2 && c <= 0xF4 && decode(p + len - back, back, &bad) == 0 && bad == back)
            return len - back;
        return len;
    }
    return len;
}

size_t utf8_sanitize_into(char *dst, size_t size, const char *s, size_t len) {
    if (size == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t in = 0, out = 0, room = size - 1, bad = 1;
    while (in < len) {
        /* A run of whole characters (no NUL) that fits, copied at once: a
         * byte at a time, this was the largest part of the daemon's time
         * for a chatty task's lines. */
        size_t start = in, fits = room - out;
        bool full = false;
        while (in < len) {
            size_t n = 1;
            if (p[in] == 0 || (p[in] >= 0x80 && !(n = decode(p + in, len - in, &bad)))) {
                if (p[in] == 0)
                    bad = 1;
                break;
            }
            if (in - start + n > fits) {
                full = true;
                break;
            }
            in += n;
        }
        memcpy(dst + out, s + start, in - start);
        out += in - start;
        if (full || in >= len)
            break;
        /* A NUL or an ill-formed subpart: one replacement character. */
        if (3 > room - out)
            break;
        memcpy(dst + out, UTF8_REPLACEMENT, 3);
        out += 3;
        in += bad;
    }
    dst[out] = '\0';
    return out;
}

char *utf8_sanitize(const char *s, size_t len, size_t max, size_t *ret_len) {
    /* Each input byte yields at most 3 output bytes. */
    size_t cap = len > (SIZE_MAX - 1) / 3 ? SIZE_MAX - 1 : 3 * len;
    if (cap > max)
        cap = max;
    /* Most text is valid already: then the copy is only as long as needed.
     * Text longer than cap is cut anyway, so only what can fit is looked at:
     * the cost is O(min(len, max)), whatever len is. */
    bool valid = len <= cap && utf8_valid_text(s, len);
    if (valid)
        cap = len;
    char *d = alloc_malloc(cap + 1);
    if (!d)
        return NULL;
    size_t n = len;
    if (valid) {
        memcpy(d, s, len);
        d[len] = '\0';
    } else
        n = utf8_sanitize_into(d, cap + 1, s, len);
    if (ret_len)
        *ret_len = n;
    return d;
}

/*
 * Length-prefixed framing: header encoding and the incremental reader.
 * See frame.h. The buffer grows to hold one whole frame at most (plus
 * whatever arrived behind it in the same read) and is compacted in place.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t len) {
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

uint32_t frame_get_header(const uint8_t in[FRAME_HEADER_SIZE]) {
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | (uint32_t)in[3];
}

void frame_reader_init(frame_reader *r, uint32_t max_frame) {
    memset(r, 0, sizeof(*r));
    r->max_frame = max_frame;
}

void frame_reader_done(frame_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
}

size_t frame_reader_pending(const frame_reader *r) {
    return r->end - r->start;
}

uint8_t *frame_reader_space(frame_reader *r, size_t want, size_t *ret_len) {
    if (r->start == r->end)
        r->start = r->end = 0;
    if (r->cap - r->end >= want) {
        *ret_len = r->cap - r->end;
        return r->buf + r->end;
    }
    /* Move the unconsumed tail to the front before growing. */
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
        if (r->cap - r->end >= want) {
            *ret_len = r->cap - r->end;
            return r->buf + r->end;
        }
    }
    size_t ncap = r->cap ? r->cap : 4096;
    while (ncap - r->end < want)
        ncap *= 2;
    uint8_t *nbuf = alloc_realloc(r->buf, ncap);
    if (!nbuf)
        return NULL;
    r->buf = nbuf;
    r->cap = ncap;
    *ret_len = r->cap - r->end;
    return r->buf + r->end;
}

void frame_reader_commit(frame_reader *r, size_t n) {
    r->end += n;
}

int frame_reader_feed(frame_reader *r, const void *data, size_t len) {
    size_t avail;
    if (len == 0)
        return 0;
    uint8_t *p = frame_reader_space(r, len, &avail);
    if (!p)
        return -ENOMEM;
    memcpy(p, data, len);
    frame_reader_commit(r, len);
    return 0;
}

bool frame_reader_ready(const frame_reader *r) {
    size_t have = r->end - r->start;
    if (have < FRAME_HEADER_SIZE)
        return false;
    uint32_t len = frame_get_header(r->buf + r->start);
    return len > r->max_frame || have - FRAME_HEADER_SIZE >= len;
}

int frame_reader_next(frame_reader *r, const uint8_t **ret_payload, uint32_t *ret_len) {
    size_t have = r->end - r->start;
    if (have < FRAME_HEADER_SIZE)
        return 0;
    uint32_t len = frame_get_header(r->buf + r->start);
    if (len > r->max_frame)
        return -EMSGSIZE;
    if (have - FRAME_HEADER_SIZE < len)
        return 0;
    *ret_payload = r->buf + r->start + FRAME_HEADER_SIZE;
    *ret_len = len;
    r->start += FRAME_HEADER_SIZE + len;
    return 1;
}

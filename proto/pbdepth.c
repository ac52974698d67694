/*
 * Iterative nesting-depth check of encoded protobuf (pbdepth.h). Only the
 * tags, varints and lengths are read; values are skipped (strings are
 * looked into for a NUL when the caller asks).
 */
#include "pbdepth.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -EBADMSG;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -EBADMSG;
}

int pbdepth_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                  unsigned max_depth) {
    return pbdepth_check_count(desc, data, len, max_depth, NULL, 0);
}

int pbdepth_check_count(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        unsigned max_depth, const ProtobufCMessageDescriptor *counted,
                        size_t max_count) {
    return pbdepth_check_strings(desc, data, len, max_depth, counted, max_count, NULL, NULL);
}

int pbdepth_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                          unsigned max_depth, const ProtobufCMessageDescriptor *counted,
                          size_t max_count, const ProtobufCMessageDescriptor **ret_desc,
                          const ProtobufCFieldDescriptor **ret_field) {
    /* Strings are looked into only for a caller that wants to know. */
    bool strings = ret_desc || ret_field;
    size_t count = 0;
    const ProtobufCMessageDescriptor *descs[PBDEPTH_MAX + 1];
    size_t ends[PBDEPTH_MAX + 1];
    unsigned depth = 0;
    size_t pos = 0;

    if (max_depth > PBDEPTH_MAX)
        max_depth = PBDEPTH_MAX;
    descs[0] = desc;
    ends[0] = len;
    for (;;) {
        while (pos == ends[depth]) {
            if (depth == 0)
                return 0;
            depth--;
        }
        uint64_t tag, n;
        if (read_varint(data, ends[depth], &pos, &tag) < 0)
            return -EBADMSG;
        switch (tag & 7) {
        case 0: /* varint */
            if (read_varint(data, ends[depth], &pos, &n) < 0)
                return -EBADMSG;
            break;
        case 1: /* 64-bit */
            if (ends[depth] - pos < 8)
                return -EBADMSG;
            pos += 8;
            break;
        case 5: /* 32-bit */
            if (ends[depth] - pos < 4)
                return -EBADMSG;
            pos += 4;
            break;
        case 2: { /* length-delimited: a nested message, or bytes to skip */
            if (read_varint(data, ends[depth], &pos, &n) < 0 || n > ends[depth] - pos)
                return -EBADMSG;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(descs[depth], (unsigned)(tag >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth + 1 > max_depth)
                    return -ELOOP;
                if (counted && f->descriptor == counted && ++count > max_count)
                    return -E2BIG;
                descs[depth + 1] = f->descriptor;
                ends[depth + 1] = pos + (size_t)n;
                depth++;
            } else if (strings && f && f->type == PROTOBUF_C_TYPE_STRING &&
                       memchr(data + pos, 0, (size_t)n)) {
                if (ret_desc)
                    *ret_desc = descs[depth];
                if (ret_field)
                    *ret_field = f;
                return -EILSEQ;
            } else
                pos += (size_t)n;
            break;
        }
        default: /* groups (3, 4) and invalid wire types */
            return -EBADMSG;
        }
    }
}

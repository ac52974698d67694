/*
 * Request decoding (wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <stdio.h>

#include "alloc.h"
#include "limits.h"
#include "pbdepth.h"

int wire_decode(const uint8_t *payload, size_t len, Aiod__ClientMessage **ret, char *why,
                size_t why_len) {
    int r = pbdepth_check(&aiod__client_message__descriptor, payload, len, LIMIT_MESSAGE_DEPTH);
    if (r == -ELOOP) {
        snprintf(why, why_len, "message nests deeper than %u levels", LIMIT_MESSAGE_DEPTH);
        return -EBADMSG;
    }
    if (r < 0) {
        snprintf(why, why_len, "not a valid protobuf ClientMessage");
        return -EBADMSG;
    }
    Aiod__ClientMessage *m = aiod__client_message__unpack(&alloc_protobuf, len, payload);
    if (!m) {
        /* protobuf-c does not say why: wrong wire types for known fields,
         * truncated data, or out of memory. */
        snprintf(why, why_len, "not a valid ClientMessage");
        return -EBADMSG;
    }
    *ret = m;
    return 0;
}

void wire_free(Aiod__ClientMessage *m) {
    if (m)
        aiod__client_message__free_unpacked(m, &alloc_protobuf);
}

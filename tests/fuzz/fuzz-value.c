/*
 * Fuzz target: values from text. The first byte picks the declared type;
 * the rest is the text (as a command-line word would bring it). Whatever
 * converts must survive the checks, JSON and a wire round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pbvalue.h"
#include "base/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 65536)
        return 0;
    uint32_t type = data[0] % (PBVALUE_TYPE_MAX + 1);
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    Aiod__Value *v = NULL;
    char why[256];
    if (value_from_text(type, text, &v, why, sizeof(why)) == 0) {
        if (pbvalue_check(v, 64, NULL) == 0) {
            free(pbvalue_to_json(v));
            size_t n = protobuf_c_message_get_packed_size(&v->base);
            uint8_t *buf = malloc(n ? n : 1);
            protobuf_c_message_pack(&v->base, buf);
            Aiod__Value *back = aiod__value__unpack(&alloc_protobuf, n, buf);
            if (!back || !pbvalue_equal(v, back))
                abort();
            pbvalue_free(back);
            free(buf);
        }
        pbvalue_free(v);
    }
    free(text);
    return 0;
}

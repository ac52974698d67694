/*
 * Fuzz target: aioctl's CALL word parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "callword.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    callword cw;
    const char *why;
    size_t pos;
    memset(&cw, 0, sizeof(cw));
    if (callword_parse(text, &cw, &why, &pos) == 0) {
        if (cw.task_id == 0 && cw.n_words == 0)
            abort(); /* success must produce a function or an id */
        for (size_t i = 0; i < cw.n_words; i++)
            if (!cw.words[i])
                abort();
        callword_done(&cw);
    }
    free(text);
    return 0;
}

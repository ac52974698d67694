/*
 * version: the library's own version at run time, from aioc.h's macros as
 * this library was compiled (the only place the number is written).
 */
#include "aioc.h"

AIOC_EXPORT const char *aioc_version(void) {
    return AIOC_VERSION_STRING;
}

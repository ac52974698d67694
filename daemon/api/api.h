/*
 * The struct aiod_api table that plugins call (api.c). Every entry checks
 * its arguments: a plugin's mistake returns -EINVAL, never aborts the daemon.
 */
#ifndef AIOD_API_H
#define AIOD_API_H

#include <aiod/plugin.h>

const struct aiod_api *api_table(void);

#endif

/* A shared object without the aiod_plugin descriptor. */
#include <aiod/plugin.h>

AIOD_PLUGIN_EXPORT int not_a_plugin = 1;

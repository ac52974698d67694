/*
 * reload: aioc_reload, the Reload request (re-read the daemon's settings and
 * plugin directories, as SIGHUP does).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "client.h"
#include "macro.h"
#include "wire.h"

AIOC_EXPORT int aioc_reload(aioc_client *c, uint32_t *ret_counts, size_t n) {
    CLIENT_SCOPE(c);
    Aiod__Reload x = AIOD__RELOAD__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || (n > 0 && !ret_counts))
        return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_RELOAD;
    m.reload = &x;
    r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_RELOADED, &reply);
    if (r < 0) {
        wire_free(reply);
        return r;
    }
    const Aiod__Reloaded *rd = reply->reloaded;
    const uint32_t counts[AIOC_RELOAD_N] = {
        [AIOC_RELOAD_ADDED] = rd->added,     [AIOC_RELOAD_REPLACED] = rd->replaced,
        [AIOC_RELOAD_REMOVED] = rd->removed, [AIOC_RELOAD_UNCHANGED] = rd->unchanged,
        [AIOC_RELOAD_FAILED] = rd->failed,   [AIOC_RELOAD_PLUGINS] = rd->plugins,
        [AIOC_RELOAD_RETIRED] = rd->retired,
    };
    for (size_t i = 0; i < n; i++)
        ret_counts[i] = i < AIOC_RELOAD_N ? counts[i] : 0;
    wire_free(reply);
    return 0;
}

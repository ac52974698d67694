/*
 * cmd_reload: `aioctl reload`, the daemon re-reads its settings and plugin
 * directories (as SIGHUP does) and replies once that is done, which is what
 * systemd's ExecReload needs.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

static const char reload_help[] =
    "Usage: aioctl reload\n"
    "\n"
    "Makes aiod re-read its settings file and plugin directories, as SIGHUP\n"
    "does, and waits until it is done. New plugins load; a changed plugin file\n"
    "loads as a new generation and tasks already running finish on the old\n"
    "code; plugins whose file is gone are retired. A settings file with an\n"
    "error is refused (exit 2, the file and line on stderr) and nothing\n"
    "changes. Only root and the daemon's own user may reload it.\n";

int cmd_reload(cli *c, int argc, char **argv) {
    int code = cli_no_args(c, argc, argv, reload_help);
    if (code >= 0)
        return code;
    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    uint32_t n[AIOC_RELOAD_N];
    int r = aioc_reload(c->client, n, AIOC_RELOAD_N);
    if (r < 0)
        return cli_fail(c, "reload", r);
    if (c->json)
        printf("{\"reloaded\":{\"added\":%" PRIu32 ",\"replaced\":%" PRIu32 ",\"removed\":%" PRIu32
               ",\"unchanged\":%" PRIu32 ",\"failed\":%" PRIu32 ",\"plugins\":%" PRIu32
               ",\"retired\":%" PRIu32 "}}\n",
               n[AIOC_RELOAD_ADDED], n[AIOC_RELOAD_REPLACED], n[AIOC_RELOAD_REMOVED],
               n[AIOC_RELOAD_UNCHANGED], n[AIOC_RELOAD_FAILED], n[AIOC_RELOAD_PLUGINS],
               n[AIOC_RELOAD_RETIRED]);
    else
        printf("reloaded: %" PRIu32 " added, %" PRIu32 " replaced, %" PRIu32 " removed, %" PRIu32
               " unchanged, %" PRIu32 " refused; %" PRIu32 " plugins loaded\n",
               n[AIOC_RELOAD_ADDED], n[AIOC_RELOAD_REPLACED], n[AIOC_RELOAD_REMOVED],
               n[AIOC_RELOAD_UNCHANGED], n[AIOC_RELOAD_FAILED], n[AIOC_RELOAD_PLUGINS]);
    return EXIT_OK;
}

/*
 * cmd_plugins: `aioctl plugins`, the functions that can be called, one line
 * per signature followed by the doc line, indented; with --names only their
 * names, for scripts and shell completion.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"
#include "print.h"

static const char plugins_help[] =
    "Usage: aioctl plugins [--names]\n"
    "\n"
    "Lists the functions the daemon's plugins offer, as\n"
    "  plugin.function(param: type, param: type = default) -> type\n"
    "      one-line doc\n"
    "\n"
    "  -n, --names  only the names, one per line (also with --json)\n"
    "  -h, --help   show this help\n";

static void print_json(aioc_function_info *f) {
    _cleanup_free_ char *name = print_json_string(aioc_function_name(f));
    _cleanup_free_ char *doc = print_json_string(aioc_function_doc(f));
    _cleanup_free_ char *sig = print_json_string(aioc_function_signature(f));

    printf("{\"function\":%s,\"signature\":%s,\"doc\":%s,\"params\":[", name ? name : "null",
           sig ? sig : "null", doc ? doc : "null");
    for (size_t i = 0; i < aioc_function_n_params(f); i++) {
        _cleanup_free_ char *p = print_json_string(aioc_function_param_name(f, i));
        const aioc_value *d = aioc_function_param_default(f, i);
        printf("%s{\"name\":%s,\"type\":\"%s\"", i ? "," : "", p ? p : "null",
               aioc_type_name(aioc_function_param_type(f, i)));
        if (d) {
            _cleanup_free_ char *dj = print_value_json(d);
            printf(",\"default\":%s", dj ? dj : "null");
        }
        printf("}");
    }
    printf("],\"result\":\"%s\"}\n", aioc_type_name(aioc_function_result_type(f)));
}

int cmd_plugins(cli *c, int argc, char **argv) {
    static const struct option options[] = {
        {"names", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {},
    };
    bool names = false;
    int opt, code = -1;

    while ((opt = cli_getopt(c, argc, argv, "nh", options, &code)) > 0) {
        if (opt == 'h')
            return cli_help(plugins_help);
        names = true;
    }
    if (opt == 0)
        return code;
    if (optind < argc)
        return cli_usage(argv[0], "unexpected argument '%s'", argv[optind]);
    code = cli_connect(c);
    if (code != EXIT_OK)
        return code;
    aioc_function_info **fs;
    size_t n;
    int r = aioc_plugins(c->client, &fs, &n);
    if (r < 0)
        return cli_fail(c, "plugins", r);
    for (size_t i = 0; i < n; i++) {
        if (names) {
            print_line(stdout, "", aioc_function_name(fs[i]), "\n");
            continue;
        }
        if (c->json) {
            print_json(fs[i]);
            continue;
        }
        const char *sig = aioc_function_signature(fs[i]);
        const char *doc = aioc_function_doc(fs[i]);
        print_line(stdout, "", aioc_function_name(fs[i]), "");
        print_line(stdout, "", sig ? sig : "(...)", "\n");
        if (doc && *doc)
            print_line(stdout, "    ", doc, "\n");
    }
    aioc_function_array_free(fs, n);
    return EXIT_OK;
}

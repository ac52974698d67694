#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR and checks what a user gets:
# binaries, the client library (shared with its SONAME, and static) with its
# header and pkg-config file, the plugin header with aiod-plugin.pc, the
# bundled plugins in LIBDIR/aiod/plugins, and that a client program and a
# plugin build from the installed files alone.
# Usage: test-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

DESTDIR="$dest" cmake --install "$build" >/dev/null
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
root="$dest$prefix"
# Build the probes the way the tree was built (a sanitized library needs a
# sanitized program).
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
san=$(sed -n 's/^AIOD_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
ccflags=()
[ -n "$san" ] && ccflags=("-fsanitize=$san")
passed=0

check() { [ -e "$1" ] || fail "$1 not installed"; passed=$((passed + 1)); }
check "$root/bin/aiod"
check "$root/bin/aioctl"
check "$root/include/aioc.h"
check "$root/include/aiod/plugin.h"
check "$root/$libdir/libaioclient.a"
check "$root/$libdir/pkgconfig/libaioclient.pc"
check "$root/$libdir/pkgconfig/aiod-plugin.pc"
check "$root/$libdir/aiod/plugins/demo.so"
so=$(readlink -f "$root/$libdir/libaioclient.so")
[ -n "$so" ] || fail "libaioclient.so not installed"
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libaioclient.so.1" ] || fail "SONAME is '$soname', expected libaioclient.so.1"
passed=$((passed + 1))

export PKG_CONFIG_PATH="$root/$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
work=$(mktemp -d -p "$dest")
cat > "$work/client.c" <<'C'
#include <aioc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    aioc_value *v = aioc_value_string("installed");
    char *json = aioc_value_to_json(v);
    puts(json);
    free(json);
    aioc_value_free(v);
    return 0;
}
C
# shellcheck disable=SC2046
"$cc" "${ccflags[@]}" -o "$work/client" "$work/client.c" $(pkg-config --cflags --libs libaioclient) ||
    fail "a client does not build with pkg-config libaioclient"
out=$(LD_LIBRARY_PATH="$root/$libdir" "$work/client")
[ "$out" = '"installed"' ] || fail "client printed '$out'"
passed=$((passed + 1))

cat > "$work/plug.c" <<'C'
#include <aiod/plugin.h>
static int f(aiod_task *t, const struct aiod_api *api, const aiod_value *const *a,
             aiod_value **r) {
    (void)t, (void)a;
    *r = api->value_int(1);
    return 0;
}
static const struct aiod_function fns[] = {
    {sizeof(struct aiod_function), 0, "one", "One.", 0, 0, AIOD_TYPE_INT, f, 0, 0}};
AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD, .name = "inst", .version = "1", .functions = fns,
    .function_size = sizeof(struct aiod_function), .n_functions = 1};
C
# shellcheck disable=SC2046
"$cc" -shared -fPIC -Wall -Werror -o "$work/inst.so" "$work/plug.c" $(pkg-config --cflags aiod-plugin) ||
    fail "a plugin does not build with pkg-config aiod-plugin"
[ -n "$(pkg-config --variable=plugindir aiod-plugin)" ] || fail "aiod-plugin.pc has no plugindir"
passed=$((passed + 1))

echo "$passed passed, 0 failed"

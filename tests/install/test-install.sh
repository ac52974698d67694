#!/usr/bin/env bash
# Installs the build and checks what a user and a packager get.
#
# 1. DESTDIR install (as whoever runs the test): binaries, the client library
#    (shared with its SONAME, and static) with its header and pkg-config file,
#    the plugin header with aiod-plugin.pc, the bundled plugins in
#    LIBDIR/aiod/plugins, the settings file in SYSCONFDIR/aiod, and a client
#    program and a plugin built from the installed files alone.
# 2. Prefix install without privileges: `cmake --install BUILD --prefix P`
#    run as an unprivileged user into a directory P that user owns. It must
#    succeed, and every file it writes must be under P: the files under P are
#    exactly those install_manifest.txt lists, and each path the install
#    reports is under P. Then a client and a plugin are built against P with
#    pkg-config and with CMake's find_package(aiod) (aiod::aioclient), and the
#    client runs (LD_LIBRARY_PATH into P).
# 3. Relocation: P is moved elsewhere and the client is built again with
#    pkg-config (the .pc files find their prefix from ${pcfiledir}) and with
#    find_package(aiod), and runs.
#
# Run as root (as in CI), parts 2 and 3 run as nobody (uid and gid 65534)
# through setpriv. Everything under BUILD is world-readable, but cmake
# --install also writes BUILD/install_manifest.txt, and BUILD belongs to
# root: the test creates that one file beforehand, owned by nobody, and
# gives it back to root afterwards; nothing else in BUILD is written. Run as
# another user, the test runs parts 2 and 3 as that user.
#
# A sanitizer build (AIOD_SANITIZE) gets the same -fsanitize flags on every
# probe, since a sanitized library needs a sanitized program.
# Usage: test-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
dest=$(mktemp -d)
scratch=$(mktemp -d)
top=$(mktemp -d)
manifest="$build/install_manifest.txt"
cleanup() {
    rm -rf "$dest" "$scratch" "$top"
    if [ "$(id -u)" = 0 ] && [ -e "$manifest" ]; then chown 0:0 "$manifest"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
DESTDIR="$dest" cmake --install "$build" >/dev/null
prefix=$(cache CMAKE_INSTALL_PREFIX)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
root="$dest$prefix"
# Build the probes the way the tree was built (a sanitized library needs a
# sanitized program).
cc=$(cache CMAKE_C_COMPILER)
san=$(cache AIOD_SANITIZE)
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
check "$root/$libdir/cmake/aiod/aiodConfig.cmake"
check "$root/share/doc/aiod/aiod.conf.example"
if [ "$prefix" = /usr ]; then check "$dest/etc/aiod/aiod.conf"; else check "$root/etc/aiod/aiod.conf"; fi
so=$(readlink -f "$root/$libdir/libaioclient.so")
[ -n "$so" ] || fail "libaioclient.so not installed"
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libaioclient.so.1" ] || fail "SONAME is '$soname', expected libaioclient.so.1"
passed=$((passed + 1))

# The .pc files are relocatable, so no PKG_CONFIG_SYSROOT_DIR is needed.
export PKG_CONFIG_PATH="$root/$libdir/pkgconfig"
work=$(mktemp -d -p "$dest")
cat > "$scratch/client.c" <<'C'
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
cat > "$scratch/plug.c" <<'C'
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
cat > "$scratch/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.22)
project(probe C)
find_package(aiod 1.3 REQUIRED)
add_executable(client client.c)
target_link_libraries(client PRIVATE aiod::aioclient)
add_library(inst MODULE plug.c)
target_include_directories(inst PRIVATE ${aiod_INCLUDE_DIR})
set_target_properties(inst PROPERTIES PREFIX "")
CM
chmod -R a+rX "$scratch"

# shellcheck disable=SC2046
"$cc" "${ccflags[@]}" -o "$work/client" "$scratch/client.c" $(pkg-config --cflags --libs libaioclient) ||
    fail "a client does not build with pkg-config libaioclient"
out=$(LD_LIBRARY_PATH="$root/$libdir" "$work/client")
[ "$out" = '"installed"' ] || fail "client printed '$out'"
passed=$((passed + 1))

# The static library: a program linked with it may define names of its
# own that the library's insides also use (conn_open, alloc_malloc, the
# protocol's aiod__* code). Only aioc_* may be global in the archive.
leaked=$(nm -g --defined-only "$root/$libdir/libaioclient.a" | awk 'NF == 3 {print $3}' |
    grep -v '^aioc_' | head -5 || true)
[ -z "$leaked" ] || fail "libaioclient.a exports names that are not aioc_*: $leaked"
cat > "$scratch/static.c" <<'C'
#include <aioc.h>
#include <stdio.h>
#include <stdlib.h>
/* Names libaioclient uses inside; a program's own must not clash. */
int conn_open(void) { return 1; }
void *alloc_malloc(size_t n) { return malloc(n); }
int engine_send(void) { return 2; }
int main(void) {
    aioc_value *v = aioc_value_string("static");
    char *json = aioc_value_to_json(v);
    printf("%s %d\n", json, conn_open() + engine_send());
    free(json);
    aioc_value_free(v);
    return 0;
}
C
# shellcheck disable=SC2046
"$cc" "${ccflags[@]}" -o "$work/static" "$scratch/static.c" \
    $(pkg-config --static --cflags libaioclient) "$root/$libdir/libaioclient.a" \
    $(pkg-config --static --libs-only-l libaioclient | sed 's/-laioclient//') ||
    fail "a client with names of its own does not link with libaioclient.a"
out=$("$work/static")
[ "$out" = '"static" 3' ] || fail "static client printed '$out'"
passed=$((passed + 1))

# shellcheck disable=SC2046
"$cc" -shared -fPIC -Wall -Werror -o "$work/inst.so" "$scratch/plug.c" $(pkg-config --cflags aiod-plugin) ||
    fail "a plugin does not build with pkg-config aiod-plugin"
[ -n "$(pkg-config --variable=plugindir aiod-plugin)" ] || fail "aiod-plugin.pc has no plugindir"
# The ABI version comes from aiod/plugin.h, the one place it is written.
abi_h=$(sed -n 's/^#define AIOD_ABI_MAJOR \([0-9]*\)$/\1/p;s/^#define AIOD_ABI_MINOR \([0-9]*\)$/\1/p' \
    "$(pkg-config --variable=includedir aiod-plugin)/aiod/plugin.h" | paste -sd.)
[ "$(pkg-config --variable=abi_version aiod-plugin)" = "$abi_h" ] ||
    fail "aiod-plugin.pc says ABI $(pkg-config --variable=abi_version aiod-plugin), aiod/plugin.h $abi_h"
passed=$((passed + 1))
unset PKG_CONFIG_PATH

# --- 2. an unprivileged install into a prefix
as_user=()
if [ "$(id -u)" = 0 ]; then
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    # The one file cmake --install writes in the build directory.
    : > "$manifest"
    chown 65534:65534 "$manifest"
fi
chmod 0755 "$top"
[ "$(id -u)" = 0 ] && chown 65534:65534 "$top"
# The user's own HOME, so that nothing is written to root's.
run() { env HOME="$top" "${as_user[@]}" "$@"; }
p="$top/prefix"
run mkdir "$p"
log=$(run cmake --install "$build" --prefix "$p" 2>&1) ||
    fail "an unprivileged cmake --install --prefix failed: $log"
passed=$((passed + 1))

# Everything the install wrote is under the prefix, and is what the
# manifest lists.
outside=$(printf '%s\n' "$log" | sed -n 's/^-- \(Installing\|Up-to-date\): //p' | grep -v "^$p/" || true)
[ -z "$outside" ] || fail "installed outside the prefix: $outside"
outside=$(grep -v "^$p/" "$manifest" || true)
[ -z "$outside" ] || fail "install_manifest.txt lists files outside the prefix: $outside"
diff <(sort "$manifest") <(find "$p" ! -type d | sort) >/dev/null ||
    fail "the prefix and install_manifest.txt differ: $(diff <(sort "$manifest") <(find "$p" ! -type d | sort))"
[ -e "$p/$libdir/aiod/plugins/demo.so" ] || fail "plugins not under the prefix"
passed=$((passed + 1))

# probe_build PREFIX TAG: a client with pkg-config, a plugin with pkg-config,
# and a client and plugin with find_package(aiod); each client runs.
probe_build() {
    local pre=$1 tag=$2 w="$top/work-$2" out
    run mkdir -p "$w"
    # The user's shell expands pkg-config's output (single quotes on purpose).
    # shellcheck disable=SC2016
    run env PKG_CONFIG_PATH="$pre/$libdir/pkgconfig" sh -c \
        '"$0" "$@" $(pkg-config --cflags --libs libaioclient)' \
        "$cc" "${ccflags[@]}" -o "$w/client" "$scratch/client.c" ||
        fail "$tag: a client does not build with pkg-config libaioclient"
    out=$(run env LD_LIBRARY_PATH="$pre/$libdir" "$w/client") || fail "$tag: the client failed"
    [ "$out" = '"installed"' ] || fail "$tag: client printed '$out'"
    passed=$((passed + 1))
    # shellcheck disable=SC2016
    run env PKG_CONFIG_PATH="$pre/$libdir/pkgconfig" sh -c \
        '"$0" "$@" $(pkg-config --cflags aiod-plugin)' \
        "$cc" -shared -fPIC -Wall -Werror -o "$w/inst.so" "$scratch/plug.c" ||
        fail "$tag: a plugin does not build with pkg-config aiod-plugin"
    passed=$((passed + 1))
    local flags=""
    [ -n "$san" ] && flags="-fsanitize=$san"
    if ! run cmake -S "$scratch" -B "$w/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" \
        -DCMAKE_PREFIX_PATH="$pre" >"$w/cmake.log" 2>&1 ||
        ! run cmake --build "$w/cmake" >>"$w/cmake.log" 2>&1; then
        fail "$tag: find_package(aiod) build failed: $(cat "$w/cmake.log")"
    fi
    out=$(run env LD_LIBRARY_PATH="$pre/$libdir" "$w/cmake/client") ||
        fail "$tag: the find_package client failed"
    [ "$out" = '"installed"' ] || fail "$tag: find_package client printed '$out'"
    [ -e "$w/cmake/inst.so" ] || fail "$tag: no plugin from find_package(aiod)"
    passed=$((passed + 1))
}
probe_build "$p" prefix

# --- 3. the same prefix moved elsewhere
run mkdir "$top/moved"
run mv "$p" "$top/moved/prefix"
probe_build "$top/moved/prefix" relocated
echo "$passed passed, 0 failed"

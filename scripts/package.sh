#!/usr/bin/env bash
# Builds the Debian packages aiod, libaioclient1 and libaioclient-dev with
# CPack's DEB generator and prints their paths. Usage:
#   scripts/package.sh [OUT_DIR]      (default: build-deb/debs)
#
# The daemon's default plugin directory and settings file are compiled in,
# so the packages come from their own build directory (build-deb, or
# $AIOD_DEB_BUILD_DIR) configured for the prefix /usr, never from a build
# configured for another prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-deb/debs}
build=${AIOD_DEB_BUILD_DIR:-build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Debian's hardening flags (stack protector, format checks, relro,
# bindnow, and CPPFLAGS' _FORTIFY_SOURCE), as a Debian package build gets
# them; no -Werror, so that a new compiler's new warning does not stop a
# package build.
cflags="" ldflags=""
if command -v dpkg-buildflags >/dev/null; then
    cflags="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)"
    cflags="$cflags $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)"
    ldflags="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)"
fi
cmake -S . -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAIOD_TESTS=OFF -DAIOD_SANITIZE= -DAIOD_FUZZ=OFF -DAIOD_COVERAGE=OFF -DAIOD_WERROR=OFF \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
    -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" -DCMAKE_MODULE_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build "$build" -j"$(nproc)"
rm -f "$out"/aiod_*.deb "$out"/libaioclient1_*.deb "$out"/libaioclient-dev_*.deb
(cd "$build" && cpack -G DEB -B "$out" >/dev/null)
rm -rf "$out/_CPack_Packages"
find "$out" -maxdepth 1 -name '*.deb' | sort

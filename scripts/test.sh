#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the normal build,
# then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the fuzz targets for a bounded time, and the format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

echo "== format check"
git ls-files '*.c' '*.h' | grep -v '^tests/plugins/abi-1.0/' |
    xargs clang-format --dry-run -Werror

echo "== build"
scripts/build.sh build
echo "== tests"
(cd build && ctest -j2 --output-on-failure)

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
CC=clang scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DAIOD_SANITIZE=address,undefined -DAIOD_FUZZ=ON
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j2 -LE fuzz-run --output-on-failure)

echo "== fuzzing, bounded"
(cd build-asan && ctest -L fuzz-run --output-on-failure)

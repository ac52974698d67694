#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the normal build,
# the Debian packages under a real systemd (tests/deploy), then the whole
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the fuzz targets for a bounded time, the suite under ThreadSanitizer, and the
# format check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

echo "== format check"
git ls-files '*.c' '*.h' | grep -v '^tests/plugins/abi-1.0/' |
    xargs clang-format --dry-run -Werror

echo "== layers: the #include graph points one way (docs/architecture.md)"
scripts/check-layers.py

echo "== build"
scripts/build.sh build -DAIOD_TESTS=ON
echo "== man pages: no groff warning at 80 columns"
scripts/check-man.sh build
echo "== tests"
(cd build && ctest -j2 -LE hostile --output-on-failure)

# The deployment suite: the Debian packages installed with apt-get in a
# Debian 12 container booted with systemd as PID 1, checked as real users.
# It needs root (systemd-nspawn); the container tree is cached under
# /var/tmp/aiod-lab.
echo "== Debian packages"
scripts/package.sh build-deb/debs
echo "== deployment under a real systemd (tests/deploy)"
if [ "$(id -u)" -eq 0 ]; then
    tests/deploy/run.sh build-deb/debs
else
    sudo tests/deploy/run.sh build-deb/debs
fi

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
CC=clang scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DAIOD_SANITIZE=address,undefined -DAIOD_FUZZ=ON
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j2 -LE 'fuzz-run|hostile' --output-on-failure)
# The hostile-client battery under ASan+UBSan, alone (it loads both CPUs):
# every assertion but the two latency targets, which a busy machine or the
# sanitizer would decide; `ctest -L hostile` in the normal build on a quiet
# machine asserts those too (tests/integration/README.md).
echo "== the hostile-client battery under ASan + UBSan"
(cd build-asan && AIOD_HOSTILE_LATENCY=report ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -L hostile --output-on-failure)

echo "== fuzzing, bounded"
(cd build-asan && ctest -L fuzz-run --output-on-failure)
# The full-frame run's figures (tests/fuzz/run-large.cmake): its max_len and
# the largest input it ran.
grep -h "^max_len:" build-asan/Testing/Temporary/LastTest.log

echo "== build with ThreadSanitizer"
CC=clang scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=Debug -DAIOD_SANITIZE=thread

# clang 14's TSan puts its shadow memory at fixed addresses that leave room
# for at most 28 bits of mmap randomisation. Kernels set to more (some set
# vm.mmap_rnd_bits=32) make TSan programs die at start with "FATAL:
# ThreadSanitizer: unexpected memory mapping". Only then: lower it to 28 for
# this section and put it back afterwards, or, where it cannot be changed,
# run the section's processes with address randomisation off.
tsan_wrap=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
rnd_restore() { :; }
if [ "$rnd_bits" -gt 28 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    echo "vm.mmap_rnd_bits is $rnd_bits; clang 14's TSan needs at most 28"
    # Written through /proc: a minimal Debian has no sysctl (procps).
    if echo 28 | $sudo tee /proc/sys/vm/mmap_rnd_bits >/dev/null 2>&1; then
        echo "lowered vm.mmap_rnd_bits to 28 for the TSan tests"
        rnd_restore() { echo "$rnd_bits" | $sudo tee /proc/sys/vm/mmap_rnd_bits >/dev/null; }
        trap rnd_restore EXIT
    elif setarch "$(uname -m)" -R true; then
        echo "cannot change vm.mmap_rnd_bits; running the TSan tests without address randomisation"
        tsan_wrap=(setarch "$(uname -m)" -R)
    else
        echo "cannot lower vm.mmap_rnd_bits nor turn address randomisation off: no TSan run" >&2
        exit 1
    fi
fi

# Every process writes its TSan reports to tsan-reports/tsan.PID instead of
# stderr, so that a report is seen even from a process whose exit status no
# test checks (a daemon killed at the end of a test, a client expected to
# fail); any such file fails this section. Clients run as other users by the
# policy test write there too, hence the sticky world-writable directory.
# (systemd-socket-activate passes no environment on: the daemon it starts in
# systemd.activation reports on stderr and exits 66, which that test fails.)
# Not run here: fuzz-run and load.valgrind do not exist in this build (no
# AIOD_FUZZ; valgrind does not run sanitized binaries). The fuzz corpora
# replays (label fuzz) and the benchmark's smoke run, with its client
# threads, do run. integration.hostile runs alone, in the ASan section.
echo "== tests under TSan"
tsan_reports=$PWD/build-tsan/tsan-reports
rm -rf "$tsan_reports"
mkdir -m 1777 "$tsan_reports"
rc=0
(cd build-tsan &&
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path=$tsan_reports/tsan \
        "${tsan_wrap[@]}" ctest -j2 -E '^integration\.hostile$' --output-on-failure) || rc=$?
rnd_restore
trap - EXIT
if compgen -G "$tsan_reports/tsan.*" >/dev/null; then
    for f in "$tsan_reports"/tsan.*; do
        echo "--- $f"
        cat "$f"
    done
    echo "ThreadSanitizer reported the above" >&2
    exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"

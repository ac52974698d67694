#!/usr/bin/env bash
# The quick start's main job: install what is missing, build, start aiod on a
# socket inside the build tree with the bundled plugins, run the four asyncio
# examples through aioctl with their timing, and stop the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
# The demo needs no test tools (protoc, cmocka's suite): the tests are off
# here; scripts/test.sh turns them on again in the same build directory.
scripts/build.sh build -DAIOD_TESTS=OFF

sock="$PWD/build/aiod.sock"
build/daemon/aiod --socket "$sock" --plugin-dir build/daemon/plugins --no-default-plugins \
    --state-dir "$PWD/build/state" 2>build/aiod.log &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT

# Wait (at most 5 s) until the daemon answers.
for _ in $(seq 100); do
    build/client/aioctl -s "$sock" plugins >/dev/null 2>&1 && break
    sleep 0.05
done

run() {
    local fn=$1 expect=$2
    echo
    echo "== aioctl run demo.$fn   (asyncio: $expect s)"
    local TIMEFORMAT="-- took %R s"
    time build/client/aioctl -s "$sock" run "demo.$fn"
}

run main_sequential 5
run main_gather 3
run main_tasks 3
run main_nowait 3

echo
echo "== aioctl gather 'demo.sleep 3 a' 'demo.sleep 2 b'"
build/client/aioctl -s "$sock" gather 'demo.sleep 3 a' 'demo.sleep 2 b'

kill -TERM $daemon
wait $daemon
trap - EXIT
echo
echo "aiod stopped cleanly (log: build/aiod.log)"

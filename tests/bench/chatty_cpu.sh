#!/bin/bash
# What a chatty job's output costs the daemon: N `aioctl run proc.shell`
# jobs each print SIZE bytes in lines of 1 KiB while their aioctl does not
# read (its stdout is a pipe nobody drains until the jobs end), so aiod
# streams every line, drops what the follower cannot take, and keeps the
# last lines. Prints the daemon's CPU seconds (user + system, from
# /proc/PID/stat) beside the CPU `cat` takes to read the same bytes from the
# same pipeline, the floor for moving them at all.
#
#   tests/bench/chatty_cpu.sh BUILD_DIR [N] [SIZE]    (default 6, 52428800)
set -euo pipefail
B=$(cd "${1:?usage: chatty_cpu.sh BUILD_DIR [N] [SIZE]}" && pwd)
N=${2:-6}
SIZE=${3:-52428800}
TMP=$(mktemp -d)
S=$TMP/aiod.sock
HZ=$(getconf CLK_TCK)
LINE=$(printf 'y%.0s' $(seq 1023))
CMD="yes $LINE | head -c $SIZE"

"$B/daemon/aiod" --socket "$S" --state-dir "$TMP/state" --plugin-dir "$B/daemon/plugins" \
    --durability none --log-level warning 2>"$TMP/aiod.log" &
AIOD=$!
cleanup() {
    kill "$AIOD" 2>/dev/null || true
    wait "$AIOD" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done

# Each aioctl writes to a FIFO that this script holds open without reading
# (so the aioctl blocks once the pipe is full) until every job has ended.
fds=()
readers=()
for i in $(seq "$N"); do
    mkfifo "$TMP/out$i"
    exec {fd}<>"$TMP/out$i"
    fds+=("$fd")
    "$B/client/aioctl" --socket "$S" run proc.shell "$CMD" >"$TMP/out$i" 2>/dev/null &
    readers+=($!)
done
# A fresh state directory: the jobs are tasks 1..N.
for id in $(seq "$N"); do
    until "$B/client/aioctl" --socket "$S" await "$id" >"$TMP/result" 2>/dev/null; do
        sleep 0.05
    done
    grep -q '"exit":0' "$TMP/result" || { echo "task $id: $(head -c 200 "$TMP/result")" >&2; exit 1; }
done
read -r utime stime < <(awk '{print $14, $15}' "/proc/$AIOD/stat")
# The readers must not inherit this script's ends, or no FIFO would close.
for i in $(seq "$N"); do
    (for fd in "${fds[@]}"; do exec {fd}<&-; done; exec cat "$TMP/out$i" >/dev/null) &
done
for fd in "${fds[@]}"; do exec {fd}<&-; done
wait "${readers[@]}" 2>/dev/null || true

python3 - "$utime" "$stime" "$HZ" "$N" "$SIZE" "$CMD" <<'PY'
import resource, subprocess, sys
ut, st, hz, n, size = (int(x) for x in sys.argv[1:6])
cmd = sys.argv[6]
# The floor: cat reading the same bytes through a pipe, its CPU alone (taken
# once cat is reaped, before the producer is).
cat = 0.0
for _ in range(n):
    prod = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["cat"], stdin=prod.stdout, stdout=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    prod.stdout.close()
    prod.wait()
    cat += (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
daemon = (ut + st) / hz
mib = n * size / 2**20
print("chatty jobs: %d x %.0f MiB in 1 KiB lines, their aioctl not reading" % (n, size / 2**20))
print("aiod CPU:  %6.2f s  (%.2f ms per MiB)" % (daemon, 1000 * daemon / mib))
print("cat CPU:   %6.2f s  (%.2f ms per MiB), the floor" % (cat, 1000 * cat / mib))
print("ratio:     %6.1fx" % (daemon / cat if cat else float("inf")))
PY

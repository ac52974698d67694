#!/usr/bin/env bash
# aiod-bench peers: runs the benchmark's workloads against aiod, the bare echo
# server (the physical limit), gearmand with a C worker, and Python asyncio,
# and prints the side-by-side table kept in docs/benchmarks.md.
#
#   tests/bench/peers.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Installs gearman-job-server, libgearman-dev and python3 with apt-get when
# missing. Everything listens on loopback or a Unix socket in a temporary
# directory; every step is bounded by `timeout`. Environment: N_LAT (round
# trips, default 100000), N_PIPE (tasks per client, default 200000),
# N_CONC (sleeping tasks / spawned tasks, default 1000000).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-}
if [[ -z $build ]]; then
  if [[ -x $root/build-bench/tests/aiod-bench ]]; then build=$root/build-bench; else build=$root/build; fi
fi
bench=$build/tests/aiod-bench
N_LAT=${N_LAT:-100000}
N_PIPE=${N_PIPE:-200000}
N_CONC=${N_CONC:-1000000}
GEARMAN_WORKERS=${GEARMAN_WORKERS:-4}

[[ -x $bench ]] || { echo "peers.sh: $bench not built (cmake --build $build --target aiod-bench)" >&2; exit 2; }

sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
missing=()
command -v gearmand >/dev/null || [[ -x /usr/sbin/gearmand ]] || missing+=(gearman-job-server)
[[ -e /usr/include/libgearman/gearman.h ]] || missing+=(libgearman-dev)
[[ -x /usr/bin/python3 ]] || missing+=(python3)
if ((${#missing[@]})); then
  echo "peers.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
gearmand=$(command -v gearmand || echo /usr/sbin/gearmand)
py=/usr/bin/python3

tmp=$(mktemp -d /tmp/aiod-peers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

log() { echo "peers.sh: $*" >&2; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$2" | head -1; }
# A cell of aiod-bench's table: row whose figure starts with $1, column $2.
cell() { awk -F'|' -v r="$1" -v c="$2" 'index($2, " " r) == 1 { gsub(/^ +| +$/, "", $c); print $c; exit }' "$3"; }

# ---- aiod and the bare echo (one aiod-bench run)
log "aiod-bench (aiod and the bare echo)"
timeout 1800 "$bench" --latency-n "$N_LAT" --pipeline-n "$N_PIPE" --sleepers "$N_CONC" \
  --spawn "$N_CONC" --only latency,throughput,spawn,sleep >"$tmp/aiod.txt" || true
cat "$tmp/aiod.txt" >&2

# ---- gearmand with a C worker
log "gearmand + C worker"
cc -O2 -o "$tmp/gearman_worker" "$here/gearman_worker.c" -lgearman
cc -O2 -o "$tmp/gearman_client" "$here/gearman_client.c" -lgearman
port=$(( 20000 + RANDOM % 20000 ))
"$gearmand" --listen=127.0.0.1 --port="$port" --log-file=none --threads=2 \
  --pid-file="$tmp/gearmand.pid" >"$tmp/gearmand.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
for _ in $(seq "$GEARMAN_WORKERS"); do "$tmp/gearman_worker" "$port" & pids+=($!); done
sleep 0.5
g_lat=$(timeout 300 "$tmp/gearman_client" "$port" latency "$((N_LAT / 5))" >"$tmp/g_lat.txt" && val latency_p50_us "$tmp/g_lat.txt" || echo failed)
g_tp1=$(timeout 300 "$tmp/gearman_client" "$port" throughput "$N_PIPE" 256 >"$tmp/g_tp1.txt" && val throughput "$tmp/g_tp1.txt" || echo failed)
for i in 1 2 3 4; do timeout 300 "$tmp/gearman_client" "$port" throughput "$N_PIPE" 256 >"$tmp/g_tp4.$i" & done
wait_clients() { for j in $(jobs -p); do case " ${pids[*]} " in *" $j "*) ;; *) wait "$j" || true;; esac; done; }
wait_clients
g_tp4=$(cat "$tmp"/g_tp4.* | awk '$1 == "throughput" {s += $2; n++} END {print n == 4 ? int(s) : "failed"}')
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

# ---- Python asyncio: a Unix-socket server with one task per request
log "asyncio server driven by aiod-bench's clients"
sock=$tmp/asyncio.sock
$py "$here/asyncio_server.py" --socket "$sock" >"$tmp/asrv.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/asrv.log" 2>/dev/null && break; sleep 0.1; done
timeout 900 "$bench" --connect "$sock" --latency-n "$((N_LAT / 5))" --pipeline-n "$((N_PIPE / 4))" \
  --quiet >"$tmp/asyncio_srv.txt" || true
a_lat=$(val latency_p50_us "$tmp/asyncio_srv.txt"); a_tp1=$(val throughput_1 "$tmp/asyncio_srv.txt")
a_tp4=$(val throughput_4 "$tmp/asyncio_srv.txt")
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

# ---- Python asyncio: in-process gather
log "asyncio gather of $N_CONC tasks sleeping 1 s, then sleep(0)"
timeout 900 $py "$here/asyncio_gather.py" --n "$N_CONC" --sleep 1 >"$tmp/ag1.txt" || true
timeout 900 $py "$here/asyncio_gather.py" --n "$N_CONC" --sleep 0 >"$tmp/ag0.txt" || true
a_s1=$(awk '{printf "%.3f", $2 - 1}' "$tmp/ag1.txt"); a_b1=$(awk '{print $8}' "$tmp/ag1.txt")
a_s0=$(awk '{printf "%.3f", $2}' "$tmp/ag0.txt")

A=$tmp/aiod.txt
nc=$(echo "$N_CONC" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')
echo
echo "Peers, $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr)"
echo
echo "| workload | aiod | bare echo (limit) | gearmand + C worker | Python asyncio |"
echo "|---|---|---|---|---|"
echo "| latency p50, 1 client, 1 in flight (us) | $(cell 'latency p50 (us)' 3 "$A") | $(cell 'latency p50 (us)' 4 "$A") | ${g_lat:-n/a} | ${a_lat:-n/a} |"
echo "| throughput, 1 client x 256 in flight (tasks/s) | $(cell 'throughput 1 client' 3 "$A") | $(cell 'throughput 1 client' 4 "$A") | ${g_tp1:-n/a} | ${a_tp1:-n/a} |"
echo "| throughput, 4 clients x 256 in flight (tasks/s) | $(cell 'throughput 4 clients' 3 "$A") | $(cell 'throughput 4 clients' 4 "$A") | ${g_tp4:-n/a} | ${a_tp4:-n/a} |"
echo "| $nc tasks sleeping 1 s: s beyond 1 s | $(cell "$nc sleeping 1 s: s beyond" 3 "$A") | - | - | ${a_s1:-n/a} (in-process) |"
echo "| $nc tasks sleeping 1 s: bytes per task | $(cell "$nc sleeping 1 s: bytes per task" 3 "$A") | - | - | ${a_b1:-n/a} (in-process) |"
echo "| spawn + gather $nc no-op tasks in-process (s) | $(cell 'in-daemon spawn+gather' 3 "$A") | - | - | ${a_s0:-n/a} (sleep(0)) |"
echo
echo "gearmand: foreground jobs, $GEARMAN_WORKERS C workers, batches of 256 (gearman_client_run_tasks);"
echo "asyncio server: one task per request, driven by aiod-bench --connect."

#!/usr/bin/env bash
# Compares aiod-bench's figures of two builds in one run, alternating them
# so that the machine's drift falls on both alike. Usage:
#   scripts/bench-compare.sh BASE_REV [ROUNDS [SECTIONS]]
# builds BASE_REV in a worktree under /var/tmp/aiod-bench-base (kept), uses
# ./build for the checkout as it is (scripts/build.sh build first), and
# prints every round's rows of both, then the median of each row.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/bench-compare.sh BASE_REV [ROUNDS [SECTIONS]]}
rounds=${2:-4}
sections=${3:-latency,throughput}
wt=/var/tmp/aiod-bench-base
rev=$(git rev-parse --verify "$base^{commit}")
if [ "$(git -C "$wt" rev-parse HEAD 2>/dev/null || true)" != "$rev" ]; then
    git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    git worktree add --force --detach "$wt" "$rev" >/dev/null
    rm -rf "$wt/build"
fi
[ -x "$wt/build/tests/aiod-bench" ] || "$wt/scripts/build.sh" "$wt/build" >/dev/null
[ -x build/tests/aiod-bench ] || scripts/build.sh build >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= rounds; i++)); do
    for which in base head; do
        dir=$PWD/build
        [ "$which" = base ] && dir=$wt/build
        "$dir/tests/aiod-bench" --only "$sections" --python none --quiet --aiod "$dir/daemon/aiod" \
            --plugin-dir "$dir/tests/bench/plugins" | grep '^| [a-z]' | grep -v '^| figure' |
            sed "s/^/$which /" | tee -a "$out"
    done
done
echo
echo "medians over $rounds rounds (ours, limit) — base ${base}, head $(git rev-parse --short HEAD)"
python3 - "$out" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    which, rest = line.split(" ", 1)
    cells = [c.strip() for c in rest.strip().strip("|").split("|")]
    if len(cells) < 3:
        continue
    num = lambda s: float(re.sub(r"[^0-9.]", "", s.split("(")[0]) or "nan")
    rows.setdefault(cells[0], {}).setdefault(which, []).append((num(cells[1]), num(cells[2])))
for name, by in rows.items():
    parts = []
    for which in ("base", "head"):
        v = by.get(which, [])
        if v:
            fmt = lambda x: format(x, ",.1f" if x < 1000 else ",.0f")
            parts.append("%s %s (limit %s)" % (which, fmt(statistics.median(x for x, _ in v)),
                                               fmt(statistics.median(y for _, y in v))))
    print("%-40s %s" % (name, "   ".join(parts)))
PY

#!/usr/bin/env bash
# The built man pages format without a groff warning at 80 columns, as man(1)
# shows them (a line too long to break, a character groff does not know).
# Usage: scripts/check-man.sh BUILD_DIR
set -euo pipefail
dir=${1:?usage: scripts/check-man.sh BUILD_DIR}
pages=("$dir"/docs/*.[1-8])
[ -e "${pages[0]}" ] || { echo "check-man: no man pages under $dir/docs" >&2; exit 1; }
bad=0
for page in "${pages[@]}"; do
    warnings=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null || true)
    if [ -n "$warnings" ]; then
        echo "check-man: $page:" >&2
        echo "$warnings" | sed 's/^/  /' >&2
        bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "check-man: ${#pages[@]} pages, no warnings"
exit "$bad"

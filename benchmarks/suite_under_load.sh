#!/usr/bin/env bash
# The whole test suite under load: two CPU-bound processes run beside it (a shared CI box), and the
# suite must pass ROUNDS times in a row (default 3). Prints each round's pytest summary and time.
#   bash benchmarks/suite_under_load.sh [ROUNDS] [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
shift || true
hogs=()
cleanup() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in 1 2; do
    .venv/bin/python -c "while True: pass" &
    hogs+=("$!")
done
echo "== $(nproc) cores, 2 CPU hogs (pids ${hogs[*]}), $rounds round(s)"
for round in $(seq 1 "$rounds"); do
    start=$SECONDS
    if .venv/bin/python -m pytest -q -p no:cacheprovider "$@" > "/tmp/suite_under_load.$round.log" 2>&1; then
        status=passed
    else
        status=FAILED
    fi
    echo "round $round: $status in $((SECONDS - start)) s: $(tail -1 "/tmp/suite_under_load.$round.log")"
    [ "$status" = passed ] || { grep -E "^(FAILED|ERROR)" "/tmp/suite_under_load.$round.log" | head -20; exit 1; }
done

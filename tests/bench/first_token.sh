#!/usr/bin/env bash
# From open to the first token of a short chat turn: the wall time of `windowpane-cli chat`
# loading MODEL, rendering a one-line turn through its chat template and answering one token,
# per precision. "cold": the page cache dropped first (needs root and a writable
# /proc/sys/vm/drop_caches, else the row says so); "warm": the files already cached, median (min-max)
# of REPEAT runs after one untimed run.
#
# usage: tests/bench/first_token.sh MODEL [PRECISION ...]   (default precisions: bf16 q8)
# env: WP_BUILD_DIR (./build), REPEAT (5), THREADS (2)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
model="${1:?usage: first_token.sh MODEL [PRECISION ...]}"
shift
precisions=("$@")
[ ${#precisions[@]} -gt 0 ] || precisions=(bf16 q8)
repeat="${REPEAT:-5}" threads="${THREADS:-2}"
turn() {
    local s e
    s=$(date +%s.%N)
    echo "Hello, who are you?" | "$cli" chat --model "$model" --precision "$1" --threads "$threads" --greedy \
        --max-new-tokens 1 >/dev/null 2>&1
    e=$(date +%s.%N)
    python3 -c "print('%.2f' % ($e - $s))"
}
echo "| precision | cold s | warm s |"
echo "|---|---|---|"
for p in "${precisions[@]}"; do
    cold="not measured (cannot drop the page cache)"
    if [ -w /proc/sys/vm/drop_caches ]; then
        sync && echo 3 >/proc/sys/vm/drop_caches && cold=$(turn "$p")
    fi
    turn "$p" >/dev/null
    warm=$(for _ in $(seq 1 "$repeat"); do turn "$p"; done | python3 -c '
import statistics, sys
v = [float(x) for x in sys.stdin.read().split()]
print("%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v)))')
    echo "| $p | $cold | $warm |"
done

#!/usr/bin/env bash
# Prompt-lookup decoding, with and without: greedy generation on the embedded demo model, given a
# verse twice and the start of it again, so its reply runs over text already in its context.
# Prints one table row per setting: tokens/s (median, min-max over REPEAT runs) and the draft
# tokens taken. The outputs are compared: they must be the same.
#
# usage: tests/bench/prompt_lookup.sh   env: WP_BUILD_DIR (./build), MODEL (the demo model),
#        TOKENS (200), REPEAT (5), LOOKUP (10), THREADS (2)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
model="${MODEL:-$root/resources/models/windowpane-demo-gemma2}"
tokens="${TOKENS:-200}" repeat="${REPEAT:-5}" lookup="${LOOKUP:-10}" threads="${THREADS:-2}"
verse="And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness."
prompt="$verse $verse And God said,"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "| prompt lookup | tokens/s | draft tokens taken |"
echo "|---|---|---|"
for n in 0 "$lookup"; do
    for r in $(seq 1 "$repeat"); do
        "$cli" generate --model "$model" --prompt "$prompt" --greedy --ignore-eos --max-new-tokens "$tokens" \
            --threads "$threads" --prompt-lookup "$n" >"$tmp/out-$n.txt" 2>"$tmp/err-$n-$r.txt"
    done
    python3 - "$n" "$tmp"/err-"$n"-*.txt <<'PY'
import re, statistics, sys
n, files = sys.argv[1], sys.argv[2:]
tps, taken = [], ""
for f in files:
    t = open(f).read()
    tps.append(float(re.search(r"([0-9.]+) tokens/s", t).group(1)))
    m = re.search(r"prompt lookup: (\d+) of (\d+)", t)
    if m: taken = "%s of %s" % m.groups()
print("| %s | %.0f (%.0f-%.0f) | %s |" % ("off" if n == "0" else n, statistics.median(tps), min(tps), max(tps), taken or "-"))
PY
done
cmp -s "$tmp/out-0.txt" "$tmp/out-$lookup.txt" || { echo "the outputs differ" >&2; exit 1; }

#!/usr/bin/env bash
# Many short texts through a sequence-classification head (classify --file, inputs packed into
# shared forward passes) against the prefill rate of one 512-token prompt, same body shape and
# precision, same run, taking turns: texts/s and tokens/s, median (min-max) of REPEAT rounds.
#
# usage: tests/bench/classify_many.sh [PRESET] [PRECISION ...]   (default qwen2-0.5b; bf16 q8)
# env: WP_BUILD_DIR (./build), BENCH_DIR (where the synthetic models go; /tmp/wp-bench),
#      TEXTS (1000), REPEAT (3), PASSES (40: prompts per prefill measurement, tens of seconds like
#      the classify run, since a short burst runs faster on a shared machine), THREADS (0: one per
#      core), SHARED (../shared)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
preset="${1:-qwen2-0.5b}"
shift || true
precisions=("$@")
[ ${#precisions[@]} -gt 0 ] || precisions=(bf16 q8)
bench="${BENCH_DIR:-/tmp/wp-bench}" texts="${TEXTS:-1000}" repeat="${REPEAT:-3}" threads="${THREADS:-0}"
passes="${PASSES:-40}"
shared="${SHARED:-$root/../shared}"
causal="$bench/$preset-bf16" head="$bench/$preset-seqcls-bf16"
mkdir -p "$bench"
[ -f "$causal/config.json" ] || "$cli" synth --preset "$preset" --out "$causal" --shared "$shared" >&2
[ -f "$head/config.json" ] || "$cli" synth --preset "$preset" --labels 2 --out "$head" --shared "$shared" >&2

# TEXTS lines of about 32 tokens: runs of words from Genesis, lengths varying.
lines="$bench/classify-texts.txt"
python3 - "$root/tests/bench/texts/genesis-1-2.txt" "$texts" > "$lines" <<'PY'
import sys
words = open(sys.argv[1]).read().split()
out, at = [], 0
for i in range(int(sys.argv[2])):
    n = 14 + (i * 7) % 9  # 14..22 words: ~25-40 tokens with the fixtures' tokenizer
    out.append(" ".join(words[(at + k) % len(words)] for k in range(n)))
    at += n
print("\n".join(out))
PY

prefill() {  # tokens/s of one 512-token prompt: the median of PASSES prompts in a row, a load as sustained as classify's
    "$cli" bench --model "$causal" --precision "$1" --threads "$threads" --prompt-tokens 512 --gen-tokens 1 \
        --repeat "$passes" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefill_tok_s"]["median"])'
}
many() {  # "texts/s tokens/s" of classify --file
    "$cli" classify --model "$head" --precision "$1" --threads "$threads" --file "$lines" 2>&1 >/dev/null |
        python3 -c 'import re,sys; m=re.search(r"([\d.]+) inputs/s, (\d+) tokens/s", sys.stdin.read()); print(m.group(1), m.group(2))'
}
med() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.0f (%.0f-%.0f)" % (statistics.median(v), min(v), max(v)))' "$@"; }
echo "| precision | 512-token prompt, prefill tokens/s | $texts texts: texts/s | tokens/s | ratio |"
echo "|---|---|---|---|---|"
for p in "${precisions[@]}"; do
    P=() T=() K=()
    for _ in $(seq 1 "$repeat"); do
        P+=("$(prefill "$p")")
        read -r t k < <(many "$p")
        T+=("$t") K+=("$k")
    done
    ratio=$(python3 -c 'import statistics,sys; n=len(sys.argv)//2; print("%.2f" % (statistics.median(map(float, sys.argv[1+n:])) / statistics.median(map(float, sys.argv[1:1+n]))))' "${P[@]}" "${K[@]}")
    echo "| $p | $(med "${P[@]}") | $(med "${T[@]}") | $(med "${K[@]}") | $ratio |"
done

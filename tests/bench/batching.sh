#!/usr/bin/env bash
# Continuous batching, side by side: aggregate decode tokens/s of N concurrent streams through
# Windowpane's serving scheduler (`windowpane-cli bench-batch`) and through llama.cpp's batched
# decode (llama_side's `batched` mode, driven as llama-batched-bench drives it: one llama_decode of
# N tokens per step, each sequence with its own id and positions, the KV cache not unified), same
# shapes, precision, thread count and per-sequence context, in one run on this machine.
#
# Both engines count alike: each of N streams gets its own random prompt of PROMPT tokens and
# generates GEN tokens, greedy, eos ignored; the first token comes from the prompt pass, and
# decode tokens/s = the tokens that arrive after every stream has its first, over the time from
# then to the last stream's end (N x (GEN - 1) tokens when the streams start together).
#
# usage: tests/bench/batching.sh [SHAPE:PRECISION ...]   (default: qwen2-0.5b:q4 qwen2-0.5b:q8 gemma2-2b:q8)
#   SHAPE: a `windowpane-cli synth` preset; PRECISION: f32, bf16, q8 or q4.
# env: WP_BUILD_DIR (./build), BENCH_DIR (models and GGUF files, /tmp/wp-side-by-side, as run.sh),
#      STREAMS ("1 2 4 8"), THREADS (2), PROMPT (32), GEN (64), REPEAT (3: rounds of N streams per
#      turn, after a warm-up round), ROUNDS (2: turns per engine and N, the engines alternating which
#      goes first; the figures are the median, min and max of the turns' medians, or with one turn
#      its own), LLAMA (prebuilt or native, as run.sh), KV (f16: both engines' quantized
#      precisions keep an f16 cache; q8: Windowpane --kv q8, llama.cpp q8_0 K and V).
# The context of each sequence is PROMPT + GEN rounded up to 256, for both (llama.cpp: n_ctx = N x
# that, each sequence its own part). Memory bandwidth (`bench-memory`) is measured before every turn.
# Results (one JSON file per engine, N and turn, with the time to the first token too) are kept in
# $BENCH_DIR/results/batching-SHAPE-PRECISION.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${WP_BUILD_DIR:-$root/build}"
work="${BENCH_DIR:-/tmp/wp-side-by-side}"
threads="${THREADS:-2}" prompt="${PROMPT:-32}" gen="${GEN:-64}" repeat="${REPEAT:-3}" rounds="${ROUNDS:-2}"
read -r -a streams <<< "${STREAMS:-1 2 4 8}"
flavour="${LLAMA:-prebuilt}" avx2=0
cli="$build/app/windowpane-cli"
[ -x "$cli" ] || { echo "build windowpane-cli first ($cli)" >&2; exit 1; }
"$cli" bench-batch --help >/dev/null 2>&1 || { echo "$cli has no bench-batch command" >&2; exit 1; }
mkdir -p "$work"
source "$root/tests/bench/llamacpp/setup.sh"  # llama_setup, bench_model, bandwidth
llama_setup

ours_flags=() suffix="" their_kv=f16
[ "$flavour" = native ] && suffix=-native
case "${KV:-f16}" in
f16) ;;
q8) ours_flags=(--kv q8) their_kv=q8_0 suffix="$suffix-kvq8" ;;
*) echo "KV is f16 or q8, not '${KV}'" >&2; exit 1 ;;
esac
ctx=$(( (prompt + gen + 255) / 256 * 256 ))

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(qwen2-0.5b:q4 qwen2-0.5b:q8 gemma2-2b:q8)

# spread FILE...: "median (min-max)" of decode_tok_s over the turns' JSON files (one row each);
# with one turn, its own median, min and max. value FILE...: the median alone.
spread() {
    python3 - "$@" <<'PY'
import json, statistics, sys
v = [json.load(open(f))["rows"][0]["decode_tok_s"] for f in sys.argv[1:]]
if len(v) == 1:
    print("%.1f (%.1f-%.1f)" % (v[0]["median"], v[0]["min"], v[0]["max"]))
else:
    m = [x["median"] for x in v]
    print("%.1f (%.1f-%.1f)" % (statistics.median(m), min(m), max(m)))
PY
}
value() { spread "$@" | cut -d' ' -f1; }
ratio() { python3 -c 'import sys; a, b = sys.argv[1:]; print("%.2fx" % (float(a) / float(b)) if a != "-" and b != "-" else "-")' "$1" "$2"; }

echo "| shape | precision | streams | Windowpane tok/s | llama.cpp tok/s | ratio | Windowpane vs 1 stream | llama.cpp vs 1 stream | memory GB/s |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    shape="${c%%:*}" prec="${c##*:}"
    bench_model "$shape" "$prec"  # sets model and gguf (setup.sh)
    out="$work/results/batching-$shape-$prec$suffix"
    rm -rf "$out" && mkdir -p "$out"
    ours() {
        bandwidth > "$out/bw-ours-$1-$2.txt"
        "$cli" bench-batch --model "$model" --precision "$prec" --threads "$threads" --streams "$1" --prompt "$prompt" \
            --gen "$gen" --repeat "$repeat" --ctx "$ctx" --json "${ours_flags[@]}" > "$out/ours-$1-$2.json"
    }
    theirs() {
        bandwidth > "$out/bw-theirs-$1-$2.txt"
        "$side" batched "$gguf" "$threads" "$1" "$prompt" "$gen" "$repeat" "$ctx" "$their_kv" > "$out/theirs-$1-$2.json"
    }
    one_ours="-" one_theirs="-"
    for n in "${streams[@]}"; do
        for r in $(seq 1 "$rounds"); do
            if [ $((r % 2)) -eq 1 ]; then ours "$n" "$r"; theirs "$n" "$r"; else theirs "$n" "$r"; ours "$n" "$r"; fi
        done
        o=$(value "$out"/ours-"$n"-*.json) t=$(value "$out"/theirs-"$n"-*.json)
        [ "$n" = 1 ] && one_ours="$o" one_theirs="$t"
        bw=$(cat "$out"/bw-*-"$n"-*.txt | python3 -c 'import statistics, sys; v = [float(x) for x in sys.stdin.read().split()]; print("%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v)))')
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$shape" "$prec" "$n" "$(spread "$out"/ours-"$n"-*.json)" \
            "$(spread "$out"/theirs-"$n"-*.json)" "$(ratio "$o" "$t")" "$(ratio "$o" "$one_ours")" \
            "$(ratio "$t" "$one_theirs")" "$bw"
    done
done

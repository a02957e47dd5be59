#!/usr/bin/env bash
# A GGUF file against the same model quantized by Windowpane from safetensors: decode and prefill
# tokens/s and the memory the loaded process holds, in one run, the two taking turns.
# The GGUF files are llama.cpp's (Q8_0 / Q4_0, every matrix, from the BF16 export of the folder),
# as tests/bench/llamacpp/run.sh leaves them in BENCH_DIR: run that once for the shapes first.
#
# usage: tests/bench/gguf_decode.sh [SHAPE:PRECISION ...]   (default qwen2-0.5b:q8 qwen2-0.5b:q4)
# env: WP_BUILD_DIR (./build), BENCH_DIR (/tmp/wp-side-by-side), THREADS (2), ROUNDS (3), GEN (128),
#      PROMPT (512)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
work="${BENCH_DIR:-/tmp/wp-side-by-side}"
threads="${THREADS:-2}" rounds="${ROUNDS:-3}" gen="${GEN:-128}" prompt="${PROMPT:-512}"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(qwen2-0.5b:q8 qwen2-0.5b:q4)
out="$work/results/gguf-decode"
mkdir -p "$out"
# The median of a JSON key over the turns, "median (min-max)".
median() {
    python3 - "$@" <<'PY'
import json, statistics, sys
key, files = sys.argv[1], sys.argv[2:]
v = [json.load(open(f))[key]["median"] for f in files]
print("%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v)))
PY
}
echo "| shape | precision | source | decode tok/s | prefill $prompt tok/s | max RSS MB |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    shape="${c%%:*}" prec="${c##*:}"
    folder="$work/$shape-bf16"
    gguf="$work/$shape-$([ "$prec" = q8 ] && echo q8_0 || echo q4_0).gguf"
    [ -f "$gguf" ] || { echo "no $gguf: run tests/bench/llamacpp/run.sh $shape:$prec first" >&2; exit 1; }
    rm -f "$out/$shape-$prec"-*
    one() {  # one SOURCE-NAME MODEL ROUND
        "$cli" bench --model "$2" --precision "$prec" --threads "$threads" --prompt-tokens 1 --gen-tokens "$gen" \
            --repeat 3 --json > "$out/$shape-$prec-$1-dec-$3.json"
        "$cli" bench --model "$2" --precision "$prec" --threads "$threads" --prompt-tokens "$prompt" --gen-tokens 1 \
            --repeat 3 --json > "$out/$shape-$prec-$1-pp-$3.json"
        /usr/bin/time -f "%M" -o "$out/$shape-$prec-$1-rss-$3.txt" \
            "$cli" generate --model "$2" --precision "$prec" --threads "$threads" --ids 1,2,3 --max-new-tokens 1 >/dev/null 2>&1
    }
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) -eq 1 ]; then one gguf "$gguf" "$r"; one folder "$folder" "$r"; else one folder "$folder" "$r"; one gguf "$gguf" "$r"; fi
    done
    for src in gguf folder; do
        rss=$(sort -n "$out/$shape-$prec-$src"-rss-*.txt | awk '{a[NR]=$1} END {print int(a[int((NR+1)/2)]/1024)}')
        printf '| %s | %s | %s | %s | %s | %s |\n' "$shape" "$prec" \
            "$([ $src = gguf ] && basename "$gguf" || echo "safetensors BF16, quantized at load")" \
            "$(median decode_tok_s "$out/$shape-$prec-$src"-dec-*.json)" "$(median prefill_tok_s "$out/$shape-$prec-$src"-pp-*.json)" "$rss"
    done
done

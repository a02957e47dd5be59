#!/usr/bin/env bash
# What quantizing costs a model, measured by both engines on the same tokens: Windowpane's
# `diverge` (its bf16 against its q8 / q4 of one folder) and llama.cpp (its BF16 GGUF of the folder
# against the Q8_0 / Q4_0 its own quantizer makes, logits from llama_side, statistics by
# tests/bench/kl_stats.py with diverge's definitions). Synthetic shapes read random ids; the demo
# model reads a text. Then how long the inspections take on a long text: diverge and the logit
# lens (the app's 48-position window) over LONG tokens of gemma2-2b q8.
#
# usage: tests/bench/divergence.sh [SHAPE ...]   (default: qwen2-0.5b gemma2-2b)
# env: WP_BUILD_DIR (./build), BENCH_DIR (/tmp/wp-side-by-side), THREADS (2), TOKENS (256),
#      LONG (4096; 0: skip the timing), SHARED (../shared)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
work="${BENCH_DIR:-/tmp/wp-side-by-side}"
shared="${SHARED:-$root/../shared}"
threads="${THREADS:-2}" tokens="${TOKENS:-256}" long="${LONG:-4096}"
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(qwen2-0.5b gemma2-2b)
mkdir -p "$work/results/divergence"
out="$work/results/divergence"

# llama.cpp's prebuilt CPU libraries and the harness's llama_side, as tests/bench/llamacpp/run.sh sets them up.
lib="$work/llama/package/bins/linux-x64"
if [ ! -d "$lib" ]; then
    (cd "$work" && rm -rf llama && mkdir llama && cd llama && npm pack --silent "@node-llama-cpp/linux-x64@3.22.1" >/dev/null && tar xzf ./*.tgz)
fi
side="$work/llama_side"
if [ ! -x "$side" ] || [ "$root/tests/bench/llamacpp/llama_side.cpp" -nt "$side" ]; then
    g++ -O2 -std=c++17 "$root/tests/bench/llamacpp/llama_side.cpp" -o "$side" -L"$lib" -l:libllama.v0.5.0.so \
        -l:libggml.v0.5.0.so -Wl,-rpath,"$lib"
fi
export LLAMA_LIB_DIR="$lib"

field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d.get("summary", d); print(sys.argv[2] % tuple(d[k] for k in sys.argv[3:]))' "$@"; }
row() {  # name quant engine json
    field "$4" "| $1 | $2 | $3 | %.2e | %.2e | %.2e | %.2f%% | %.4f |" mean_kl median_kl p99_kl same_top ppl_ratio
}
same_top_pct() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d.get("summary", d); d["same_top"]*=100; json.dump(d, open(sys.argv[1],"w"))' "$1"; }

# model: folder; gguf_base: its BF16 GGUF; ids: csv; name: for the table.
compare() {
    local name="$1" model="$2" gguf_base="$3" ids="$4" vocab="$5"
    "$side" logits "$gguf_base" "$ids" "$out/$name-bf16.f32" >/dev/null 2>&1
    for q in q8 q4; do
        local lq=q8_0; [ "$q" = q4 ] && lq=q4_0
        local gguf_q="${gguf_base%-bf16.gguf}-$lq.gguf"
        [ -f "$gguf_q" ] || "$side" quantize "$gguf_base" "$gguf_q" "$lq" >/dev/null 2>&1
        "$cli" diverge --model "$model" --precision bf16 --model "$model" --precision "$q" --ids "$ids" \
            --threads "$threads" --json > "$out/$name-$q-wp.json"
        "$side" logits "$gguf_q" "$ids" "$out/$name-$lq.f32" >/dev/null 2>&1
        python3 "$root/tests/bench/kl_stats.py" "$out/$name-bf16.f32" "$out/$name-$lq.f32" "$vocab" "$ids" > "$out/$name-$q-llama.json"
        same_top_pct "$out/$name-$q-wp.json"
        same_top_pct "$out/$name-$q-llama.json"
        row "$name" "bf16 → $q" Windowpane "$out/$name-$q-wp.json"
        row "$name" "BF16 → ${lq^^}" llama.cpp "$out/$name-$q-llama.json"
    done
}

echo "| model | quantization | engine | mean KL | median KL | p99 KL | same top | PPL ratio |"
echo "|---|---|---|---|---|---|---|---|"
for shape in "${shapes[@]}"; do
    model="$work/$shape-bf16"
    [ -f "$model/config.json" ] || "$cli" synth --preset "$shape" --out "$model" >&2
    gguf="$work/$shape-bf16.gguf"
    [ -f "$gguf" ] || python3 "$root/tests/bench/llamacpp/gguf_export.py" "$model" "$gguf" >&2
    vocab="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$model/config.json")"
    ids="$(python3 -c 'import random,sys; random.seed(7); print(",".join(str(random.randrange(int(sys.argv[1]))) for _ in range(int(sys.argv[2]))))' "$vocab" "$tokens")"
    compare "$shape" "$model" "$gguf" "$ids" "$vocab"
done
demo="$shared/models/windowpane-demo-gemma2"
if [ -f "$demo/config.json" ]; then
    gguf="$work/demo-bf16.gguf"
    [ -f "$gguf" ] || python3 "$root/tests/bench/llamacpp/gguf_export.py" "$demo" "$gguf" --vocab >&2
    vocab="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$demo/config.json")"
    ids="$("$cli" tokenize --model "$demo" - < "$root/tests/bench/texts/genesis-1-2.txt" | head -c 100000)"
    ids="$(python3 -c 'import sys; print(",".join(sys.argv[1].split(",")[:int(sys.argv[2])]))' "$ids" 1024)"
    compare demo "$demo" "$gguf" "$ids" "$vocab"
fi

[ "$long" -gt 0 ] || exit 0
model="$work/gemma2-2b-bf16"
[ -f "$model/config.json" ] || "$cli" synth --preset gemma2-2b --out "$model" >&2
ids="$(python3 -c 'import random; random.seed(11); print(",".join(str(random.randrange(256000)) for _ in range('"$long"')))')"
secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); python3 -c "print('%.1f' % ($e - $s))"; }
echo
echo "| gemma2-2b, $long tokens, $threads threads | wall s |"
echo "|---|---|"
echo "| load q8 only (diverge of 2 tokens) | $(secs "$cli" diverge --model "$model" --precision q8 --model "$model" --precision q8 --ids 5,6 --threads "$threads") |"
echo "| diverge q8 against q8 (one load) | $(secs "$cli" diverge --model "$model" --precision q8 --model "$model" --precision q8 --ids "$ids" --threads "$threads") |"
echo "| diverge bf16 against q8 | $(secs "$cli" diverge --model "$model" --precision bf16 --model "$model" --precision q8 --ids "$ids" --threads "$threads") |"
echo "| lens q8, last 48 positions | $(secs "$cli" lens --model "$model" --precision q8 --ids "$ids" --first $((long - 48)) --json --threads "$threads") |"
echo "| lens q8, last position only (a forward pass + 26 readouts) | $(secs "$cli" lens --model "$model" --precision q8 --ids "$ids" --first $((long - 1)) --json --threads "$threads") |"

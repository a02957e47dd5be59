#!/usr/bin/env bash
# Side-by-side decode/prefill benchmark: Windowpane vs llama.cpp, same shapes, same precision, same
# thread count, in one run on this machine. llama.cpp comes from the node-llama-cpp npm packages,
# pinned below: prebuilt CPU backends, or (LLAMA=native) built here with -march=native from the
# llama.cpp source the package carries. Nothing of it is committed.
#
# usage: tests/bench/llamacpp/run.sh [SHAPE:PRECISION ...]
#   SHAPE: a `windowpane-cli synth` preset; PRECISION: f32, bf16, q8 or q4.
# env: WP_BUILD_DIR (default ./build), BENCH_DIR (models and GGUF files, default /tmp/wp-side-by-side),
#      THREADS (2), PROMPT (512; 0: decode only, the prefill columns "-"), GEN (128), REPEAT (3), DEPTH (0: generation from an empty
#      context, as llama-bench's tg; N: after N tokens of context, for both engines), ROUNDS (1:
#      each engine runs REPEAT times in turn; N: N such turns, the engines alternating which goes
#      first, and the figures are the median, min and max of the turns' medians: on a shared,
#      noisy machine a slow spell then hits both engines instead of one), AVX2 (1: both engines
#      as on a CPU with AVX2 but no AVX-512: Windowpane with --avx2 and OpenBLAS's Haswell
#      kernels, llama.cpp with only its `haswell` CPU build to load), LLAMA (prebuilt: the npm
#      package's CPU builds; native: llama.cpp compiled for this CPU, GGML_NATIVE, the fastest it
#      can be built here; the first run builds it into $BENCH_DIR/llama-native, ~10 minutes on 2
#      cores, with cmake and g++), KV (f16, the default: both engines' quantized precisions keep
#      an f16 cache; q8: Windowpane with --kv q8 and llama.cpp with q8_0 K and V, -ctk/-ctv q8_0),
#      LLAMA_NO_EXTRA_BUFTS (set: llama.cpp without its extra buffer types, AMX and repacked
#      weights; where its AMX kernels fault, as on the Intel Xeon of PERFORMANCE.md).
# Each row also gives the memory bandwidth (`bench-memory`, measured before every turn) and each
# engine's decode share of it (weight bytes per token x tokens/s / that turn's bandwidth).
# Quantized GGUF files are made by llama.cpp's own quantizer with every matrix in the named type
# (q8 = Q8_0, q4 = Q4_0, "pure"), as Windowpane quantizes every matrix; bf16 = BF16.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
build="${WP_BUILD_DIR:-$root/build}"
work="${BENCH_DIR:-/tmp/wp-side-by-side}"
threads="${THREADS:-2}" prompt="${PROMPT:-512}" gen="${GEN:-128}" repeat="${REPEAT:-3}" depth="${DEPTH:-0}"
rounds="${ROUNDS:-1}" avx2="${AVX2:-0}" flavour="${LLAMA:-prebuilt}"
cli="$build/app/windowpane-cli"
[ -x "$cli" ] || { echo "build windowpane-cli first ($cli)" >&2; exit 1; }
mkdir -p "$work"

# llama.cpp's libraries and llama_side (setup.sh, shared with tests/bench/batching.sh).
source "$root/tests/bench/llamacpp/setup.sh"
llama_setup
ours_flags=() suffix="" kv="${KV:-f16}" their_kv=f16
[ "$flavour" = native ] && suffix=-native
case "$kv" in
f16) ;;
q8) ours_flags=(--kv q8) their_kv=q8_0 suffix="$suffix-kvq8" ;;
*) echo "KV is f16 or q8, not '$kv'" >&2; exit 1 ;;
esac
if [ "$avx2" = 1 ]; then
    [ -f "$lib/libggml-cpu-haswell.so" ] || { echo "no haswell CPU build in $lib" >&2; exit 1; }
    # llama.cpp picks the best CPU build it finds in LLAMA_LIB_DIR: offer it only the AVX2 one.
    mkdir -p "$work/llama_haswell"
    ln -sf "$lib/libggml-cpu-haswell.so" "$work/llama_haswell/libggml-cpu-haswell.so"
    export LLAMA_LIB_DIR="$work/llama_haswell"
    ours_flags+=(--avx2) suffix="$suffix-avx2"
    export OPENBLAS_CORETYPE=Haswell  # and OpenBLAS its AVX2 kernels (for f32/bf16 prompts)
fi

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(qwen2-0.5b:f32 qwen2-0.5b:bf16 qwen2-0.5b:q8 qwen2-0.5b:q4 qwen2-1.5b:bf16 qwen2-1.5b:q8
                                 gemma2-2b:f32 gemma2-2b:bf16 gemma2-2b:q8 gemma2-2b:q4)

# median KEY FILE...: "median (min-max)" of KEY's medians over the JSON objects in the files
# (one per turn); with one turn, that turn's own median, min and max.
median() {
    python3 - "$@" <<'PY'
import json, statistics, sys
key, files = sys.argv[1], sys.argv[2:]
vals = [v for v in (json.load(open(f)).get(key) for f in files if f.endswith(".json") and "*" not in f) if v]
if not vals:
    print("-")
elif len(vals) == 1:
    v = vals[0]
    print("%.1f (%.1f-%.1f)" % (v["median"], v["min"], v["max"]))
else:
    m = [v["median"] for v in vals]
    print("%.1f (%.1f-%.1f)" % (statistics.median(m), min(m), max(m)))
PY
}
value() { median "$@" | cut -d' ' -f1; }
# bandwidth (setup.sh): memory read bandwidth with the benchmark's thread count, measured right
# before each engine's turn.
# share DIR WHO KEY: decode's share of the bandwidth over the turns, "median% (min-max)": the
# weights' bytes read per token (as Windowpane counts them; the same precision reads the same
# bytes in both engines) x tokens/s / the bandwidth measured before that turn.
share() {
    python3 - "$@" <<'PY'
import glob, json, os, statistics, sys
d, who, key = sys.argv[1:]
per_token = json.load(open(glob.glob(os.path.join(d, "ours-dec-*.json"))[0]))["weight_bytes_per_token"]
s = []
for f in sorted(glob.glob(os.path.join(d, ("ours-dec-" if who == "ours" else "theirs-") + "*.json"))):
    turn = f.rsplit("-", 1)[1][:-5]
    bw = float(open(os.path.join(d, "bw-%s-%s.txt" % (who, turn))).read())
    s.append(100 * json.load(open(f))[key]["median"] * per_token / (bw * 1e9))
print("%.0f%% (%.0f-%.0f)" % (statistics.median(s), min(s), max(s)))
PY
}

echo "| shape | precision | Windowpane prefill | llama.cpp prefill | Windowpane decode | llama.cpp decode | decode ratio | memory GB/s | Windowpane share | llama.cpp share |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    shape="${c%%:*}" prec="${c##*:}"
    bench_model "$shape" "$prec"  # sets model and gguf (setup.sh)
    # Windowpane's bench measures decode after the prompt; with DEPTH it is given a prompt of DEPTH
    # tokens for decode, and llama.cpp the same depth.
    out="$work/results/$shape-$prec$suffix"
    rm -rf "$out" && mkdir -p "$out"
    ours() {
        bandwidth > "$out/bw-ours-$1.txt"
        "$cli" bench --model "$model" --precision "$prec" --threads "$threads" \
            --prompt-tokens "$([ "$depth" -gt 0 ] && echo "$depth" || echo 1)" --gen-tokens "$gen" --repeat "$repeat" \
            --json "${ours_flags[@]}" > "$out/ours-dec-$1.json"
        [ "$prompt" -gt 0 ] || return 0
        "$cli" bench --model "$model" --precision "$prec" --threads "$threads" --prompt-tokens "$prompt" \
            --gen-tokens 1 --repeat "$repeat" --json "${ours_flags[@]}" > "$out/ours-pp-$1.json"
    }
    theirs() {
        bandwidth > "$out/bw-theirs-$1.txt"
        "$side" bench "$gguf" "$threads" "$prompt" "$gen" "$repeat" "$depth" "$their_kv" > "$out/theirs-$1.json"
    }
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) -eq 1 ]; then ours "$r"; theirs "$r"; else theirs "$r"; ours "$r"; fi
    done
    od=$(value decode_tok_s "$out"/ours-dec-*.json)
    td=$(value tg_tok_s "$out"/theirs-*.json)
    bw=$(cat "$out"/bw-*.txt | python3 -c 'import statistics, sys; v = [float(x) for x in sys.stdin.read().split()]; print("%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v)))')
    printf '| %s | %s | %s | %s | %s | %s | %.2fx | %s | %s | %s |\n' "$shape" "$prec" "$(median prefill_tok_s "$out"/ours-pp-*.json)" \
        "$(median pp_tok_s "$out"/theirs-*.json)" "$(median decode_tok_s "$out"/ours-dec-*.json)" \
        "$(median tg_tok_s "$out"/theirs-*.json)" "$(python3 -c "print($od/$td)")" "$bw" \
        "$(share "$out" ours decode_tok_s)" "$(share "$out" theirs tg_tok_s)"
done

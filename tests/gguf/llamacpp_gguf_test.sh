#!/usr/bin/env bash
# GGUF loading against llama.cpp's own tools and the fixtures' reference logits.
#
# llama.cpp comes from the node-llama-cpp npm package, pinned as tests/bench/llamacpp/run.sh pins it
# (prebuilt CPU libraries; nothing committed), cached in WORK with the llama_side helper built
# against it. GGUF files are written by tests/bench/llamacpp/gguf_export.py (F32, placeholder
# vocabulary, Gemma norms +1 as llama.cpp's converter does) and quantized by llama.cpp's own
# quantizer (llama_side quantize = llama_model_quantize).
#
# 1. Every fixture (tiny-gemma, tiny-gemma2 and its model_bf16, tiny-qwen2, tiny-qwen2-tied),
#    every reference case: windowpane-cli logits on the exported GGUF equals the reference within
#    1e-4 (max abs, the fixtures' own tolerance; measured 2.1e-5 at most). The BF16 file is checked
#    against Windowpane's own run on the safetensors folder instead (bound 1e-6, measured 0:
#    Windowpane computes BF16 weights in bf16, 3.4e-2 off the f32-computed reference either way).
#    llama.cpp's logits on the same files are checked against the reference too: this checks the
#    export, so that the comparisons below start from a correct file. Its bounds are per model,
#    just above the measurement (max over the cases; zen4 and haswell CPU builds alike): ggml
#    evaluates GELU through an fp16 table, hence Gemma's ~1e-2 and Gemma2's ~3e-3 (the final
#    soft-cap compresses its logits), and rounds activations to bf16 against BF16 weights.
#        tiny-gemma 9.7e-3 (bound 1.2e-2), tiny-gemma2 3.4e-3 (4.5e-3), model_bf16 4.2e-2 (5e-2),
#        tiny-qwen2 and -tied 1.5e-5 (2.5e-5)
# 2. Quantized files: Q8_0 and Q4_0 ("pure": every matrix) from each F32 fixture (rows of 64 and
#    128 allow 32-blocks), and Q4_K_M, Q5_K_M, Q6_K (llama-quantize's default mixes: Q6_K output
#    or tied embedding, Q6_K attn_v / ffn_down in layers 2 and 3) from the synth presets
#    gemma2-k256 and qwen2-k256 (every row a multiple of 256, so every matrix is a K-quant).
#    Both engines evaluate the same file on the same NTOK random ids (fixed seed) in one batch:
#    per token KL(llama.cpp || Windowpane) of the softmaxes, mean and max, and top-1 agreement.
#    Also each engine's own KL(f32 file || quantized file), the size of the quantization: their
#    ratio (Windowpane / llama.cpp) must stay <= 1.25 (measured 0.95-1.04), i.e. Windowpane may not
#    lose noticeably more to quantization than llama.cpp does.
#    Measured (300 ids, zen4 and haswell builds of llama.cpp; bounds in BOUNDS are about 1.5x the
#    mean and max KL, and the top-1 agreement less 3-5 points):
#        model            type    mean KL   max KL   top-1   | llama.cpp's own KL(f32 || type)
#        tiny-gemma       Q8_0    2.9e-3    2.6e-2   96.0%   | 6.7e-3
#        tiny-gemma       Q4_0    2.8e-3    2.0e-2   95.7%   | 8.0e-1
#        tiny-gemma2      Q8_0    1.6e-4    5.2e-4   96.7%   | 3.7e-4
#        tiny-gemma2      Q4_0    1.7e-4    5.0e-4   97.0%   | 5.1e-2
#        tiny-qwen2       Q8_0    3.9e-3    2.4e-2   96.7%   | 9.0e-3
#        tiny-qwen2       Q4_0    3.9e-3    2.6e-2   95.7%   | 1.19
#        tiny-qwen2-tied  Q8_0    3.2e-3    2.0e-2   95.7%   | 7.4e-3
#        tiny-qwen2-tied  Q4_0    3.0e-3    2.1e-2   95.7%   | 9.7e-1
#        gemma2-k256      Q4_K_M  6.5e-4    1.5e-3   99.7%   | 2.3e-2
#        gemma2-k256      Q5_K_M  6.3e-4    1.3e-3   99.7%   | 6.3e-3
#        gemma2-k256      Q6_K    6.7e-4    1.3e-3   99.3%   | 2.5e-3
#        qwen2-k256       Q4_K_M  1.2e-3    2.5e-3   91.0%   | 6.0e-2
#        qwen2-k256       Q5_K_M  1.2e-3    2.4e-3   92.7%   | 1.5e-2
#        qwen2-k256       Q6_K    1.2e-3    2.3e-3   90.0%   | 5.1e-3
#    The engines agree far better than either agrees with the f32 model, but not exactly, and the
#    disagreement hardly depends on the weights' type: both read the same weight values (Windowpane
#    moves Q8_0/Q4_0 into its q8/q4 bit for bit; K-quants are widened with ggml's arithmetic and
#    converted to q8, a further rounding), and the rest is how each rounds activations for its
#    quantized dot products (llama.cpp: Q8_0 blocks, Q8_K for K-quants) and, for Gemma, ggml's fp16
#    GELU table. The F32 files agree to KL < 1e-6. The fixtures' weights are deliberately large
#    (sharp logits), so their KL is larger; the random synth models have flat logits with near
#    ties, so their top-1 agreement is lower (qwen2-k256: ~91%) without meaning much.
#    Total wall time: ~30-40 s on 2 busy cores after the first run (which fetches ~11 MB from npm
#    and builds llama_side, ~30 s more); the npm package, llama_side and the GGUF files are kept in
#    WORK and remade only when their inputs change.
#
# usage: llamacpp_gguf_test.sh CLI SHARED WORK
#   CLI: windowpane-cli; SHARED: the folder holding fixtures/; WORK: a folder in the build tree
#   (npm tarball, llama.cpp libraries, llama_side, GGUF files: kept between runs).
# env: CI (set: a missing prerequisite or a failed npm fetch fails instead of skipping),
#      NTOK (300), LLAMA_VARIANT (one of llama.cpp's CPU builds, e.g. haswell; default: the best
#      for this CPU), WP_GGUF_LLAMA_ONLY=1 (only llama.cpp's side: export, quantize, llama.cpp vs
#      the reference; for working on the harness without a GGUF-capable windowpane-cli).
# Exit 77: skipped (outside CI).
set -uo pipefail
CLI="$1" SHARED="$2" WORK="$3"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bench="$root/tests/bench/llamacpp"
pkg="@node-llama-cpp/linux-x64@3.22.1"  # as tests/bench/llamacpp/run.sh
ntok="${NTOK:-300}"
ours=1
[ "${WP_GGUF_LLAMA_ONLY:-0}" = 1 ] && ours=0
start=$SECONDS

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
for tool in python3 npm g++ tar; do command -v "$tool" >/dev/null || skip "$tool not found"; done
[ -f "$SHARED/fixtures/tiny-gemma2/config.json" ] || skip "shared fixtures not found at $SHARED"
[ -x "$CLI" ] || fail "no windowpane-cli at $CLI"
# The interpreter itself: a version manager's python3 shim can take seconds per start on a busy machine.
PY="$(python3 -c 'import sys; print(sys.executable)')" || fail "python3 does not run"
mkdir -p "$WORK" || fail "cannot create $WORK"
cmp_py="$here/compare_logits.py"

# Bounds: max abs of llama.cpp's logits vs the reference, per fixture (see 1. above).
declare -A LLAMA_BOUND=([tiny-gemma]=1.2e-2 [tiny-gemma2]=4.5e-3 [model_bf16]=5e-2 [tiny-qwen2]=2.5e-5
                        [tiny-qwen2-tied]=2.5e-5)
OURS_BOUND=1e-4 OURS_BF16_BOUND=1e-6
# KL(llama.cpp || Windowpane): "mean max top1-share" per model and type (see 2. above).
cases=(tiny-gemma:q8_0 tiny-gemma:q4_0 tiny-gemma2:q8_0 tiny-gemma2:q4_0 tiny-qwen2:q8_0 tiny-qwen2:q4_0
       tiny-qwen2-tied:q8_0 tiny-qwen2-tied:q4_0
       gemma2-k256:q4_k_m gemma2-k256:q5_k_m gemma2-k256:q6_k qwen2-k256:q4_k_m qwen2-k256:q5_k_m qwen2-k256:q6_k)
declare -A BOUNDS=(
    [tiny-gemma:q8_0]="4.5e-3 4e-2 0.92"        [tiny-gemma:q4_0]="4.5e-3 3e-2 0.92"
    [tiny-gemma2:q8_0]="2.5e-4 8e-4 0.93"       [tiny-gemma2:q4_0]="2.5e-4 8e-4 0.93"
    [tiny-qwen2:q8_0]="6e-3 3.5e-2 0.92"        [tiny-qwen2:q4_0]="6e-3 4e-2 0.92"
    [tiny-qwen2-tied:q8_0]="5e-3 3e-2 0.92"     [tiny-qwen2-tied:q4_0]="5e-3 3e-2 0.92"
    [gemma2-k256:q4_k_m]="1e-3 2.5e-3 0.97"     [gemma2-k256:q5_k_m]="1e-3 2.5e-3 0.97"
    [gemma2-k256:q6_k]="1e-3 2.5e-3 0.97"
    [qwen2-k256:q4_k_m]="1.8e-3 4e-3 0.86"      [qwen2-k256:q5_k_m]="1.8e-3 4e-3 0.86"
    [qwen2-k256:q6_k]="1.8e-3 4e-3 0.86")
RATIO_BOUND=1.25

# -- llama.cpp: the npm package's prebuilt CPU libraries, fetched once into WORK -----------------
lib="$WORK/llama/package/bins/linux-x64"
if [ ! -f "$lib/libllama.v0.5.0.so" ]; then
    echo "fetching $pkg from npm ..."
    rm -rf "$WORK/llama.tmp" && mkdir -p "$WORK/llama.tmp"
    if ! (cd "$WORK/llama.tmp" && timeout 300 npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz); then
        rm -rf "$WORK/llama.tmp"
        skip "could not fetch $pkg from npm"
    fi
    rm -rf "$WORK/llama" && mv "$WORK/llama.tmp" "$WORK/llama" || fail "cannot move $WORK/llama.tmp"
fi
side="$WORK/llama_side"
if [ ! -x "$side" ] || [ "$bench/llama_side.cpp" -nt "$side" ]; then
    g++ -O2 -std=c++17 "$bench/llama_side.cpp" -o "$side.tmp" -L"$lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
        -Wl,-rpath,"$lib" && mv "$side.tmp" "$side" || fail "building llama_side"
fi
export LLAMA_LIB_DIR="$lib"
if [ -n "${LLAMA_VARIANT:-}" ]; then  # offer llama.cpp only that CPU build (e.g. haswell: AVX2, no AVX-512)
    [ -f "$lib/libggml-cpu-$LLAMA_VARIANT.so" ] || fail "no CPU build $LLAMA_VARIANT in $lib"
    mkdir -p "$WORK/cpu-$LLAMA_VARIANT" && ln -sf "$lib/libggml-cpu-$LLAMA_VARIANT.so" "$WORK/cpu-$LLAMA_VARIANT/"
    export LLAMA_LIB_DIR="$WORK/cpu-$LLAMA_VARIANT"
fi
echo "llama.cpp: $pkg, $("$side" logits /dev/null 1 /dev/null 2>&1 | grep -o 'CPU backend from .*' | sed 's|.*/||')"

# -- helpers ------------------------------------------------------------------------------------
# stale OUT DEP...: OUT is missing or older than one of DEP.
stale() {
    local out="$1" d
    shift
    [ -s "$out" ] || return 0
    for d in "$@"; do [ "$d" -nt "$out" ] && return 0; done
    return 1
}
gguf="$WORK/gguf" out="$WORK/out"
mkdir -p "$gguf" && rm -rf "$out" && mkdir -p "$out" || fail "cannot create $gguf and $out"
# export DIR NAME: DIR's model as $gguf/NAME-f32.gguf (or -bf16: the folder's dtype).
export_gguf() {
    local dir="$1" name="$2" dst
    dst="$gguf/$name-$3.gguf"
    if stale "$dst" "$dir/model.safetensors" "$dir/config.json" "$bench/gguf_export.py"; then
        "$PY" "$bench/gguf_export.py" "$dir" "$dst.tmp" >/dev/null && mv "$dst.tmp" "$dst" || fail "gguf_export.py $dir"
    fi
}
# quantize NAME TYPE: $gguf/NAME-f32.gguf -> $gguf/NAME-TYPE.gguf with llama.cpp's quantizer.
quantize() {
    local src="$gguf/$1-f32.gguf" dst="$gguf/$1-$2.gguf"
    if stale "$dst" "$src" "$side"; then
        "$side" quantize "$src" "$dst.tmp" "$2" 2>"$out/quantize-$1-$2.log" && mv "$dst.tmp" "$dst" ||
            fail "llama_side quantize $src $2: $(tail -3 "$out/quantize-$1-$2.log")"
    fi
}
llama_logits() {  # FILE IDS OUT
    "$side" logits "$1" "$2" "$3" 2>"$3.log" || fail "llama.cpp logits on $1: $(tail -3 "$3.log")"
}
our_logits() {  # FILE IDS OUT
    XDG_CACHE_HOME="${XDG_CACHE_HOME:-$WORK/cache}" "$CLI" logits --model "$1" --ids "$2" --out "$3" 2>"$3.log" ||
        fail "windowpane-cli logits --model $1: $(tail -3 "$3.log")"
}
ids_of() { "$PY" -c 'import json, sys; print(",".join(map(str, json.load(open(sys.argv[1]))["input_ids"])))' "$1"; }

# -- 1. F32 (and the BF16 fixture) against the references ---------------------------------------
failures=0
fixtures=(tiny-gemma tiny-gemma2 tiny-gemma2/model_bf16 tiny-qwen2 tiny-qwen2-tied)
echo
echo "| model | case | llama.cpp vs reference | bound | Windowpane vs reference | bound |"
echo "|---|---|---|---|---|---|"
for f in "${fixtures[@]}"; do
    dir="$SHARED/fixtures/$f" name="${f##*/}"
    dtype=f32
    grep -q '"BF16"' <(head -c 4096 "$dir/model.safetensors" | tr -d '\0') && dtype=bf16
    export_gguf "$dir" "$name" "$dtype"
    file="$gguf/$name-$dtype.gguf"
    for ref in "$dir"/reference/*.json; do
        c="$(basename "$ref" .json)"
        ids="$(ids_of "$ref")"
        llama_logits "$file" "$ids" "$out/$name-$c-llama.f32"
        theirs="$("$PY" "$cmp_py" maxabs "${ref%.json}.logits.f32" "$out/$name-$c-llama.f32" 1000 "${LLAMA_BOUND[$name]}")" ||
            { theirs="$theirs FAIL"; failures=$((failures + 1)); }
        mine="-" bound="$OURS_BOUND"
        if [ "$ours" = 1 ]; then
            our_logits "$file" "$ids" "$out/$name-$c-ours.f32"
            against="${ref%.json}.logits.f32"
            if [ "$dtype" = bf16 ]; then
                # Windowpane computes BF16 weights in bf16 (3.4e-2 off the f32-computed reference,
                # as llama.cpp): the GGUF file must give what the safetensors folder gives.
                our_logits "$dir" "$ids" "$out/$name-$c-folder.f32"
                against="$out/$name-$c-folder.f32" bound="$OURS_BF16_BOUND"
            fi
            mine="$("$PY" "$cmp_py" maxabs "$against" "$out/$name-$c-ours.f32" 1000 "$bound")" ||
                { mine="$mine FAIL"; failures=$((failures + 1)); }
            [ "$dtype" = bf16 ] && mine="$mine (vs its safetensors run)"
        fi
        echo "| $name ${dtype^^} | $c | $theirs | ${LLAMA_BOUND[$name]} | $mine | $bound |"
    done
done

# -- 2. Quantized files: Windowpane against llama.cpp on the same file --------------------------
# The k256 synth models: f32 folders written by windowpane-cli synth (its fixed default seed).
for preset in gemma2-k256 qwen2-k256; do
    dir="$gguf/$preset"
    if stale "$dir/model.safetensors" "$CLI"; then
        "$CLI" synth --preset "$preset" --dtype f32 --out "$dir" >/dev/null 2>"$out/synth-$preset.log" ||
            fail "windowpane-cli synth --preset $preset: $(tail -3 "$out/synth-$preset.log")"
    fi
    export_gguf "$dir" "$preset" f32
done
ids="$("$PY" -c 'import random, sys; r = random.Random(20240607); print(",".join(str(r.randrange(1000)) for _ in range(int(sys.argv[1]))))' "$ntok")"
echo
echo "$ntok random ids, one batch. KL(llama.cpp || Windowpane) per token, nats, on the same file; quantization:"
echo "each engine's mean KL(f32 file || quantized file), and Windowpane's over llama.cpp's."
echo
echo "| model | type | mean KL | max KL | top-1 agreement | bound (mean, max, top-1) | quantization: llama.cpp | Windowpane | ratio (bound $RATIO_BOUND) |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    name="${c%%:*}" type="${c##*:}"
    quantize "$name" "$type"
    base="$out/$name-f32-rand"
    if [ ! -f "$base-llama.f32" ]; then
        llama_logits "$gguf/$name-f32.gguf" "$ids" "$base-llama.f32"
        [ "$ours" = 0 ] || our_logits "$gguf/$name-f32.gguf" "$ids" "$base-ours.f32"
    fi
    llama_logits "$gguf/$name-$type.gguf" "$ids" "$out/$name-$type-llama.f32"
    read -r bmean bmax btop1 <<< "${BOUNDS[$c]}"
    if [ "$ours" = 1 ]; then
        our_logits "$gguf/$name-$type.gguf" "$ids" "$out/$name-$type-ours.f32"
        row="$("$PY" "$cmp_py" kl "$out/$name-$type-llama.f32" "$out/$name-$type-ours.f32" 1000 "$bmean" "$bmax" "$btop1" \
            "$base-llama.f32" "$base-ours.f32" "$RATIO_BOUND")" || { row="$row FAIL"; failures=$((failures + 1)); }
        read -r mean worst top1 theirs_q ours_q ratio verdict <<< "$row"
    else
        theirs_q="$("$PY" "$cmp_py" kl "$base-llama.f32" "$out/$name-$type-llama.f32" 1000 1 1 0 | cut -d' ' -f1)"
        mean="-" worst="-" top1="-" ours_q="-" ratio="-" verdict=""
    fi
    echo "| $name | ${type^^} | $mean | $worst | $top1 | $bmean, $bmax, $("$PY" -c "print('%g%%' % (100 * $btop1))") | $theirs_q | $ours_q | $ratio | ${verdict:-}"
done
echo
echo "llamacpp_gguf_test: $((SECONDS - start)) s"
[ "$failures" = 0 ] || fail "$failures comparison(s) out of bounds (marked FAIL above)"

# The set-up the side-by-side benchmarks share, sourced by tests/bench/llamacpp/run.sh and
# tests/bench/batching.sh (not run on its own): llama.cpp's libraries and the llama_side harness
# built against them, and each case's model folder and GGUF file. Nothing of it is committed.
#
# The sourcing script sets root (the repository), work (BENCH_DIR), cli (windowpane-cli),
# flavour (LLAMA: prebuilt or native) and avx2 (AVX2: 0 or 1) first.
#
# llama_setup: sets lib (llama.cpp's libraries) and side (llama_side), exports LLAMA_LIB_DIR.
#   prebuilt: the node-llama-cpp npm package's CPU builds (llama.cpp picks the best one the CPU
#   runs); native: llama.cpp compiled for this CPU (GGML_NATIVE) from the source the package
#   carries, the first time into $work/llama-native (~10 minutes on 2 cores, with cmake and g++).
# bench_model SHAPE PRECISION: sets model (the `windowpane-cli synth` folder, bf16 or, for f32,
#   f32) and gguf (llama.cpp's file: the folder's BF16/F32 GGUF, or for q8 / q4 the Q8_0 / Q4_0
#   one made from it by llama.cpp's own quantizer, every matrix in that type, "pure"), making what
#   is missing.

llama_pkg="@node-llama-cpp/linux-x64@3.22.1"   # the prebuilt CPU libraries
llama_src_pkg="node-llama-cpp@3.22.1"          # the same llama.cpp as source (llama/gitRelease.bundle)

llama_setup() {
    case "$flavour" in
    prebuilt)
        lib="$work/llama/package/bins/linux-x64"
        if [ ! -d "$lib" ]; then
            (cd "$work" && rm -rf llama && mkdir llama && cd llama && npm pack --silent "$llama_pkg" >/dev/null && tar xzf ./*.tgz)
        fi
        side="$work/llama_side"
        if [ ! -x "$side" ] || [ "$root/tests/bench/llamacpp/llama_side.cpp" -nt "$side" ]; then
            g++ -O2 -std=c++17 "$root/tests/bench/llamacpp/llama_side.cpp" -o "$side" -L"$lib" -l:libllama.v0.5.0.so \
                -l:libggml.v0.5.0.so -Wl,-rpath,"$lib"
        fi
        export LLAMA_LIB_DIR="$lib" ;;
    native)
        [ "$avx2" = 1 ] && { echo "AVX2=1 needs the prebuilt llama.cpp (its haswell build)" >&2; exit 1; }
        local nat="$work/llama-native"
        lib="$nat/build/bin"
        if [ ! -f "$lib/libllama.so" ]; then
            mkdir -p "$nat"
            if [ ! -d "$nat/src" ]; then
                (cd "$nat" && rm -rf pkg && mkdir pkg && cd pkg && npm pack --silent "$llama_src_pkg" >/dev/null &&
                    tar xzf ./*.tgz package/llama/gitRelease.bundle && git clone -q package/llama/gitRelease.bundle ../src)
            fi
            echo "building llama.cpp for this CPU (GGML_NATIVE) in $nat/build ..." >&2
            cmake -S "$nat/src" -B "$nat/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON \
                -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
                -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON >"$nat/cmake.log"
            cmake --build "$nat/build" -j"$(nproc)" --target llama llama-bench >"$nat/build.log"
        fi
        side="$work/llama_side_native"
        if [ ! -x "$side" ] || [ "$root/tests/bench/llamacpp/llama_side.cpp" -nt "$side" ]; then
            g++ -O2 -std=c++17 "$root/tests/bench/llamacpp/llama_side.cpp" -o "$side" -L"$lib" -lllama -lggml -lggml-base \
                -Wl,-rpath,"$lib"
        fi
        # The CPU backend is linked in: nothing to load from a directory.
        mkdir -p "$nat/no-backends"
        export LLAMA_LIB_DIR="$nat/no-backends" ;;
    *) echo "LLAMA is prebuilt or native, not '$flavour'" >&2; exit 1 ;;
    esac
}

bench_model() {
    local shape="$1" prec="$2" dtype=bf16
    [ "$prec" = f32 ] && dtype=f32
    model="$work/$shape-$dtype"
    [ -f "$model/config.json" ] || "$cli" synth --preset "$shape" --dtype "$dtype" --out "$model" >&2
    local gguf_src="$work/$shape-$dtype.gguf"
    [ -f "$gguf_src" ] || python3 "$root/tests/bench/llamacpp/gguf_export.py" "$model" "$gguf_src" >&2
    gguf="$gguf_src"
    case "$prec" in
        q8) gguf="$work/$shape-q8_0.gguf"; [ -f "$gguf" ] || "$side" quantize "$gguf_src" "$gguf" q8_0 >&2 ;;
        q4) gguf="$work/$shape-q4_0.gguf"; [ -f "$gguf" ] || "$side" quantize "$gguf_src" "$gguf" q4_0 >&2 ;;
    esac
}

# Memory read bandwidth with THREADS threads, GB/s (`bench-memory`), measured right before each
# engine's turn: it swings from minute to minute on a shared machine.
bandwidth() {
    "$cli" bench-memory --threads "$threads" |
        awk -v t="$threads" 'index($0, ", " t " thread") { for (i = 2; i <= NF; i++) if ($i == "GB/s") print $(i - 1) }'
}

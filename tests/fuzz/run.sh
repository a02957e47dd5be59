#!/usr/bin/env bash
# The longer fuzz run: configures a clang build with WP_BUILD_FUZZ=ON into build-fuzz/, builds the
# libFuzzer targets and runs each for SECONDS (default 600) on its corpus (seeded from the fixtures,
# grown by the runs). Crash, timeout and OOM inputs are written to build-fuzz/findings/.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
seconds="${1:-600}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${WP_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(safetensors_fuzz model_config_fuzz chat_template_fuzz messages_json_fuzz tokenizer_json_fuzz
         sentencepiece_model_fuzz openai_request_fuzz)

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWP_BUILD_FUZZ=ON -DWP_BUILD_GUI=OFF -DWP_BUILD_TESTS=OFF
cmake --build "$build" -j "${WP_JOBS:-$(nproc)}" --target "${targets[@]}"

mkdir -p "$build/findings"
status=0
for t in "${targets[@]}"; do
    echo "== $t: ${seconds}s"
    "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=5 -print_final_stats=1 \
        -artifact_prefix="$build/findings/$t-" "$build/tests/fuzz/corpus/$t" || status=1
done
exit $status

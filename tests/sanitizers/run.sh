#!/usr/bin/env bash
# The sanitizer runs CI makes after the README's tests (.ci/run), each in its own build folder:
#   address  GCC, AddressSanitizer + UndefinedBehaviorSanitizer: the core, CLI and UI tests
#            (build-asan/; every test but the package and the timing-sensitive responsiveness probe)
#   thread   GCC, ThreadSanitizer: the tests where threads meet — the thread pool, forward passes on
#            it, generation and cancellation (wp_thread_tests), the UI's inference worker cancelled
#            from another thread and two workers at once as in the compare view (wp_worker_tests),
#            the store (wp_store_tests) and the server's batching scheduler (wp_scheduler_tests)
#            (build-tsan/). Not wp_gui_tests: Debian's Qt is not
#            built with TSan, and its queued calls hand data between threads under a futex-based
#            QMutex TSan cannot see, so each of them would be reported (about 750 in one run).
#   fuzz     clang + libFuzzer: `ctest -L fuzz`, every tests/fuzz target for WP_FUZZ_SECONDS
#            (default 15) each (build-fuzz/; tests/fuzz/run.sh runs them longer)
# Any finding stops the program that hit it, so its test fails and this script exits non-zero.
#   tests/sanitizers/run.sh [address] [thread] [fuzz]      (no argument: all three)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/sanitizers"
jobs="${WP_JOBS:-2}"
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(address thread fuzz)

configure() {  # configure DIR SANITIZER [cmake args...]
    local dir="$1" sanitizer="$2"
    shift 2
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWP_SANITIZE="$sanitizer" "$@" >/dev/null
}

run_address() {
    local dir="${WP_ASAN_BUILD_DIR:-$root/build-asan}"
    configure "$dir" address
    cmake --build "$dir" -j "$jobs"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    (cd "$dir" && ctest --output-on-failure -j "$jobs" -LE "package|fuzz" \
        -E "Gui.EventLoopStaysResponsiveWhileTokensStream")
}

run_thread() {
    local dir="${WP_TSAN_BUILD_DIR:-$root/build-tsan}"
    configure "$dir" thread
    cmake --build "$dir" -j "$jobs" --target wp_thread_tests wp_worker_tests wp_store_tests wp_scheduler_tests
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tsan.supp"
    # OpenBLAS's own threads are not instrumented; the engine's pool is what is under test.
    export OPENBLAS_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen
    local t
    for t in wp_thread_tests wp_worker_tests wp_store_tests wp_scheduler_tests; do
        echo "-- $t"
        "$dir/tests/$t" --gtest_brief=1
    done
}

run_fuzz() {
    local dir="${WP_FUZZ_BUILD_DIR:-$root/build-fuzz}"
    CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWP_BUILD_FUZZ=ON \
        -DWP_BUILD_GUI=OFF -DWP_BUILD_TESTS=OFF -DWP_FUZZ_SECONDS="${WP_FUZZ_SECONDS:-15}" >/dev/null
    cmake --build "$dir" -j "$jobs"
    (cd "$dir" && ctest --output-on-failure -j "$jobs" -L fuzz)
}

for m in "${modes[@]}"; do
    case "$m" in
        address | thread | fuzz)
            echo "== sanitizers: $m ($(date -u +%H:%M:%S))"
            start=$SECONDS
            "run_$m"
            echo "== sanitizers: $m passed in $((SECONDS - start)) s"
            ;;
        *) echo "usage: $0 [address] [thread] [fuzz]" >&2; exit 2 ;;
    esac
done

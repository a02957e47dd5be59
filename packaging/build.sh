#!/usr/bin/env bash
# Configures and builds Windowpane into ./build (Release, Ninja, ccache when present).
# Usage: packaging/build.sh [extra cmake arguments]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WP_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "${WP_JOBS:-2}"

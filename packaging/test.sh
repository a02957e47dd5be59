#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test suite (the README's test command).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
cd "${WP_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j 2 "$@"

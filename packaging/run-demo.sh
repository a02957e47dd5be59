#!/usr/bin/env bash
# Installs the dependencies, builds, and runs Windowpane on its embedded default model
# (resources/models/windowpane-demo-gemma2). Until the desktop app exists this is a command-line
# generation: the model card, then a greedy continuation of "<bos>In the beginning" (ids 2,1141,265,1823,1252).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
cli="${WP_BUILD_DIR:-$root/build}/app/windowpane-cli"
model="$root/resources/models/windowpane-demo-gemma2"
"$cli" info --model "$model"
echo
echo "generate (token ids):"
"$cli" generate --model "$model" --ids 2,1141,265,1823,1252 --max-new-tokens 48 --greedy

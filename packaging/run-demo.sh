#!/usr/bin/env bash
# Installs the dependencies, builds, and launches Windowpane on its embedded default model
# (resources/models/windowpane-demo-gemma2). Without a display it chats in the terminal instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
build="${WP_BUILD_DIR:-$root/build}"
model="$root/resources/models/windowpane-demo-gemma2"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ -n "${QT_QPA_PLATFORM:-}" ]; then
  exec "$build/app/windowpane" --model "$model" "$@"
fi
echo "No display found: chatting in the terminal instead (windowpane-cli chat). /quit ends." >&2
exec "$build/app/windowpane-cli" chat --model "$model" --temperature 0.8 --top-p 0.9

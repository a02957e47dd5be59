#!/usr/bin/env bash
# Runs a command against a real Secret Service: a private D-Bus session with gnome-keyring-daemon
# unlocked on a throwaway keyring in a temporary HOME, so nothing reaches the user's own keys.
# Sets WP_SECRET_SERVICE=1 for the command. Exits 77 (skipped) where a tool is missing, except under
# CI, where that fails (packaging/install-deps.sh installs them).
set -euo pipefail
for tool in dbus-run-session gnome-keyring-daemon secret-tool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
      echo "with_secret_service: $tool is missing" >&2
      exit 1
    fi
    echo "with_secret_service: $tool is missing: skipped" >&2
    exit 77
  fi
done
if [ -z "${WP_SECRET_SESSION:-}" ]; then
  export WP_SECRET_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
export HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_CONFIG_HOME="$home/.config"
# The daemon reads the new keyring's password on stdin and prints the variables its clients need.
eval "$(printf 'windowpane-test\n' | gnome-keyring-daemon --unlock --components=secrets)"
export WP_SECRET_SERVICE=1
"$@"

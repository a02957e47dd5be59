#!/usr/bin/env bash
# `windowpane-cli serve` against the official OpenAI client: starts an open server (a causal LM and
# two task-head models, --parallel 4) and one keyed through WP_API_KEY, then runs conformance.mjs.
# The `openai` npm package is pinned and installed once into WORK (nothing committed).
#
# usage: conformance_test.sh CLI SHARED WORK
# env: CI (set: missing node/npm or a failed npm fetch fails instead of skipping). Exit 77: skipped.
set -uo pipefail
CLI="$1" SHARED="$2" WORK="$3"
here="$(cd "$(dirname "$0")" && pwd)"
pkg="openai@4.95.0"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
for tool in node npm; do command -v "$tool" >/dev/null || skip "$tool not found"; done
[ -f "$SHARED/fixtures/tiny-qwen2/config.json" ] || skip "shared fixtures not found at $SHARED"
[ -x "$CLI" ] || fail "no windowpane-cli at $CLI"
mkdir -p "$WORK" || fail "cannot create $WORK"
WORK="$(cd "$WORK" && pwd)"

openai_dir="$WORK/${pkg/@/-}"
if [ ! -f "$openai_dir/node_modules/openai/package.json" ]; then
    echo "installing $pkg from npm ..."
    rm -rf "$openai_dir.tmp" && mkdir -p "$openai_dir.tmp"
    if ! timeout 300 npm install --no-save --no-audit --no-fund --silent --prefix "$openai_dir.tmp" "$pkg" >/dev/null; then
        rm -rf "$openai_dir.tmp"
        skip "could not install $pkg from npm"
    fi
    rm -rf "$openai_dir" && mv "$openai_dir.tmp" "$openai_dir" || fail "cannot move $openai_dir.tmp"
fi

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

# start NAME ARGS...: runs serve with --port 0 in the background; sets $base to its address.
start() {
    local name="$1" log="$WORK/$1.log"
    shift
    "$CLI" serve --port 0 "$@" 2>"$log" &
    pids+=($!)
    local pid=$!
    for _ in $(seq 1 1200); do
        base="$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/listening on //')"
        [ -n "$base" ] && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "$name: serve exited before listening"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "$name: serve did not print its address"
}

ctx=256
start open --model "$SHARED/fixtures/tiny-qwen2" --model "$SHARED/heads/tiny-gemma2-reward" \
    --model "$SHARED/heads/tiny-gemma-seqcls" --parallel 4 --ctx "$ctx"
open_base="$base"
open_pid="${pids[0]}"
key="test-key-$RANDOM$RANDOM"
WP_API_KEY="$key" start keyed --model "$SHARED/fixtures/tiny-qwen2" --parallel 1
keyed_base="$base"

OPENAI_DIR="$openai_dir" BASE="$open_base" KEYED_BASE="$keyed_base" API_KEY="$key" SHARED="$SHARED" \
    CHAT_MODEL=tiny-qwen2 HEADS=tiny-gemma2-reward,tiny-gemma-seqcls CTX="$ctx" \
    node "$here/conformance.mjs" || { echo "--- server log:" >&2; tail -20 "$WORK/open.log" >&2; fail "conformance.mjs"; }

# SIGTERM stops the server cleanly (exit status 0).
kill -TERM "$open_pid"
wait "$open_pid"
status=$?
[ "$status" -eq 0 ] || fail "serve exited with $status after SIGTERM"
echo "PASS"

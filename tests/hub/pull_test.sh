#!/usr/bin/env bash
# windowpane-cli pull, search, login and models against a fake hub (fake_hub.py, reached through
# HF_ENDPOINT): the cache layout huggingface_hub writes, resume after a dropped connection and after
# a cancel, hash mismatches, gated repos, a full disk, and a second pull that downloads nothing.
# Usage: pull_test.sh CLI SHARED WORK. Exit 77: skipped (no python3 or fixtures, outside CI).
set -uo pipefail
CLI="$1" SHARED="$2" WORK="$3"
here="$(cd "$(dirname "$0")" && pwd)"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
command -v python3 >/dev/null || skip "python3 not found"
[ -f "$SHARED/fixtures/tiny-gemma2/config.json" ] || skip "shared fixtures not found at $SHARED"

rm -rf "$WORK" && mkdir -p "$WORK/root/acme"
for m in tiny-gemma2 tiny-qwen2; do
  mkdir -p "$WORK/root/acme/$m"
  find "$SHARED/fixtures/$m" -maxdepth 1 -type f -exec cp {} "$WORK/root/acme/$m/" \;
done
cp -r "$WORK/root/acme/tiny-gemma2" "$WORK/root/acme/gated-gemma2"
mkdir -p "$WORK/root/acme/bin-only"
echo '{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}' > "$WORK/root/acme/bin-only/config.json"
head -c 5000 /dev/urandom > "$WORK/root/acme/bin-only/pytorch_model.bin"
echo '{"downloads": 900, "likes": 3, "tags": ["transformers", "safetensors", "gemma2", "text-generation"]}' > "$WORK/root/acme/tiny-gemma2/.hub.json"
echo '{"downloads": 500, "likes": 9, "tags": ["transformers", "safetensors", "qwen2", "text-generation"]}' > "$WORK/root/acme/tiny-qwen2/.hub.json"
echo '{"downloads": 800, "likes": 1, "tags": ["transformers", "pytorch", "llama"]}' > "$WORK/root/acme/bin-only/.hub.json"

export HF_HOME="$WORK/hf" XDG_CONFIG_HOME="$WORK/config" XDG_CACHE_HOME="$WORK/cache"
unset HF_TOKEN HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN_PATH
LOG="$WORK/hub.log"
HUB_PID=""
start_hub() {
  # The API answers as localhost, the CDN as 127.0.0.1: two hosts, as on the real hub.
  python3 "$here/fake_hub.py" --root "$WORK/root" --log "$LOG" --gated acme/gated-gemma2 --token sekrit --cdn-host 127.0.0.1 "$@" \
    > "$WORK/port" 2> "$WORK/hub.err" &
  HUB_PID=$!
  for _ in $(seq 100); do grep -q '^PORT ' "$WORK/port" 2>/dev/null && break; sleep 0.1; done
  grep -q '^PORT ' "$WORK/port" || fail "the fake hub did not start: $(cat "$WORK/hub.err")"
  export HF_ENDPOINT="http://localhost:$(awk '/^PORT/ {print $2}' "$WORK/port")"
}
stop_hub() { [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null; HUB_PID=""; }
trap stop_hub EXIT

run() {  # run EXPECTED_STATUS ARGS...: output in $OUT and $ERR
  local want="$1"; shift
  "$CLI" "$@" > "$WORK/out" 2> "$WORK/err"; local rc=$?
  OUT="$(cat "$WORK/out")" ERR="$(cat "$WORK/err")"
  [ "$rc" = "$want" ] || fail "windowpane-cli $* exited $rc, expected $want: $ERR"
}
has() { grep -qF -- "$2" <<< "$1" || fail "expected \"$2\" in: $1"; }
repo_dir() { echo "$HF_HOME/hub/models--acme--$1"; }

# 1. A pull through a dropped connection and a corrupted file: the layout huggingface_hub writes.
start_hub --cut 'model.safetensors:1000' --corrupt-once 'tokenizer.model' 'tokenizer_config.json'
run 0 pull acme/tiny-gemma2
snap="$OUT"
has "$ERR" "6 files, 6 downloaded"
python3 - "$(repo_dir tiny-gemma2)" "$snap" "$HF_ENDPOINT" "$SHARED/fixtures/tiny-gemma2" <<'PY' || fail "cache layout"
import hashlib, json, os, sys, urllib.request
repo, snap, endpoint, src = sys.argv[1:]
info = json.load(urllib.request.urlopen(endpoint + "/api/models/acme/tiny-gemma2?blobs=true"))
commit = info["sha"]
assert open(os.path.join(repo, "refs", "main")).read() == commit, "refs/main"
assert snap == os.path.join(repo, "snapshots", commit), snap
lfs = {s["rfilename"]: s.get("lfs") for s in info["siblings"]}
names = sorted(os.listdir(snap))
assert names == sorted(["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
                        "tokenizer.model", "tokenizer_config.json"]), names
for name in names:
    link = os.path.join(snap, name)
    assert os.path.islink(link), name
    target = os.readlink(link)
    assert target.startswith("../../blobs/"), target
    data = open(link, "rb").read()
    assert data == open(os.path.join(src, name), "rb").read(), name + " differs from the repo's file"
    blob = os.path.basename(target)
    if lfs[name]:
        assert blob == hashlib.sha256(data).hexdigest() == lfs[name]["sha256"], name
    else:
        assert blob == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), name
left = [b for b in os.listdir(os.path.join(repo, "blobs")) if b.endswith(".incomplete")]
assert not left, left
PY
grep -q '"path": "/cdn/[0-9a-f]*?repo=acme/tiny-gemma2&path=model.safetensors", "range": "bytes=1000-"' "$LOG" ||
  fail "no resumed request for model.safetensors: $(cat "$LOG")"
[ "$(grep -c 'path=tokenizer.model", "range": null' "$LOG")" = 2 ] || fail "the corrupted tokenizer.model was not fetched again"

# 2. A second pull downloads nothing; the model opens by name.
lines=$(wc -l < "$LOG")
run 0 pull acme/tiny-gemma2
has "$ERR" "0 downloaded"
if tail -n +"$((lines + 1))" "$LOG" | grep -qE '/resolve/|/cdn/'; then fail "the second pull downloaded: $(tail -n +"$((lines + 1))" "$LOG")"; fi
run 0 generate --model acme/tiny-gemma2 --ids 2 --max-new-tokens 2
run 0 models --json
has "$OUT" '"name": "acme/tiny-gemma2"'
has "$OUT" '"supported": true'

# 2b. A partial file that already holds every byte (the last pull stopped while checking it) is
# checked, not fetched again.
rm -rf "$(repo_dir tiny-qwen2)"
src="$WORK/root/acme/tiny-qwen2/model.safetensors"
mkdir -p "$(repo_dir tiny-qwen2)/blobs"
cp "$src" "$(repo_dir tiny-qwen2)/blobs/$(sha256sum "$src" | cut -c1-64).incomplete"
lines=$(wc -l < "$LOG")
run 0 pull acme/tiny-qwen2
if tail -n +"$((lines + 1))" "$LOG" | grep -q 'path=model.safetensors'; then fail "a complete partial file was fetched again"; fi
rm -rf "$(repo_dir tiny-qwen2)"

# 3. Gated: no token, a token without access, then the right one (saved by login).
run 1 pull acme/gated-gemma2
has "$ERR" "acme/gated-gemma2 is gated"
has "$ERR" "windowpane-cli login"
[ ! -d "$(repo_dir gated-gemma2)/snapshots" ] || fail "a refused pull left a snapshot"
HF_TOKEN=wrong run 1 pull acme/gated-gemma2
has "$ERR" "this token has no access"
has "$ERR" "$HF_ENDPOINT/acme/gated-gemma2"
run 0 login --token sekrit
[ "$(stat -c %a "$HF_HOME/token")" = 600 ] || fail "the token file is readable by others"
run 0 pull acme/gated-gemma2
grep -q '"path": "/api/models/acme/gated-gemma2/revision/main?blobs=true", "range": null, "auth": true, "status": 200' "$LOG" ||
  fail "the saved token was not sent"
if grep -q '"path": "/cdn/.*gated-gemma2.*"auth": true' "$LOG"; then fail "the token went on to the CDN"; fi

stop_hub

# 3b. As the real hub does it: the gated repo's info is public, its files are not.
start_hub --gate-files-only
rm -rf "$(repo_dir gated-gemma2)" "$HF_HOME/token"
run 1 pull acme/gated-gemma2
has "$ERR" "acme/gated-gemma2 is gated"
[ -z "$(find "$(repo_dir gated-gemma2)" -type f 2>/dev/null)" ] || fail "a refused download left files: $(find "$(repo_dir gated-gemma2)" -type f)"

# 4. Names the hub does not have, and a repo without safetensors weights.
run 1 pull acme/nothing
has "$ERR" "acme/nothing: no such model on $HF_ENDPOINT"
run 1 pull acme/tiny-gemma2 --revision v9
has "$ERR" 'has no revision "v9"'
run 1 pull acme/bin-only
has "$ERR" "no .safetensors weights"
run 2 pull not/a/name

# 5. Search: the families Windowpane runs, most downloaded first; --all shows the others.
run 0 search tiny --json
python3 -c 'import json,sys; ids=[m["id"] for m in json.loads(sys.argv[1])]; assert ids==["acme/tiny-gemma2","acme/tiny-qwen2"], ids' "$OUT" ||
  fail "search: $OUT"
run 0 search --author acme --sort likes --all
has "$OUT" "acme/bin-only"
stop_hub

# 6. Bytes that never match their hash: rejected twice, reported, nothing kept.
start_hub --corrupt-always 'model.safetensors'
run 1 pull acme/tiny-qwen2
has "$ERR" "model.safetensors did not match the hub's SHA-256"
[ -z "$(ls "$(repo_dir tiny-qwen2)/blobs" | grep -E '^[0-9a-f]{64}')" ] || fail "a mismatched blob was kept"
[ ! -d "$(repo_dir tiny-qwen2)/snapshots" ] || fail "a failed pull left a snapshot"
stop_hub

# 7. A slow hub and Ctrl-C: the partial file stays, no snapshot; the next pull resumes it.
start_hub --rate 40000
"$CLI" pull acme/tiny-qwen2 > "$WORK/out" 2> "$WORK/err" &
pid=$!
part=""
for _ in $(seq 200); do
  part="$(ls "$(repo_dir tiny-qwen2)"/blobs/*.incomplete 2>/dev/null | head -1)"
  [ -n "$part" ] && [ "$(stat -c %s "$part")" -gt 20000 ] && break
  sleep 0.1
done
[ -n "$part" ] || fail "no partial download appeared"
kill -INT "$pid"
wait "$pid"; rc=$?
[ "$rc" = 1 ] || fail "a cancelled pull exited $rc: $(cat "$WORK/err")"
grep -q "cancelled; pull again to resume" "$WORK/err" || fail "cancel message: $(cat "$WORK/err")"
[ -f "$part" ] || fail "the partial file was removed"
[ ! -d "$(repo_dir tiny-qwen2)/snapshots" ] || fail "a cancelled pull left a snapshot"
run 0 models
has "$OUT" "Unfinished download: acme/tiny-qwen2"
stop_hub
start_hub
run 0 pull acme/tiny-qwen2
grep -qE '"path": "/cdn/[0-9a-f]*\?repo=acme/tiny-qwen2&path=model.safetensors", "range": "bytes=[1-9][0-9]*-"' "$LOG" ||
  fail "the pull after a cancel did not resume"
run 0 generate --model acme/tiny-qwen2 --ids 2 --max-new-tokens 2

# 8. A disk too small: refused before any byte, with the sizes (needs a tmpfs; root only).
mkdir -p "$WORK/small"
if mount -t tmpfs -o size=256k tmpfs "$WORK/small" 2>/dev/null; then
  HF_HUB_CACHE="$WORK/small" "$CLI" pull acme/tiny-gemma2 > "$WORK/out" 2> "$WORK/err"; rc=$?
  left="$(find "$WORK/small" -type f | wc -l)"
  umount "$WORK/small"
  ERR="$(cat "$WORK/err")"
  [ "$rc" = 1 ] || fail "a pull onto a full disk exited $rc: $ERR"
  [ "$left" = 0 ] || fail "a pull refused for space left files behind"
  has "$ERR" "acme/tiny-gemma2 needs"
  has "$ERR" "free: make room, or set HF_HUB_CACHE"
else
  echo "note: no tmpfs (not root): the full-disk case was not run"
fi
echo "pull_test: all passed"

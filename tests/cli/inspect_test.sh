#!/usr/bin/env bash
# windowpane-cli lens and diverge: lens --json against every ../shared/lens case and, on held-out
# random ids, against `logits` of the checkpoint cut after each layer; diverge --json of a model
# with itself (0), f32 against q8 (positive, its summary recomputed from its rows), its refusals.
# Usage: inspect_test.sh CLI SHARED. Exit 77: skipped (no python3 or fixtures, outside CI).
set -uo pipefail
CLI="$1" SHARED="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
command -v python3 >/dev/null || skip "python3 not found"
ls "$SHARED"/lens/*/*.json >/dev/null 2>&1 || skip "no logit-lens references under $SHARED/lens"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Shared checks of one lens cell against expected top ids / log-probabilities / entropy.
cat > "$WORK/check.py" <<'PY'
def check_cell(got_ids, got_lps, got_h, ids, lps, h, where, tol=1e-4):
    assert abs(got_h - h) <= tol, (where, "entropy", got_h, h)
    for k in range(len(ids)):
        assert abs(got_lps[k] - lps[k]) <= tol, (where, k, got_lps[k], lps[k])
        if got_ids[k] != ids[k]:
            tied = any(ids[j] == got_ids[k] and abs(lps[j] - lps[k]) <= tol for j in range(len(ids)))
            tied = tied or (k == len(ids) - 1 and abs(got_lps[k] - lps[k]) <= tol)
            assert tied, (where, "rank", k, got_ids[k], ids[k])
PY

n=0
for ref in "$SHARED"/lens/*/*.json; do
  name="$(basename "$(dirname "$ref")")"
  ids="$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["input_ids"])))' "$ref")"
  "$CLI" lens --model "$SHARED/fixtures/$name" --ids "$ids" --json > "$WORK/out.json" || fail "lens on $ref"
  python3 - "$ref" "$WORK/out.json" "$WORK" <<'PY' || fail "$ref"
import json, sys
sys.path.insert(0, sys.argv[3])
from check import check_cell
ref, got = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert got["input_ids"] == ref["input_ids"] and got["layers"] == ref["layers"]
for l in range(ref["layers"]):
    for t in range(len(ref["input_ids"])):
        check_cell(got["top_ids"][l][t], got["top_logprobs"][l][t], got["entropy"][l][t],
                   ref["top_ids"][l][t], ref["top_logprobs"][l][t], ref["entropy"][l][t], (l, t))
PY
  n=$((n + 1))
done
echo "lens: $n shared cases"

# Held out: random ids; layer l's lens is the output of the checkpoint cut after layer l.
for model in "$SHARED"/fixtures/tiny-gemma "$SHARED"/fixtures/tiny-gemma2 "$SHARED"/fixtures/tiny-qwen2 "$SHARED"/fixtures/tiny-qwen2-tied; do
  ids="$(python3 -c 'import random,sys; random.seed(sys.argv[1]); print(",".join(str(random.randrange(1000)) for _ in range(17)))' "$model")"
  "$CLI" lens --model "$model" --ids "$ids" --json > "$WORK/held.json" || fail "lens on $model"
  layers="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"])' "$WORK/held.json")"
  for ((l = 0; l < layers; l++)); do
    cut="$WORK/cut$l"
    mkdir -p "$cut"
    for f in "$model"/*; do [ -f "$f" ] && ln -sf "$f" "$cut/"; done
    rm "$cut/config.json"
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["num_hidden_layers"]=int(sys.argv[3]); json.dump(c, open(sys.argv[2],"w"))' \
      "$model/config.json" "$cut/config.json" $((l + 1))
    "$CLI" logits --model "$cut" --ids "$ids" --out "$WORK/logits.f32" 2>/dev/null || fail "logits of $model cut after layer $l"
    python3 - "$WORK/held.json" "$WORK/logits.f32" "$l" "$WORK" <<'PY' || fail "$model layer $l (held-out ids)"
import json, math, struct, sys
sys.path.insert(0, sys.argv[4])
from check import check_cell
got, l = json.load(open(sys.argv[1])), int(sys.argv[3])
raw = open(sys.argv[2], "rb").read()
T = len(got["input_ids"]); V = len(raw) // 4 // T
logits = struct.unpack("<%df" % (T * V), raw)
for t in range(T):
    row = logits[t * V:(t + 1) * V]
    m = max(row); lse = m + math.log(sum(math.exp(z - m) for z in row))
    lp = [z - lse for z in row]
    order = sorted(range(V), key=lambda i: (-lp[i], i))[:5]
    h = -sum(math.exp(x) * x for x in lp)
    check_cell(got["top_ids"][l][t], got["top_logprobs"][l][t], got["entropy"][l][t],
               order, [lp[i] for i in order], h, (l, t))
PY
  done
done
echo "lens: held-out ids on 4 fixtures, every layer"

# diverge: itself, f32 against q8, the summary from the rows.
G2="$SHARED/fixtures/tiny-gemma2"
ids="$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["input_ids"])))' "$SHARED/lens/tiny-gemma2/seq40.json")"
"$CLI" diverge --model "$G2" --model "$G2" --ids "$ids" --json > "$WORK/self.json" || fail "diverge with itself"
"$CLI" diverge --model "$G2" --model "$G2" --precision q8 --ids "$ids" --json > "$WORK/q8.json" || fail "diverge f32 q8"
python3 - "$WORK/self.json" "$WORK/q8.json" <<'PY' || fail "diverge figures"
import json, math, sys
same, q8 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s = same["summary"]
assert s["mean_kl"] == 0 and s["max_kl"] == 0 and s["same_top"] == 1 and s["ppl_ratio"] == 1, s
assert q8["model_b"]["precision"] == "q8" and q8["model_a"]["precision"] == "f32"
rows = q8["positions"]; n = len(rows)
assert n == len(q8["input_ids"]) - 1 == q8["summary"]["tokens"]
kl = sorted(r["kl"] for r in rows)
want = {
    "mean_kl": sum(kl) / n,
    "median_kl": (kl[n // 2] if n % 2 else (kl[n // 2 - 1] + kl[n // 2]) / 2),
    "p99_kl": kl[math.ceil(0.99 * n) - 1], "max_kl": kl[-1],
    "same_top": sum(r["same_top"] for r in rows) / n,
    "ppl_a": math.exp(-sum(r["logprob_a"] for r in rows) / n),
    "ppl_b": math.exp(-sum(r["logprob_b"] for r in rows) / n),
}
for k, v in want.items():
    assert abs(q8["summary"][k] - v) <= 1e-9 * max(1, abs(v)), (k, q8["summary"][k], v)
assert q8["summary"]["mean_kl"] > 0
for r in rows:
    assert r["same_top"] == (r["top_ids_a"][0] == r["top_ids_b"][0]) and len(r["top_ids_a"]) == 5
    assert r["next_token"] == q8["input_ids"][r["position"] + 1]
PY
echo "Psalm 23: The Lord is my shepherd; I shall not want." > "$WORK/text.txt"
"$CLI" diverge --model "$G2" --precision q4 --model "$G2" --text "$WORK/text.txt" > "$WORK/text.out" || fail "diverge --text"
grep -q "same top token" "$WORK/text.out" || fail "diverge --text prints no summary"
grep -q "(q4)" "$WORK/text.out" || fail "diverge: --precision before the second --model did not apply to the first"

# Refusals.
expect_error() {  # status pattern -- args...
  local status="$1" pattern="$2"; shift 3
  local err; err="$("$CLI" "$@" 2>&1 >/dev/null)"; local rc=$?
  [ "$rc" = "$status" ] || fail "$* exited $rc, not $status ($err)"
  echo "$err" | grep -q -- "$pattern" || fail "$*: \"$err\" lacks \"$pattern\""
}
expect_error 1 "tokenizers differ" -- diverge --model "$G2" --model "$SHARED/fixtures/tiny-qwen2" --ids 1,2,3
expect_error 2 "give --model twice" -- diverge --model "$G2" --ids 1,2,3
expect_error 2 "belongs after" -- diverge --precision q8 --model "$G2" --model "$G2" --ids 1,2,3
expect_error 2 "one of --ids and --text" -- diverge --model "$G2" --model "$G2"
expect_error 1 "at least two tokens" -- diverge --model "$G2" --model "$G2" --ids 5
expect_error 2 "given twice" -- lens --model "$G2" --model "$G2" --ids 1,2
expect_error 1 "outside the text" -- lens --model "$G2" --ids 1,2 --first 2
expect_error 2 "--top must be between 1 and 100" -- lens --model "$G2" --ids 1,2 --top 0
expect_error 2 "--top must be between 1 and 100" -- diverge --model "$G2" --model "$G2" --ids 1,2 --top 4294967297
expect_error 1 "outside the vocabulary" -- diverge --model "$G2" --model "$G2" --ids 1,2,3,1000
echo "diverge: ok"

#!/usr/bin/env bash
# windowpane-cli classify --json against every ../shared/heads reference case, through --ids and,
# where the case has its text, through --text too: logits within 1e-4, pooled index, labels and
# scores. Usage: classify_test.sh CLI SHARED. Exit 77: skipped (no python3 or fixtures, outside CI).
set -uo pipefail
CLI="$1" SHARED="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
command -v python3 >/dev/null || skip "python3 not found"
ls "$SHARED"/heads/*/reference/*.json >/dev/null 2>&1 || skip "no head fixtures under $SHARED/heads"

n=0
for ref in "$SHARED"/heads/*/reference/*.json; do
  model="$(dirname "$(dirname "$ref")")"
  ids="$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["input_ids"])))' "$ref")"
  text="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("text") or "")' "$ref")"
  for how in ids text; do
    if [ "$how" = ids ]; then out="$("$CLI" classify --model "$model" --ids "$ids" --json)" || fail "classify --ids on $ref"
    else
      [ -n "$text" ] || continue
      out="$("$CLI" classify --model "$model" --text "$text" --json)" || fail "classify --text on $ref"
    fi
    python3 - "$ref" "$out" "$how" <<'PY' || fail "$ref ($how)"
import json, sys
ref, got, how = json.load(open(sys.argv[1])), json.loads(sys.argv[2]), sys.argv[3]
def close(a, b, what):
    if isinstance(a, list):
        assert len(a) == len(b), (what, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)): close(x, y, "%s[%d]" % (what, i))
    else:
        assert abs(a - b) <= 1e-4, (what, a, b)
assert got["task"] == ref["task"], (got["task"], ref["task"])
assert got["input_ids"] == ref["input_ids"], ("input_ids", how)
if ref["task"] == "sequence-classification":
    assert got["pooled_index"] == ref["pooled_index"]
    close(ref["logits"], got["logits"], "logits")
    if "label" in ref: assert got["label"] == ref["label"], (got["label"], ref["label"])
    assert abs(got["score"] - ref["score"]) <= 1e-5, (got["score"], ref["score"])
elif ref["task"] == "token-classification":
    close(ref["logits"], got["logits"], "logits")
    assert got["labels"] == ref["labels"]
else:
    close(ref["start_logits"], got["start_logits"], "start")
    close(ref["end_logits"], got["end_logits"], "end")
PY
    n=$((n + 1))
  done
done
# A causal LM, and the wrong number of inputs: one line each.
err="$("$CLI" classify --model "$SHARED/fixtures/tiny-gemma2" --ids 2,3 2>&1)" && fail "classify on a causal LM succeeded"
grep -q "has no task head" <<< "$err" || fail "causal LM message: $err"
err="$("$CLI" classify --model "$SHARED/heads/tiny-qwen2-seqcls" 2>&1)"; [ $? = 2 ] || fail "no input: $err"
echo "classify_test: $n runs matched"

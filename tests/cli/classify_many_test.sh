#!/usr/bin/env bash
# classify --file and --messages (sequence classification, inputs packed into shared forward
# passes) against classify --json one input at a time; --aggregate simple against the pipeline's
# grouping rules worked out here from the per-token labels and logits; answer against the spans
# worked out here from classify's start and end logits. Usage: classify_many_test.sh CLI SHARED.
# Exit 77: skipped (no python3 or fixtures, outside CI).
set -uo pipefail
CLI="$1" SHARED="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { if [ -n "${CI:-}" ]; then fail "$* (CI is set)"; fi; echo "SKIP: $*"; exit 77; }
command -v python3 >/dev/null || skip "python3 not found"
H="$SHARED/heads"
[ -f "$H/tiny-qwen2-seqcls/config.json" ] || skip "no head fixtures under $H"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

# Texts of 1 to ~60 tokens, one line empty (no tokens for Qwen2: an error line, exit status 1).
cat > "$work/texts" <<'TXT'
And God said, Let there be light: and there was light.
Light
And God saw the light, that it was good: and God divided the light from the darkness.

And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. And God said, Let there be a firmament in the midst of the waters.
Day
naïve café ☕ — “quoted”
TXT
n=0
for model in "$H"/*/; do
  model="${model%/}"
  grep -q ForSequenceClassification "$model/config.json" || continue
  # Each line alone, once per model: what both batch sizes must give.
  i=0
  while IFS= read -r text || [ -n "$text" ]; do
    i=$((i + 1))
    "$CLI" classify --model "$model" --text "$text" --json > "$work/one.$i" 2>/dev/null || echo '{"error":"alone"}' > "$work/one.$i"
  done < "$work/texts"
  for batch in 16 512; do
    "$CLI" classify --model "$model" --file "$work/texts" --batch-tokens $batch > "$work/out.jsonl" 2> "$work/err"
    rc=$?
    lines=$(wc -l < "$work/texts")
    [ "$(wc -l < "$work/out.jsonl")" = "$lines" ] || fail "$model: $(wc -l < "$work/out.jsonl") output lines for $lines inputs"
    grep -q "inputs/s" "$work/err" || fail "$model: no rate on stderr: $(cat "$work/err")"
    i=0
    while IFS= read -r text || [ -n "$text" ]; do
      i=$((i + 1))
      got="$(sed -n "${i}p" "$work/out.jsonl")"
      python3 - "$got" "$(cat "$work/one.$i")" "$i" "$rc" <<'PY' || fail "$model line $i (batch $batch)"
import json, sys
got, one, i, rc = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert got["line"] == i, got
if "error" in one:
    assert "error" in got and rc == 1, (got, rc)
else:
    assert got["input_ids"] == one["input_ids"] and got["pooled_index"] == one["pooled_index"], (got, one)
    assert got["label"] == one["label"], (got["label"], one["label"])
    assert all(abs(a - b) <= 1e-4 for a, b in zip(got["logits"], one["logits"])), (got["logits"], one["logits"])
    assert abs(got["score"] - one["score"]) <= 1e-5
PY
      n=$((n + 1))
    done < "$work/texts"
  done
done

# --messages: a list of conversations, each scored as classify --ids on its chat-render encoding.
model="$H/tiny-gemma2-reward"
cat > "$work/conv.json" <<'JSON'
[[{"role": "user", "content": "What is light?"}, {"role": "assistant", "content": "And God said, Let there be light."}],
 {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
 [{"role": "user", "content": "Name a day."}, {"role": "assistant", "content": "The first day."}]]
JSON
"$CLI" classify --model "$model" --messages "$work/conv.json" > "$work/out.jsonl" 2>/dev/null || fail "--messages"
for k in 1 2 3; do
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))[int(sys.argv[2])-1]; json.dump(c["messages"] if isinstance(c, dict) else c, sys.stdout)' "$work/conv.json" $k > "$work/one.json"
  "$CLI" chat-render --model "$model" --messages "$work/one.json" > "$work/rendered" || fail "chat-render $k"
  ids="$("$CLI" tokenize --model "$model" --no-special - < "$work/rendered")" || fail "tokenize $k"
  one="$("$CLI" classify --model "$model" --ids "$ids" --json)" || fail "classify --ids $k"
  python3 - "$(sed -n "${k}p" "$work/out.jsonl")" "$one" "$k" <<'PY' || fail "--messages conversation $k"
import json, sys
got, one, k = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
assert got["conversation"] == k and got["input_ids"] == one["input_ids"], (got, one)
assert abs(got["logits"][0] - one["logits"][0]) <= 1e-4 and abs(got["score"] - one["score"]) <= 1e-5, (got, one)
PY
  n=$((n + 1))
done
err="$("$CLI" classify --model "$H/tiny-qwen2-tokcls" --file "$work/texts" 2>&1)"; [ $? = 2 ] || fail "--file on token classification: $err"
grep -q "is for sequence classification" <<< "$err" || fail "--file message: $err"

# --aggregate simple: the pipeline's grouping of the per-token labels, worked out here.
for model in "$H"/*/; do
  model="${model%/}"
  grep -q ForTokenClassification "$model/config.json" || continue
  text="Ada Lovelace met Charles Babbage in London, naïve café and the evening and the morning"
  out="$("$CLI" classify --model "$model" --text "$text" --aggregate simple --json)" || fail "aggregate on $model"
  python3 - "$out" "$text" <<'PY' || fail "aggregate on $model"
import json, math, sys
out, text = json.loads(sys.argv[1]), sys.argv[2]
special = {0, 1, 2, 3} if out["input_ids"][0] == 2 else set()  # Gemma's pad, eos, bos, unk
def tag(label):
    if label.startswith("B-"): return "B", label[2:]
    if label.startswith("I-"): return "I", label[2:]
    return "I", label
groups, cur = [], []
for t, (i, label, logits) in enumerate(zip(out["input_ids"], out["labels"], out["logits"])):
    if i in special: continue
    m = max(logits); p = max(math.exp(l - m) for l in logits) / sum(math.exp(l - m) for l in logits)
    if cur and tag(label)[1] == tag(cur[-1][0])[1] and tag(label)[0] != "B":
        cur.append((label, p)); continue
    if cur: groups.append(cur)
    cur = [(label, p)]
if cur: groups.append(cur)
want = [(g[0][0].split("-", 1)[-1], sum(p for _, p in g) / len(g)) for g in groups]
want = [w for w in want if w[0] != "O"]
got = out["entities"]
assert len(got) == len(want), (len(got), len(want))
for (group, score), e in zip(want, got):
    assert e["entity_group"] == group and abs(e["score"] - score) <= 1e-5, (e, group, score)
    assert text[e["start"]:e["end"]] == e["word"] and e["word"], e
    assert e["word"] == e["word"].strip() or not e["word"].strip(), e  # trimmed, unless only spaces
assert all(a["start"] <= b["start"] and a["end"] <= b["end"] for a, b in zip(got, got[1:])), got  # in order (a character split between two entities is in both)
PY
  n=$((n + 1))
done
err="$("$CLI" classify --model "$H/tiny-qwen2-seqcls" --text hi --aggregate simple 2>&1)"; [ $? = 2 ] || fail "--aggregate on seqcls: $err"

# answer: the best spans from the start and end logits classify gives for the same ids.
question="Who created the heaven and the earth?"
context="In the beginning God created the heaven and the earth. And the earth was without form, and void; naïve café."
for model in "$H"/*/; do
  model="${model%/}"
  grep -q ForQuestionAnswering "$model/config.json" || continue
  for max in 30 4; do
    out="$("$CLI" answer --model "$model" --question "$question" --context "$context" --top-k 5 --max-answer-tokens $max --json)" || fail "answer"
    ids="$(python3 -c 'import json,sys; print(",".join(map(str, json.loads(sys.argv[1])["input_ids"])))' "$out")"
    logits="$("$CLI" classify --model "$model" --ids "$ids" --json)" || fail "classify qa"
    qids="$("$CLI" tokenize --model "$model" "$question")" || fail "tokenize question"
    python3 - "$out" "$logits" "$context" "$qids" "$max" <<'PY' || fail "answer (max $max)"
import json, math, sys
out, lg, context, qids, mx = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
b = len(qids.split(",")); n = len(out["input_ids"])
assert out["context_start_token"] == b, (out["context_start_token"], b)
def soft(x):
    m = max(x[b:]); e = [math.exp(v - m) for v in x[b:]]; s = sum(e); return [0.0] * b + [v / s for v in e]
ps, pe = soft(lg["start_logits"]), soft(lg["end_logits"])
spans = sorted(((ps[s] * pe[e], s, e) for s in range(b, n) for e in range(s, min(n, s + mx))), key=lambda t: -t[0])
assert len(out["answers"]) == 5
for (score, s, e), a in zip(spans, out["answers"]):
    assert a["start_token"] == s and a["end_token"] == e and abs(a["score"] - score) <= 1e-6, (a, score, s, e)
    assert context[a["start"]:a["end"]] == a["answer"] and a["answer"] == a["answer"].strip(), a
PY
    n=$((n + 1))
  done
done
err="$("$CLI" answer --model "$H/tiny-qwen2-seqcls" --question q --context c 2>&1)" && fail "answer on seqcls succeeded"
grep -q "not a question-answering model" <<< "$err" || fail "answer message: $err"
echo "classify_many_test: $n checks passed"

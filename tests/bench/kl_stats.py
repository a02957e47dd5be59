#!/usr/bin/env python3
"""The divergence statistics of `windowpane-cli diverge` from two engines' raw logit files (little-endian
f32 [tokens, vocab], e.g. llama_side logits of a BF16 GGUF and of its Q8_0): rows 0 .. T-2, each
predicting the next id. Plain Python, no numpy.

  kl_stats.py BASE.f32 OTHER.f32 VOCAB IDS_CSV   -> one JSON line: mean/median/p99/max KL(base||other),
                                                    same_top, ppl_base, ppl_other, ppl_ratio
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gguf"))
from compare_logits import load  # noqa: E402  (the same reader and checks as the GGUF test)


def rows(path, vocab):
    a = load(path, vocab)
    return [a[i * vocab:(i + 1) * vocab] for i in range(len(a) // vocab)]


def log_softmax(z):
    m = max(z)
    lse = m + math.log(math.fsum(math.exp(x - m) for x in z))
    return [x - lse for x in z]


def main():
    base_path, other_path, vocab, ids = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4].split(",")]
    base, other = rows(base_path, vocab), rows(other_path, vocab)
    kls, lp_b, lp_o, same = [], 0.0, 0.0, 0
    for t in range(len(ids) - 1):
        p, q = log_softmax(base[t]), log_softmax(other[t])
        kls.append(max(0.0, math.fsum(math.exp(a) * (a - b) for a, b in zip(p, q))))
        lp_b += p[ids[t + 1]]
        lp_o += q[ids[t + 1]]
        same += max(range(vocab), key=p.__getitem__) == max(range(vocab), key=q.__getitem__)
    n = len(kls)
    s = sorted(kls)
    out = {
        "tokens": n, "mean_kl": sum(s) / n,
        "median_kl": s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2,
        "p99_kl": s[math.ceil(0.99 * n) - 1], "max_kl": s[-1], "same_top": same / n,
        "ppl_a": math.exp(-lp_b / n), "ppl_b": math.exp(-lp_o / n),
    }
    out["ppl_ratio"] = out["ppl_b"] / out["ppl_a"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

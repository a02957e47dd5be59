#!/usr/bin/env python3
"""Compares raw little-endian f32 logit files [tokens, vocab]; plain Python, no numpy. Used by
llamacpp_gguf_test.sh.

  compare_logits.py maxabs A.f32 B.f32 VOCAB [BOUND]
      prints the largest |a - b| over all logits; exit 1 when it exceeds BOUND.
  compare_logits.py kl THEIRS.f32 OURS.f32 VOCAB MEAN MAX TOP1 [THEIRS_BASE.f32 OURS_BASE.f32 RATIO]
      per token KL(softmax(theirs) || softmax(ours)) in nats; prints "mean max top1%". Exit 1 when
      the mean KL exceeds MEAN, the largest exceeds MAX, or the top-1 agreement (a share, 0..1) is
      below TOP1. With the bases (each engine's logits for the unquantized model) it also prints
      the mean of KL(base || quantized) for each engine, how far quantizing moved the model, and
      their ratio (ours / theirs), which must not exceed RATIO.
Both files must have the same size, a multiple of 4 * VOCAB; non-finite values fail.
"""
import array
import math
import sys


def load(path, vocab):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    if len(a) == 0 or len(a) % vocab:
        sys.exit("%s: %d floats, not a multiple of vocab %d" % (path, len(a), vocab))
    if not all(math.isfinite(x) for x in a):
        sys.exit("%s: non-finite logits" % path)
    return a


def log_softmax(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def kl_rows(a, b, vocab):
    """Per-token KL(softmax(a) || softmax(b)) and whether the argmaxes agree."""
    kls, agree = [], []
    for t in range(len(a) // vocab):
        ra, rb = a[t * vocab:(t + 1) * vocab], b[t * vocab:(t + 1) * vocab]
        la, lb = log_softmax(ra), log_softmax(rb)
        kls.append(max(0.0, math.fsum(math.exp(x) * (x - y) for x, y in zip(la, lb))))
        agree.append(max(range(vocab), key=ra.__getitem__) == max(range(vocab), key=rb.__getitem__))
    return kls, agree


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[0] not in ("maxabs", "kl"):
        sys.exit(__doc__)
    mode, vocab = args[0], int(args[3])
    a, b = load(args[1], vocab), load(args[2], vocab)
    if len(a) != len(b):
        sys.exit("sizes differ: %d and %d floats" % (len(a), len(b)))
    if mode == "maxabs":
        d = max(abs(x - y) for x, y in zip(a, b))
        print("%.2e" % d)
        sys.exit(1 if len(args) > 4 and d > float(args[4]) else 0)
    if len(args) not in (7, 10):
        sys.exit(__doc__)
    max_mean, max_max, min_top1 = float(args[4]), float(args[5]), float(args[6])
    kls, agree = kl_rows(a, b, vocab)
    mean, worst, top1 = sum(kls) / len(kls), max(kls), sum(agree) / len(agree)
    line = "%.2e %.2e %.1f%%" % (mean, worst, 100 * top1)
    ok = mean <= max_mean and worst <= max_max and top1 >= min_top1
    if len(args) == 10:
        theirs_q, _ = kl_rows(load(args[7], vocab), a, vocab)
        ours_q, _ = kl_rows(load(args[8], vocab), b, vocab)
        tq, oq = sum(theirs_q) / len(theirs_q), sum(ours_q) / len(ours_q)
        ratio = oq / tq if tq > 0 else (1.0 if oq == 0 else float("inf"))
        line += " %.2e %.2e %.2f" % (tq, oq, ratio)
        ok = ok and ratio <= float(args[9])
    print(line)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

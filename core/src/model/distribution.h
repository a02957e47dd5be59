// One row of logits as a probability distribution, in double: its log-normaliser, entropy and
// most probable entries. The logit lens and divergence read every row this way.
#pragma once

#include <functional>

namespace wp {

struct RowStats {
    double lse = 0;      // log(sum(exp(z))): log p_i = z_i - lse
    double entropy = 0;  // -sum(p log p), nats
};
// One pass of exponentials (shifted by the row's maximum) gives both.
RowStats row_stats(const float* z, int n);
// KL(P || Q) of the distributions of two logit rows, with both log-normalisers, in one pass of
// exponentials: sum p (za - zb) - (lse_a - lse_b); equal rows give exactly 0.
struct PairStats {
    double kl = 0, lse_a = 0, lse_b = 0;
};
PairStats pair_stats(const float* za, const float* zb, int n);

// Rows begin .. end split into up to `threads` parts run at once (the caller's thread takes one):
// a vocabulary's exponentials per row are worth spreading once there are a few rows.
void for_rows(int rows, int threads, const std::function<void(int begin, int end)>& fn);

// The k largest entries, largest first; equal values keep the lower index first. k <= n.
void top_k(const float* z, int n, int k, int* ids, float* values);

}  // namespace wp

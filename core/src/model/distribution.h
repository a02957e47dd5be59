// One row of logits as a probability distribution, in double: its log-normaliser, entropy and
// most probable entries. The logit lens and divergence read every row this way.
#pragma once

namespace wp {

struct RowStats {
    double lse = 0;      // log(sum(exp(z))): log p_i = z_i - lse
    double entropy = 0;  // -sum(p log p), nats
};
// One pass of exponentials (shifted by the row's maximum) gives both.
RowStats row_stats(const float* z, int n);
// The k largest entries, largest first; equal values keep the lower index first. k <= n.
void top_k(const float* z, int n, int k, int* ids, float* values);

}  // namespace wp

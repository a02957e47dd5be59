#include "wp/attention/head_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wp {

HeadSummary summarize_head(const float* probs, int T, std::size_t stride, const MaskSpec& mask) {
    HeadSummary s;
    if (T <= 0) return s;
    const int q0 = T > 1 ? 1 : 0;
    double entropy = 0, first = 0, distance = 0, used = 0;
    for (int q = q0; q < T; ++q) {
        const float* row = probs + static_cast<std::size_t>(q) * stride;
        double total = 0;
        for (int k = 0; k <= q; ++k) {
            const double p = row[k];
            total += p;
            if (p > 0) entropy -= p * std::log(p);
            distance += p * (q - k);
        }
        first += row[0];
        if (mask.sliding()) {
            // The nearest keys that hold kWindowMass of the row, as a share of the keys its window offers.
            const int lo = std::max(0, q - mask.window + 1);
            double mass = 0;
            int k = q;
            for (; k > lo; --k) {
                mass += row[k];
                if (mass >= HeadSummary::kWindowMass * total) break;
            }
            used += static_cast<double>(q - k + 1) / (q - lo + 1);
        }
    }
    const double rows = T - q0;
    s.entropy = entropy / rows;
    s.first_token = first / rows;
    s.mean_distance = distance / rows;
    s.window_used = mask.sliding() ? used / rows : std::numeric_limits<double>::quiet_NaN();
    return s;
}

std::vector<HeadSummary> summarize_heads(const AttentionTrace& trace, std::span<const MaskSpec> masks, int positions) {
    const int L = trace.layers(), Hh = trace.heads(), T = std::min(positions, trace.positions());
    std::vector<HeadSummary> out(static_cast<std::size_t>(L) * Hh);
    for (int l = 0; l < L && l < static_cast<int>(masks.size()); ++l) {
        if (!trace.records(l)) continue;
        const std::size_t n = static_cast<std::size_t>(trace.positions());
        for (int h = 0; h < Hh; ++h)
            out[static_cast<std::size_t>(l) * Hh + h] = summarize_head(trace.layer_data(l) + h * n * n, T, n, masks[l]);
    }
    return out;
}

}  // namespace wp

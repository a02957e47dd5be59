#include <algorithm>
#include <cmath>
#include <cstddef>

#include "attention/self_attention.h"

namespace wp {

const float* queries_as_scored(const AttentionStep& step, AttentionScratch& s) {
    if (step.cache.type() != KvType::Q8 || !step.kernels.int8_queries) return step.q;
    const std::size_t n = static_cast<std::size_t>(step.count) * step.cfg.q_dim();
    const std::size_t block = static_cast<std::size_t>(step.cache.q8_block());
    float* q = ensure(s.query, n);
    for (std::size_t b = 0; b < n; b += block) {
        const float* x = step.q + b;
        float amax = 0.0f;
        for (std::size_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(x[i]));
        // A zero, subnormal-scaled or non-finite block keeps its values (a query's NaN should
        // show, not vanish; the integer kernel takes such a block's head on the f32 loops).
        const float d = amax / 127.0f;
        if (!(d > 0.0f) || !std::isfinite(d) || !std::isfinite(1.0f / d)) {
            std::copy(x, x + block, q + b);
            continue;
        }
        const float inv = 1.0f / d;
        for (std::size_t i = 0; i < block; ++i) q[b + i] = std::nearbyint(x[i] * inv) * d;
    }
    return q;
}

}  // namespace wp

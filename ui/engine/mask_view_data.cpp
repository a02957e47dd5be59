#include "engine/mask_view_data.h"

#include <algorithm>

#include "wp/attention/trace.h"
#include "wp/cache/kv_cache.h"

namespace wp::ui {

bool MaskViewData::hasAttention(int layer) const {
    const std::size_t T = tokens.size();
    return layer >= 0 && layer < static_cast<int>(attention.size()) && heads > 0 && T > 0 &&
           attention[layer].size() == static_cast<std::size_t>(heads) * T * T;
}

float MaskViewData::probability(int layer, int head, int q, int k) const {
    if (!hasAttention(layer)) return 0;
    const std::size_t T = positions();
    const float* a = attention[layer].data();
    if (head >= 0) return a[(head * T + q) * T + k];
    float sum = 0;
    for (int h = 0; h < heads; ++h) sum += a[(h * T + q) * T + k];
    return sum / heads;
}

void MaskViewData::setAttention(const wp::AttentionTrace& trace) {
    const int T = positions();
    const int n = std::min(T, trace.positions());
    heads = trace.heads();
    attention.assign(trace.layers(), {});
    for (int l = 0; l < trace.layers(); ++l) {
        std::vector<float>& a = attention[l];
        a.assign(static_cast<std::size_t>(heads) * T * T, 0.0f);
        for (int h = 0; h < heads; ++h)
            for (int q = 0; q < n; ++q)
                for (int k = 0; k < n; ++k) a[(static_cast<std::size_t>(h) * T + q) * T + k] = trace.at(l, h, q, k);
    }
}

MaskViewData::CacheStep MaskViewData::captureCache(const wp::KvCache& cache) {
    CacheStep step;
    step.length = static_cast<int>(cache.length());
    for (int l = 0; l < cache.num_layers(); ++l) {
        step.held.push_back(cache.positions(l));
        step.bytes.push_back(static_cast<qint64>(cache.bytes_used(l)));
    }
    return step;
}

}  // namespace wp::ui

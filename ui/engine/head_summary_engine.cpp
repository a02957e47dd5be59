#include "engine/head_summary_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "wp/attention/trace.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::ui {

namespace {
constexpr double kMaxTraceBytes = 2.0 * (1 << 30);
}  // namespace

HeadSummaryData summarizeAllHeads(const LoadedModel& lm, std::span<const int> ids,
                                  const std::function<void(double)>& progress, const std::atomic<bool>* cancel) {
    const Model& model = lm.model();
    const ModelConfig& cfg = model.config();
    const int L = cfg.num_layers, T = static_cast<int>(ids.size());
    // One layer's probabilities are held at a time: heads x T^2 floats, 0.5 GB at 4,096 tokens and
    // 8 heads. Past 2 GB (long-context models with many heads) the text is refused, not swapped.
    const double bytes = 4.0 * cfg.num_heads * static_cast<double>(T) * T;
    if (bytes > kMaxTraceBytes) {
        const int most = static_cast<int>(std::sqrt(kMaxTraceBytes / (4.0 * cfg.num_heads)));
        char gb[32];
        std::snprintf(gb, sizeof gb, "%.1f", bytes / (1 << 30));
        throw Error("the head summary of " + std::to_string(T) + " tokens would hold " + gb +
                    " GB of attention at once; this model's limit is " + std::to_string(most) + " tokens");
    }
    HeadSummaryData data;
    data.reset(cfg.layer_masks, cfg.num_heads, T);
    AttentionTrace trace = AttentionTrace::one_layer_at_a_time(L, cfg.num_heads, T);
    auto ctx = model.new_context();
    // After each layer: its summary, a clean slate for the next, progress, and a Stop that does
    // not wait for the rest of a long pass (the context is thrown away with the exception).
    const LayerObserver observer = [&](int layer, std::span<const float>) {
        data.addLayer(trace, layer);
        trace.clear();
        if (cancel != nullptr && cancel->load()) throw Cancelled();
        if (progress) progress(static_cast<double>(layer + 1) / L);
    };
    if (cancel != nullptr && cancel->load()) throw Cancelled();
    model.forward(*ctx, ids, LogitsMode::Last, &trace, observer);
    return data;
}

}  // namespace wp::ui

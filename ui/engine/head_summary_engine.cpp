#include "engine/head_summary_engine.h"

#include <algorithm>
#include <cmath>

#include "wp/attention/trace.h"
#include "wp/error.h"
#include "wp/generate/chat_session.h"

namespace wp::ui {

int headSummaryGroupSize(int layers, int heads, int positions, double budgetBytes) {
    const double perLayer = 4.0 * heads * static_cast<double>(positions) * positions;
    return std::clamp(static_cast<int>(std::floor(budgetBytes / perLayer)), 1, std::max(1, layers));
}

HeadSummaryData summarizeAllHeads(const LoadedModel& lm, std::span<const int> ids,
                                  const std::function<void(double)>& progress, const std::atomic<bool>* cancel) {
    const Model& model = lm.model();
    const ModelConfig& cfg = model.config();
    const int L = cfg.num_layers, T = static_cast<int>(ids.size());
    HeadSummaryData data;
    data.reset(cfg.layer_masks, cfg.num_heads, T);
    const int group = headSummaryGroupSize(L, cfg.num_heads, T);
    const int groups = (L + group - 1) / group;
    for (int g = 0; g < groups; ++g) {
        std::vector<bool> record(L, false);
        for (int l = g * group; l < std::min(L, (g + 1) * group); ++l) record[l] = true;
        // Scoped to the group: its probabilities are freed before the next pass allocates its own.
        AttentionTrace trace(record, cfg.num_heads, T);
        auto ctx = model.new_context();
        // Per layer: progress, and a Stop that does not wait for the rest of a long pass (the
        // context is thrown away with the exception).
        const LayerObserver observer = [&](int layer, std::span<const float>) {
            if (cancel != nullptr && cancel->load()) throw Cancelled();
            if (progress) progress((static_cast<double>(g) * L + layer + 1) / (static_cast<double>(groups) * L));
        };
        if (cancel != nullptr && cancel->load()) throw Cancelled();
        model.forward(*ctx, ids, LogitsMode::Last, &trace, observer);
        data.addRecorded(trace);
        ++data.passes;
    }
    return data;
}

}  // namespace wp::ui

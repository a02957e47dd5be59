// The head summary for the Attention tab, run by InferenceWorker on its thread: one forward pass
// over the text, each layer's attention summarised as soon as the layer completes and its storage
// reused by the next (AttentionTrace::one_layer_at_a_time), so a long text holds one layer's
// probabilities at a time (heads x positions^2 floats: 512 MB at 4,096 tokens and 8 heads).
#pragma once

#include <atomic>
#include <functional>
#include <span>

#include "engine/head_summary_data.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

// Throws wp::Cancelled (checked after every layer) when `cancel` is set.
HeadSummaryData summarizeAllHeads(const LoadedModel& lm, std::span<const int> ids,
                                  const std::function<void(double)>& progress, const std::atomic<bool>* cancel);

}  // namespace wp::ui

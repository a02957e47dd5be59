// The head summary for the Attention tab, run by InferenceWorker on its thread: attention of every
// layer recorded a group of layers at a time, each group in its own forward pass over the text and
// summarised before the next, so a long text never holds more than ~256 MB of probabilities.
#pragma once

#include <atomic>
#include <functional>
#include <span>

#include "engine/head_summary_data.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

constexpr double kHeadSummaryTraceBytes = 256.0 * (1 << 20);

// The number of layers one pass records: as many as fit in `budgetBytes`, at least one.
int headSummaryGroupSize(int layers, int heads, int positions, double budgetBytes = kHeadSummaryTraceBytes);

// Throws wp::Cancelled (checked after every layer) when `cancel` is set.
HeadSummaryData summarizeAllHeads(const LoadedModel& lm, std::span<const int> ids,
                                  const std::function<void(double)>& progress, const std::atomic<bool>* cancel);

}  // namespace wp::ui

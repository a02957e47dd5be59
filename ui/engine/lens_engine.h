// The logit lens for the Attention tab, run by InferenceWorker on its thread: wp::logit_lens over a
// window of positions, its ids decoded into the plain LensViewData.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "engine/lens_view_data.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

// The lens of positions first .. first + count - 1 of `ids` (clamped to the text; first < 0: the
// last `count` positions; count <= 0: to the end; at most kMaxLensPositions) with the `topK` best tokens per cell. The lm_head readout at every layer costs the
// most, so callers ask for a window, never for a whole long text. Throws wp::Error for a model
// without a language-model head, wp::Cancelled when `cancel` is set.
LensViewData computeLens(const LoadedModel& lm, std::vector<int> ids, int first, int count, int topK,
                         const std::function<void(double)>& progress, const std::atomic<bool>* cancel);

// The most positions one request reads out.
constexpr int kMaxLensPositions = 256;

}  // namespace wp::ui

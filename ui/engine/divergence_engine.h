// The divergence mode's engine work, run by DivergenceWorker on its thread: one text through two
// loaded models with wp::diverge, the result as the plain values of divergence_types.h.
#pragma once

#include <QString>
#include <atomic>
#include <functional>

#include "engine/divergence_types.h"

namespace wp {
class LoadedModel;
}

namespace wp::ui {

// `text` encoded with A's tokenizer (its special tokens, e.g. <bos>, added) and read by both
// models; `a` and `b` may be the same object. Throws wp::Error with a message for the user when
// the vocabularies differ, the text has fewer than two tokens or does not fit both contexts, and
// wp::Cancelled when `cancel` is set.
DivergenceViewData divergeText(const LoadedModel& a, const QString& nameA, const LoadedModel& b, const QString& nameB,
                               const QString& text, const std::function<void(double)>& progress = {},
                               const std::atomic<bool>* cancel = nullptr);

}  // namespace wp::ui

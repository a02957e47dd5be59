// The logit lens: what the residual stream after each decoder layer predicts when it is read out
// as the last layer's is (Model::read_out: the final norm, lm_head or the tied embedding, Gemma2's
// final soft-cap), then log-softmax. The last layer's lens is the model's own output.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "wp/model/model.h"

namespace wp {

struct LensOptions {
    int top_k = 5;             // 1..kMaxTopK
    std::int64_t first = 0;    // positions first .. first + count - 1 are read out, at every layer
    std::int64_t count = -1;   // -1: to the end of the ids
    // Called with the fraction done, 0..1; `cancel` set: throws wp::Cancelled before the next pass.
    std::function<void(double)> progress;
    const std::atomic<bool>* cancel = nullptr;

    static constexpr int kMaxTopK = 100;
};

struct LogitLens {
    int layers = 0, positions = 0, top_k = 0;
    std::int64_t first = 0;     // the position of column 0
    std::vector<int> top_ids;   // [layers, positions, top_k], most probable first; ties: lower id first
    std::vector<float> top_logprobs;  // the same shape, natural log
    std::vector<float> entropy;       // [layers, positions], of the full distribution, in nats

    std::size_t cell(int layer, int position) const {
        return static_cast<std::size_t>(layer) * positions + static_cast<std::size_t>(position);
    }
    int id(int layer, int position, int k) const { return top_ids[cell(layer, position) * top_k + k]; }
    float logprob(int layer, int position, int k) const { return top_logprobs[cell(layer, position) * top_k + k]; }
};

// Runs `ids` from position 0 through `model` (a causal LM) in a fresh context; throws wp::Error for
// a task-head model, ids longer than the model's context or a range outside the ids.
LogitLens logit_lens(const Model& model, std::span<const int> ids, const LensOptions& options = {});

}  // namespace wp

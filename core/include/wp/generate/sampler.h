// Token selection with transformers' logits processors, in transformers' order: repetition
// penalty, then (when sampling) temperature, top-k, top-p, min-p.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace wp {

struct SamplingParams {
    bool greedy = true;               // argmax (ties to the lowest id) instead of sampling
    float temperature = 1.0f;         // > 0
    int top_k = 0;                    // 0 = off
    float top_p = 1.0f;               // 1 = off
    float min_p = 0.0f;               // 0 = off
    float repetition_penalty = 1.0f;  // 1 = off; applied to every token of prompt and reply
    std::uint64_t seed = 0;

    void validate() const;  // throws wp::Error with the offending setting
};

// The greedy choice: the first of the largest logits (vectorised; as std::max_element).
int greedy_token(std::span<const float> logits);
// log(sum of e^logit), the log-softmax's normaliser: a token's log-probability is its logit minus
// this (vectorised as the sampler's passes; -inf for an empty or fully masked row).
float log_sum_exp(std::span<const float> logits);

class Sampler {
public:
    Sampler(const SamplingParams& params, int vocab_size);

    // Picks the next token from `logits` (modified in place). `history` is every token so far.
    int pick(std::span<float> logits, std::span<const int> history);
    // The same pick with `logits` left as they are: copied into `work` (as long) first only when a
    // setting edits them, so greedy decoding reads them in place.
    int pick(std::span<const float> logits, std::span<const int> history, std::span<float> work);
    const SamplingParams& params() const { return p_; }

private:
    int sample(std::span<float> logits);
    void reserve(std::size_t vocab_size);
    void keep_top_k(std::span<float> logits, int k);
    void keep_top_p(std::span<float> logits, float top_p);
    void keep_min_p(std::span<float> logits, float min_p);

    SamplingParams p_;
    std::mt19937_64 rng_;
    std::vector<float> probs_;
    std::vector<int> idx_;
    std::vector<std::uint8_t> seen_;
    std::vector<double> chunks_;  // probs_'s sums by chunk (kernels/sampling_kernels.h)
    std::vector<double> ranges_;  // top-p's masses by range of probability
};

}  // namespace wp

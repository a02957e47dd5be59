#include "wp/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/ops.h"
#include "wp/error.h"

namespace wp {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

void SamplingParams::validate() const {
    if (!greedy && !(temperature > 0)) throw Error("temperature must be > 0 (use greedy decoding for 0)");
    if (top_k < 0) throw Error("top-k must be >= 0");
    if (!(top_p > 0 && top_p <= 1)) throw Error("top-p must be in (0, 1]");
    if (!(min_p >= 0 && min_p <= 1)) throw Error("min-p must be in [0, 1]");
    if (!(repetition_penalty > 0)) throw Error("repetition penalty must be > 0");
}

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : p_(params), rng_(params.seed), probs_(vocab_size), idx_(vocab_size), seen_(vocab_size) {
    p_.validate();
}

int greedy_token(std::span<const float> logits) { return static_cast<int>(ops::argmax(logits.data(), logits.size())); }

int Sampler::pick(std::span<const float> logits, std::span<const int> history, std::span<float> work) {
    if (p_.greedy && p_.repetition_penalty == 1.0f) return greedy_token(logits);
    if (work.size() < logits.size()) throw Error("sampler: a work row of " + std::to_string(work.size()) + " for " +
                                                 std::to_string(logits.size()) + " logits");
    std::copy(logits.begin(), logits.end(), work.begin());
    return pick(work.first(logits.size()), history);
}

int Sampler::pick(std::span<float> logits, std::span<const int> history) {
    const int V = static_cast<int>(logits.size());
    if (p_.repetition_penalty != 1.0f) {
        // transformers' RepetitionPenaltyLogitsProcessor: each distinct token once.
        std::fill(seen_.begin(), seen_.end(), 0);
        for (int t : history) {
            if (t < 0 || t >= V || seen_[t]) continue;
            seen_[t] = 1;
            float& s = logits[t];
            s = s < 0 ? s * p_.repetition_penalty : s / p_.repetition_penalty;
        }
    }
    if (p_.greedy) return greedy_token(logits);

    if (p_.temperature != 1.0f)
        for (float& s : logits) s /= p_.temperature;
    if (p_.top_k > 0 && p_.top_k < V) keep_top_k(logits, p_.top_k);
    if (p_.top_p < 1.0f) keep_top_p(logits, p_.top_p);
    if (p_.min_p > 0.0f) keep_min_p(logits, p_.min_p);

    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (int i = 0; i < V; ++i) {
        probs_[i] = logits[i] == kNegInf ? 0.0f : std::exp(logits[i] - mx);
        sum += probs_[i];
    }
    std::uniform_real_distribution<double> u(0.0, sum);
    double r = u(rng_), acc = 0;
    int last = 0;
    for (int i = 0; i < V; ++i) {
        if (probs_[i] == 0.0f) continue;
        acc += probs_[i];
        last = i;
        if (r < acc) return i;
    }
    return last;
}

void Sampler::keep_top_k(std::span<float> logits, int k) {
    // transformers keeps every token whose score is >= the k-th largest (ties survive).
    const int V = static_cast<int>(logits.size());
    std::copy(logits.begin(), logits.end(), probs_.begin());
    std::nth_element(probs_.begin(), probs_.begin() + (k - 1), probs_.begin() + V, std::greater<float>());
    const float kth = probs_[k - 1];
    for (float& s : logits)
        if (s < kth) s = kNegInf;
}

void Sampler::keep_top_p(std::span<float> logits, float top_p) {
    // transformers' TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is
    // <= 1 - top_p, keep at least one. In descending order that drops token j once the mass ranked
    // above it reaches top_p. Only a growing prefix is sorted, not the whole vocabulary.
    const int V = static_cast<int>(logits.size());
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (int i = 0; i < V; ++i) {
        probs_[i] = logits[i] == kNegInf ? 0.0f : std::exp(logits[i] - mx);
        sum += probs_[i];
    }
    for (int i = 0; i < V; ++i) idx_[i] = i;
    auto by_prob = [&](int a, int b) { return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b); };
    int sorted = 0;
    for (int want = std::min(V, 64);; want = std::min(V, want * 4)) {
        std::partial_sort(idx_.begin() + sorted, idx_.begin() + want, idx_.end(), by_prob);
        sorted = want;
        // Mass of the tokens after position j in descending order = sum - prefix(j).
        double prefix = 0;
        int keep = -1;
        for (int j = 0; j < sorted; ++j) {
            prefix += probs_[idx_[j]];
            // Token j is dropped when the ascending cumulative sum up to it, (sum - prefix + p_j),
            // is <= (1 - top_p) * sum; so it is kept when prefix_before_j < top_p * sum.
            if ((prefix - probs_[idx_[j]]) / sum >= top_p) {
                keep = j;
                break;
            }
        }
        if (keep >= 0 || sorted == V) {
            if (keep < 0) keep = V;
            keep = std::max(keep, 1);
            std::vector<std::uint8_t>& mark = seen_;
            std::fill(mark.begin(), mark.end(), 0);
            for (int j = 0; j < keep; ++j) mark[idx_[j]] = 1;
            for (int i = 0; i < V; ++i)
                if (!mark[i]) logits[i] = kNegInf;
            return;
        }
    }
}

void Sampler::keep_min_p(std::span<float> logits, float min_p) {
    // transformers' MinPLogitsWarper: drop tokens with prob < min_p * max prob.
    const float mx = *std::max_element(logits.begin(), logits.end());
    const float thr = mx + std::log(min_p);
    for (float& s : logits)
        if (s < thr) s = kNegInf;
}

}  // namespace wp

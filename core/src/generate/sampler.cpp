#include "wp/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/ops.h"
#include "kernels/sampling_kernels.h"
#include "wp/error.h"

namespace wp {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float float_of(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

}  // namespace

void SamplingParams::validate() const {
    if (!greedy && !(temperature > 0)) throw Error("temperature must be > 0 (use greedy decoding for 0)");
    if (top_k < 0) throw Error("top-k must be >= 0");
    if (!(top_p > 0 && top_p <= 1)) throw Error("top-p must be in (0, 1]");
    if (!(min_p >= 0 && min_p <= 1)) throw Error("min-p must be in [0, 1]");
    if (!(repetition_penalty > 0)) throw Error("repetition penalty must be > 0");
}

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : p_(params), rng_(params.seed) {
    p_.validate();
    reserve(static_cast<std::size_t>(std::max(0, vocab_size)));
}

int greedy_token(std::span<const float> logits) { return static_cast<int>(ops::argmax(logits.data(), logits.size())); }

float log_sum_exp(std::span<const float> logits) {
    if (logits.empty()) return kNegInf;
    const float mx = vec_max(logits.data(), logits.size());
    if (!(mx > kNegInf)) return kNegInf;
    // A piece at a time through buffers on the stack (the e^x values are not kept).
    constexpr std::size_t kPiece = 16 * kSampleChunk;
    alignas(64) float e[kPiece];
    double chunks[kPiece / kSampleChunk];
    double sum = 0;
    for (std::size_t i = 0; i < logits.size(); i += kPiece)
        sum += vec_exp_sums(logits.data() + i, std::min(kPiece, logits.size() - i), mx, e, chunks);
    return mx + static_cast<float>(std::log(sum));
}

int Sampler::pick(std::span<const float> logits, std::span<const int> history, std::span<float> work) {
    if (p_.greedy && p_.repetition_penalty == 1.0f) return greedy_token(logits);
    if (work.size() < logits.size()) throw Error("sampler: a work row of " + std::to_string(work.size()) + " for " +
                                                 std::to_string(logits.size()) + " logits");
    const std::span<float> row = work.first(logits.size());
    if (p_.repetition_penalty == 1.0f && p_.temperature != 1.0f) {  // copied and divided in one pass
        vec_divide(logits.data(), row.data(), row.size(), p_.temperature);
        return sample(row);
    }
    std::copy(logits.begin(), logits.end(), row.begin());
    return pick(row, history);
}

int Sampler::pick(std::span<float> logits, std::span<const int> history) {
    if (p_.repetition_penalty != 1.0f) {
        // transformers' RepetitionPenaltyLogitsProcessor: each distinct token once.
        const int V = static_cast<int>(logits.size());
        reserve(logits.size());
        std::fill(seen_.begin(), seen_.end(), 0);
        for (int t : history) {
            if (t < 0 || t >= V || seen_[t]) continue;
            seen_[t] = 1;
            float& s = logits[t];
            s = s < 0 ? s * p_.repetition_penalty : s / p_.repetition_penalty;
        }
    }
    if (p_.greedy) return greedy_token(logits);
    if (p_.temperature != 1.0f) vec_divide(logits.data(), logits.data(), logits.size(), p_.temperature);
    return sample(logits);
}

// Temperature applied: top-k, top-p and min-p, then a draw.
int Sampler::sample(std::span<float> logits) {
    const std::size_t V = logits.size();
    reserve(V);
    if (p_.top_k > 0 && static_cast<std::size_t>(p_.top_k) < V) keep_top_k(logits, p_.top_k);
    if (p_.top_p < 1.0f) keep_top_p(logits, p_.top_p);
    if (p_.min_p > 0.0f) keep_min_p(logits, p_.min_p);

    // Proportionally to e^(logit - max), over the chunks' sums first, then within the chunk.
    const float mx = vec_max(logits.data(), V);
    const double sum = vec_exp_sums(logits.data(), V, mx, probs_.data(), chunks_.data());
    std::uniform_real_distribution<double> u(0.0, sum);
    const double r = u(rng_);
    double acc = 0;
    for (std::size_t c = 0; c * kSampleChunk < V; ++c) {
        if (r >= acc + chunks_[c]) {
            acc += chunks_[c];
            continue;
        }
        // The chunk's own running sum may end a rounding short of its total: its last token then.
        int last = -1;
        for (std::size_t i = c * kSampleChunk; i < std::min(V, (c + 1) * kSampleChunk); ++i) {
            if (probs_[i] == 0.0f) continue;
            acc += probs_[i];
            last = static_cast<int>(i);
            if (r < acc) return last;
        }
        if (last >= 0) return last;
    }
    // Past the total by rounding (or nothing left to draw): the last token that could be drawn.
    for (std::size_t i = V; i-- > 0;)
        if (probs_[i] > 0.0f) return static_cast<int>(i);
    return 0;
}

void Sampler::reserve(std::size_t V) {
    if (probs_.size() >= V) return;
    probs_.resize(V);
    idx_.resize(V);
    seen_.resize(V);
    chunks_.resize((V + kSampleChunk - 1) / kSampleChunk);
    ranges_.resize(4096);
}

void Sampler::keep_top_k(std::span<float> logits, int k) {
    // transformers keeps every token whose score is >= the k-th largest (ties survive).
    const float kth = vec_kth_largest(logits.data(), logits.size(), static_cast<std::size_t>(k), probs_.data());
    vec_drop_below(logits.data(), logits.size(), kth);
}

void Sampler::keep_top_p(std::span<float> logits, float top_p) {
    // transformers' TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is
    // <= 1 - top_p, keep at least one. In descending order: token j is kept while the mass ranked
    // above it is < top_p of the whole.
    const std::size_t V = logits.size();
    const float mx = vec_max(logits.data(), V);
    const double sum = vec_exp_sums(logits.data(), V, mx, probs_.data(), chunks_.data());
    const double target = static_cast<double>(top_p) * sum;
    auto by_prob = [&](int a, int b) { return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b); };
    // How many of the tokens idx_[0..n), in that order after `above` of mass, are kept; -1 when
    // the mass does not reach the cut among them.
    auto cut = [&](std::size_t n, double above) -> long {
        for (std::size_t j = 0; j < n; ++j) {
            if (above >= target) return static_cast<long>(j);
            above += probs_[static_cast<std::size_t>(idx_[j])];
        }
        return -1;
    };

    // A peaked distribution, what a trained model mostly gives: the nucleus lies among the few
    // tokens within 2^-10 of the most likely, and every other token ranks below them all.
    constexpr std::size_t kFew = 1024;
    std::size_t n = vec_indices_in(probs_.data(), V, 0x1p-10f, kInf, idx_.data(), kFew);
    if (n <= kFew) {
        std::sort(idx_.begin(), idx_.begin() + static_cast<long>(n), by_prob);
        const long keep = cut(n, 0.0);
        if (keep >= 0 || n == V) {
            const std::size_t k = keep < 0 ? n : std::max<std::size_t>(1, static_cast<std::size_t>(keep));
            for (std::size_t i = 0; i < k; ++i) probs_[i] = logits[static_cast<std::size_t>(idx_[i])];  // probs_ is free now
            std::fill(logits.begin(), logits.end(), kNegInf);
            for (std::size_t i = 0; i < k; ++i) logits[static_cast<std::size_t>(idx_[i])] = probs_[i];
            return;
        }
    }

    // A flat one, whose nucleus may hold most of the vocabulary (sorting it took tens of ms):
    // probabilities are non-negative floats, which order as their bits. The mass of each of 1024
    // ranges (the top 12 bits) gives the range the cut falls in, the masses of its 4096 sub-ranges
    // (the next 12 bits) the sub-range; only that sub-range's tokens are sorted and scanned.
    // Tokens above it are all kept, those below all dropped.
    std::vector<double>& mass = ranges_;  // 4096 (reserve)
    vec_range_masses(probs_.data(), V, mass.data());
    double above = 0;
    std::uint32_t hi = 1023;
    for (; hi > 0 && above + mass[hi] < target; --hi) above += mass[hi];
    n = vec_indices_in(probs_.data(), V, float_of(hi << 20), float_of((hi + 1) << 20), idx_.data(), V);
    std::fill(mass.begin(), mass.end(), 0.0);
    for (std::size_t j = 0; j < n; ++j) {
        const float p = probs_[static_cast<std::size_t>(idx_[j])];
        mass[(bits_of(p) >> 8) & 0xfff] += p;
    }
    std::uint32_t lo = 4095;
    for (; lo > 0 && above + mass[lo] < target; --lo) above += mass[lo];
    const std::uint32_t key = (hi << 12) | lo;  // the cut's sub-range: bits >> 8
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j)
        if (bits_of(probs_[static_cast<std::size_t>(idx_[j])]) >> 8 == key) idx_[m++] = idx_[j];
    // Collected in index order, which is already the order of equal probabilities.
    const auto first = idx_.begin(), last = idx_.begin() + static_cast<long>(m);
    if (std::adjacent_find(first, last, [&](int a, int b) { return probs_[a] != probs_[b]; }) != last)
        std::sort(first, last, by_prob);
    long keep = cut(m, above);
    if (keep < 0) keep = static_cast<long>(m);
    if (keep == 0 && above == 0) keep = 1;
    vec_drop_where_below(logits.data(), probs_.data(), V, float_of(key << 8));
    for (std::size_t j = static_cast<std::size_t>(keep); j < m; ++j) logits[static_cast<std::size_t>(idx_[j])] = kNegInf;
}

void Sampler::keep_min_p(std::span<float> logits, float min_p) {
    // transformers' MinPLogitsWarper: drop tokens with prob < min_p * max prob.
    const float mx = vec_max(logits.data(), logits.size());
    vec_drop_below(logits.data(), logits.size(), mx + std::log(min_p));
}

}  // namespace wp

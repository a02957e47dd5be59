// Sampling follows transformers' logits processors; generation stops where it must.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "test_support.h"
#include "wp/error.h"
#include "wp/generate/generator.h"
#include "wp/generate/sampler.h"

namespace wp::test {
namespace {

std::map<int, int> histogram(SamplingParams p, std::vector<float> logits, int draws, std::vector<int> history = {}) {
    p.greedy = false;
    Sampler s(p, static_cast<int>(logits.size()));
    std::map<int, int> h;
    for (int i = 0; i < draws; ++i) {
        auto l = logits;
        ++h[s.pick(l, history)];
    }
    return h;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
    SamplingParams p;
    Sampler s(p, 4);
    std::vector<float> l = {1, 3, 3, 2};
    EXPECT_EQ(s.pick(l, {}), 1);
}

TEST(Sampler, RepetitionPenaltyAsTransformers) {
    SamplingParams p;
    p.repetition_penalty = 2.0f;
    Sampler s(p, 3);
    std::vector<float> l = {4.0f, 3.0f, -1.0f};
    const int hist[] = {0, 0, 2};
    EXPECT_EQ(s.pick(l, hist), 1);  // 4/2 = 2 < 3
    EXPECT_FLOAT_EQ(l[0], 2.0f);    // penalised once although seen twice
    EXPECT_FLOAT_EQ(l[2], -2.0f);   // negative logits are multiplied
}

TEST(Sampler, TopKKeepsOnlyTheBest) {
    SamplingParams p;
    p.top_k = 2;
    auto h = histogram(p, {0.0f, 5.0f, 4.9f, 4.8f}, 2000);
    EXPECT_EQ(h.count(0) + h.count(3), 0u);
    EXPECT_GT(h[1], 0);
    EXPECT_GT(h[2], 0);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
    // probs ~ 0.5, 0.3, 0.2 (log values): top_p 0.6 keeps the first two, 0.5 keeps only the first.
    std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    SamplingParams p;
    p.top_p = 0.6f;
    auto h = histogram(p, l, 3000);
    EXPECT_EQ(h.count(2), 0u);
    EXPECT_NEAR(h[0] / 3000.0, 0.5 / 0.8, 0.05);
    p.top_p = 0.5f;
    h = histogram(p, l, 500);
    EXPECT_EQ(h[0], 500);
    // A large vocabulary exercises the growing partial sort.
    std::vector<float> big(5000);
    for (int i = 0; i < 5000; ++i) big[i] = -0.002f * i;
    p.top_p = 0.9f;
    h = histogram(p, big, 2000);
    for (const auto& [id, n] : h) EXPECT_LT(id, 5000 * 0.9 + 50);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
    std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    SamplingParams p;
    p.min_p = 0.2f;  // threshold 0.12: drops 0.1
    auto h = histogram(p, l, 2000);
    EXPECT_EQ(h.count(2), 0u);
    EXPECT_GT(h[1], 0);
}

TEST(Sampler, TemperatureSharpensAndSeedRepeats) {
    std::vector<float> l = {0.0f, 1.0f};
    SamplingParams p;
    p.temperature = 0.1f;
    auto h = histogram(p, l, 1000);
    EXPECT_GT(h[1], 990);
    p.temperature = 1.0f;
    p.seed = 42;
    EXPECT_EQ(histogram(p, l, 200), histogram(p, l, 200));
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Rows of logits: peaked as trained models give them, flat (a nucleus of most of the vocabulary),
// and in steps of 0.25 (many ties).
std::vector<float> logits_row(std::size_t n, int kind, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, kind == 1 ? 0.3f : 3.0f);
    std::vector<float> x(n);
    for (float& v : x) v = kind == 2 ? std::round(4.0f * d(g)) / 4.0f : d(g);
    return x;
}

// What pick() left of a row: which tokens it kept.
std::vector<bool> kept(const std::vector<float>& l) {
    std::vector<bool> k(l.size());
    for (std::size_t i = 0; i < l.size(); ++i) k[i] = l[i] != kNegInf;
    return k;
}

TEST(Sampler, TopPKeepsWhatSortingTheWholeVocabularyKeeps) {
    // The sampler sorts only the few most likely tokens, or the tokens of one narrow range of
    // probability; here every token is sorted, e^x taken in double, and the nucleus cut as
    // transformers cuts it. They must agree but where the mass meets top_p within rounding.
    int compared = 0, at_rounding = 0;
    for (const std::size_t V : {std::size_t{3}, std::size_t{1000}, std::size_t{151936}})
        for (int kind = 0; kind < 3; ++kind)
            for (const float top_p : {0.3f, 0.9f, 0.99f}) {
                const std::vector<float> x = logits_row(V, kind, static_cast<unsigned>(V + 10 * kind) + 1);
                SamplingParams p;
                p.greedy = false;
                p.temperature = 0.7f;
                p.top_p = top_p;
                Sampler s(p, static_cast<int>(V));
                std::vector<float> l = x;
                s.pick(l, {});
                const std::vector<bool> got = kept(l);

                std::vector<float> y(V);
                for (std::size_t i = 0; i < V; ++i) y[i] = x[i] / 0.7f;
                std::vector<int> order(V);
                std::iota(order.begin(), order.end(), 0);
                std::sort(order.begin(), order.end(), [&](int a, int b) { return y[a] > y[b] || (y[a] == y[b] && a < b); });
                const double mx = y[static_cast<std::size_t>(order[0])];
                double sum = 0;
                for (float v : y) sum += std::exp(v - mx);
                const double target = top_p * sum;
                std::size_t keep = V;
                double above = 0;
                for (std::size_t j = 0; j < V; ++j) {
                    if (above >= target) {
                        keep = j;
                        break;
                    }
                    above += std::exp(y[static_cast<std::size_t>(order[j])] - mx);
                }
                keep = std::max<std::size_t>(keep, 1);
                const std::size_t count = static_cast<std::size_t>(std::count(got.begin(), got.end(), true));
                // Whatever is kept is the most likely `count` tokens, ties by id.
                for (std::size_t j = 0; j < V; ++j)
                    ASSERT_EQ(got[static_cast<std::size_t>(order[j])], j < count) << V << " " << kind << " " << top_p << " rank " << j;
                ++compared;
                if (count == keep) continue;
                // Otherwise one token either side, where the mass above it is top_p's within rounding.
                ASSERT_EQ(std::max(count, keep) - std::min(count, keep), 1u) << V << " " << kind << " " << top_p;
                double m = 0;
                for (std::size_t j = 0; j + 1 < std::max(count, keep); ++j) m += std::exp(y[static_cast<std::size_t>(order[j])] - mx);
                EXPECT_NEAR(m, target, 1e-5 * sum) << V << " " << kind << " " << top_p;
                ++at_rounding;
            }
    EXPECT_EQ(compared, 27);
    EXPECT_LE(at_rounding, 2);
}

TEST(Sampler, TopKAndMinPKeepExactlyTransformersSets) {
    for (const std::size_t V : {std::size_t{5}, std::size_t{1000}, std::size_t{151936}})
        for (int kind = 0; kind < 3; ++kind) {
            const std::vector<float> x = logits_row(V, kind, static_cast<unsigned>(V + kind));
            for (const int k : {1, 3, 40, 1000}) {
                if (static_cast<std::size_t>(k) >= V) continue;
                SamplingParams p;
                p.greedy = false;
                p.top_k = k;
                Sampler s(p, static_cast<int>(V));
                std::vector<float> l = x;
                s.pick(l, {});
                std::vector<float> sorted = x;
                std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
                for (std::size_t i = 0; i < V; ++i)
                    ASSERT_EQ(l[i] != kNegInf, x[i] >= sorted[static_cast<std::size_t>(k - 1)]) << V << " " << kind << " " << k << " " << i;
            }
            SamplingParams p;
            p.greedy = false;
            p.min_p = 0.05f;
            Sampler s(p, static_cast<int>(V));
            std::vector<float> l = x;
            s.pick(l, {});
            const float threshold = *std::max_element(x.begin(), x.end()) + std::log(0.05f);
            for (std::size_t i = 0; i < V; ++i) ASSERT_EQ(l[i] != kNegInf, x[i] >= threshold) << V << " " << kind << " " << i;
        }
}

TEST(Sampler, TemperatureDividesAsOneValueAtATime) {
    const std::vector<float> x = logits_row(1001, 0, 3);
    SamplingParams p;
    p.greedy = false;
    p.temperature = 0.7f;
    Sampler s(p, 1001);
    std::vector<float> l = x;
    s.pick(l, {});
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(l[i], x[i] / 0.7f) << i;
}

TEST(Sampler, DrawsFollowTheProbabilitiesAcrossChunks) {
    // Four tokens in different chunks of the draw's sums, the rest masked or e^-100 below them.
    for (const float rest : {kNegInf, -100.0f}) {
        std::vector<float> l(1000, rest);
        const int ids[] = {3, 300, 700, 999};
        const double probs[] = {0.1, 0.2, 0.3, 0.4};
        for (int i = 0; i < 4; ++i) l[static_cast<std::size_t>(ids[i])] = std::log(static_cast<float>(probs[i]));
        SamplingParams p;
        p.seed = 7;
        const int draws = 20000;
        auto h = histogram(p, l, draws);
        int total = 0;
        for (int i = 0; i < 4; ++i) {
            EXPECT_NEAR(h[ids[i]] / static_cast<double>(draws), probs[i], 0.015) << ids[i];
            total += h[ids[i]];
        }
        EXPECT_EQ(total, draws);
    }
}

TEST(Sampler, NaNLogitsAreNeverDrawn) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> l = {nan, 1.0f, nan, 2.0f, kNegInf};
    for (const int top_k : {0, 2})
        for (const float top_p : {1.0f, 0.95f}) {
            SamplingParams p;
            p.top_k = top_k;
            p.top_p = top_p;
            const auto h = histogram(p, l, 1000);
            EXPECT_EQ(h.count(0) + h.count(2) + h.count(4), 0u) << top_k << " " << top_p;
            EXPECT_GT(h.count(3) ? h.at(3) : 0, 500) << top_k << " " << top_p;
        }
}

TEST(Sampler, LogSumExpAsInDouble) {
    for (const std::size_t V : {std::size_t{1}, std::size_t{255}, std::size_t{5000}, std::size_t{151936}, std::size_t{256000}})
        for (int kind = 0; kind < 3; ++kind) {
            std::vector<float> x = logits_row(V, kind, static_cast<unsigned>(V) + 5);
            for (std::size_t i = 1; i < V; i += 7) x[i] = kNegInf;
            const double mx = *std::max_element(x.begin(), x.end());
            double sum = 0;
            for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
            EXPECT_NEAR(log_sum_exp(x), mx + std::log(sum), 2e-6 * std::max(1.0, std::abs(mx))) << V << " " << kind;
        }
    EXPECT_EQ(log_sum_exp(std::vector<float>(300, kNegInf)), kNegInf);
    EXPECT_EQ(log_sum_exp({}), kNegInf);
}

TEST(Sampler, ValidatesSettings) {
    SamplingParams p;
    p.greedy = false;
    p.temperature = 0;
    EXPECT_THROW(p.validate(), Error);
    p = {};
    p.top_p = 1.5f;
    EXPECT_THROW(p.validate(), Error);
    p = {};
    p.repetition_penalty = 0;
    EXPECT_THROW(p.validate(), Error);
}

}  // namespace
}  // namespace wp::test

// Sampling follows transformers' logits processors; generation stops where it must.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>

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

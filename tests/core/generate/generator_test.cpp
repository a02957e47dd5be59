// generate(): stops at an eos id, on cancel and at the token limit.
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

TEST(Generate, StopsAtEosCancelAndLimit) {
    WP_REQUIRE_SHARED();
    auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma2");
    const auto cases = all_cases();
    const RefCase* seq12 = nullptr;
    for (const auto& c : cases)
        if (c.name == "tiny-gemma2/seq12") seq12 = &c;
    ASSERT_NE(seq12, nullptr);
    const auto ids = seq12->input_ids();
    const auto greedy = seq12->greedy_tokens();

    // Declaring the 3rd greedy token an eos stops right there, eos included.
    {
        auto ctx = m->new_context();
        GenerateOptions o;
        o.max_new_tokens = 16;
        o.eos_ids = std::vector<int>{greedy[2]};
        auto r = generate(*m, *ctx, ids, o);
        EXPECT_EQ(r.reason, StopReason::Eos);
        EXPECT_EQ(r.ids(), std::vector<int>(greedy.begin(), greedy.begin() + 3));
    }
    // The model's own eos ids come from generation_config.json.
    EXPECT_EQ(m->config().eos_token_ids, (std::vector<int>{1, 107}));
    // Cancel between tokens.
    {
        auto ctx = m->new_context();
        std::atomic<bool> cancel{false};
        GenerateOptions o;
        o.max_new_tokens = 16;
        o.eos_ids = std::vector<int>{};
        o.cancel = &cancel;
        o.on_token = [&](const GeneratedToken& t) {
            if (t.id == greedy[4]) cancel = true;
            return true;
        };
        auto r = generate(*m, *ctx, ids, o);
        EXPECT_EQ(r.reason, StopReason::Cancelled);
        EXPECT_EQ(r.tokens.size(), 5u);
    }
    // Token limit, and the top-5 log-probabilities.
    {
        auto ctx = m->new_context();
        GenerateOptions o;
        o.max_new_tokens = 4;
        o.eos_ids = std::vector<int>{};
        auto r = generate(*m, *ctx, ids, o);
        EXPECT_EQ(r.reason, StopReason::MaxTokens);
        ASSERT_EQ(r.tokens.size(), 4u);
        const auto& t = r.tokens[0];
        EXPECT_EQ(t.top_count, 5);
        EXPECT_EQ(t.top[0].id, t.id);  // greedy picks the most probable
        EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
        for (int i = 1; i < 5; ++i) EXPECT_LE(t.top[i].logprob, t.top[i - 1].logprob);
        EXPECT_LT(t.logprob, 0.0f);
    }
}

}  // namespace
}  // namespace wp::test

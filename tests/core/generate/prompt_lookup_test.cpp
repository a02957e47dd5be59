// Prompt-lookup decoding: the draft follows transformers' PromptLookupCandidateGenerator, and
// generating with it gives the same tokens, stops and cache as generating without it, in every
// fixture family, cache kind and in q8, bit for bit (the hybrid cache's ring layers rewind through
// keep_for_rewind; drafts are checked on the decode kernels and in decode's attention order,
// Context::decode_kernel_rows).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_support.h"
#include "wp/generate/generator.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

std::vector<int> draft_of(std::vector<int> history, int ngram, int max_tokens, std::vector<int> stop = {}) {
    std::vector<int> d;
    prompt_lookup_draft(history, ngram, max_tokens, stop, d);
    return d;
}

TEST(PromptLookup, DraftFollowsTheEarliestMatchOfTheLongestNgram) {
    // The last bigram (1, 2) first occurs at 0: the tokens after it, at most 3.
    EXPECT_EQ(draft_of({1, 2, 3, 4, 1, 2}, 2, 3), (std::vector<int>{3, 4, 1}));
    // The earliest match wins over a later one.
    EXPECT_EQ(draft_of({1, 2, 9, 1, 2, 8, 1, 2}, 2, 2), (std::vector<int>{9, 1}));
    // No bigram match: the last unigram's (6 at 1).
    EXPECT_EQ(draft_of({5, 6, 7, 6}, 2, 3), (std::vector<int>{7, 6}));
    // A draft stops before an eos token; a match with nothing after it but eos gives nothing from it.
    EXPECT_EQ(draft_of({1, 2, 3, 4, 5, 1, 2}, 2, 5, {4}), (std::vector<int>{3}));
    EXPECT_EQ(draft_of({1, 2, 4, 3, 1, 2}, 2, 5, {4}), (std::vector<int>{}));
    // The draft runs up to the end of the history, not past it.
    EXPECT_EQ(draft_of({3, 3}, 2, 10), (std::vector<int>{3}));
    EXPECT_EQ(draft_of({7, 8, 7}, 1, 10), (std::vector<int>{8, 7}));
    // Nothing to match.
    EXPECT_TRUE(draft_of({1, 2, 3}, 2, 4).empty());
    EXPECT_TRUE(draft_of({1}, 2, 4).empty());
    EXPECT_TRUE(draft_of({1, 2, 1}, 2, 0).empty());
}

// A prompt that repeats itself, so the model's continuation often quotes it (drafts are found
// and some are taken), after a first turn already in the cache.
struct Turn {
    std::vector<int> prompt;
    GenerateOptions opts;
};

GenerateResult run(const Model& m, Context& ctx, const std::vector<int>& prompt, GenerateOptions opts, int lookup) {
    opts.prompt_lookup_tokens = lookup;
    return generate(m, ctx, prompt, opts);
}

// The same tokens, stop, log-probabilities and alternatives, bit for bit: a draft's rows take the
// kernels and the attention order of decoding (Context::decode_kernel_rows).
void expect_same(const GenerateResult& a, const GenerateResult& b) {
    EXPECT_EQ(a.ids(), b.ids());
    EXPECT_EQ(a.reason, b.reason);
    for (std::size_t i = 0; i < std::min(a.tokens.size(), b.tokens.size()); ++i) {
        EXPECT_EQ(a.tokens[i].logprob, b.tokens[i].logprob) << "token " << i;
        ASSERT_EQ(a.tokens[i].top_count, b.tokens[i].top_count) << "token " << i;
        for (int k = 0; k < a.tokens[i].top_count; ++k) {
            EXPECT_EQ(a.tokens[i].top[k].id, b.tokens[i].top[k].id) << "token " << i << ", alternative " << k;
            EXPECT_EQ(a.tokens[i].top[k].logprob, b.tokens[i].top[k].logprob) << "token " << i << ", alternative " << k;
        }
    }
}

TEST(PromptLookup, GreedyOutputIsIdenticalInEveryFamilyAndCache) {
    WP_REQUIRE_SHARED();
    int drafted = 0, accepted = 0;
    for (const auto& dir : fixture_models())
    for (bool q8 : {false, true}) {  // the model's own precision, and q8 (int8 products and rounding)
        SCOPED_TRACE(dir.string() + (q8 ? " q8" : ""));
        LoadOptions lo;
        if (q8) lo.precision = Precision::Q8;
        const auto m = Model::load(dir, {}, lo);
        const int V = m->config().vocab_size;
        for (int stride : {131, 37, 601}) {  // verses of different tokens
            SCOPED_TRACE("verse stride " + std::to_string(stride));
            std::vector<int> verse;
            for (int i = 0; i < 24; ++i) verse.push_back(3 + (i * stride + 7) % (V - 3));
            std::vector<int> prompt = verse;
            prompt.insert(prompt.end(), verse.begin(), verse.end());
            prompt.insert(prompt.end(), verse.begin(), verse.begin() + 5);
            for (CacheKind kind : {CacheKind::Dynamic, CacheKind::Static, CacheKind::Hybrid}) {
                SCOPED_TRACE(cache_kind_name(kind));
                for (float penalty : {1.0f, 1.3f}) {
                    SCOPED_TRACE("penalty " + std::to_string(penalty));
                    GenerateOptions o;
                    o.max_new_tokens = 40;
                    o.eos_ids = std::vector<int>{};
                    o.sampling.repetition_penalty = penalty;
                    auto plain = m->new_context(kind, 400);
                    auto fast = m->new_context(kind, 400);
                    const GenerateResult a = run(*m, *plain, prompt, o, 0);
                    const GenerateResult b = run(*m, *fast, prompt, o, 10);
                    expect_same(a, b);
                    EXPECT_EQ(a.drafted, 0);
                    EXPECT_EQ(plain->cache.length(), fast->cache.length());
                    drafted += b.drafted;
                    accepted += b.accepted;
                    // A second turn on the same caches: whatever the drafts left behind was undone.
                    std::vector<int> next(verse.begin() + 3, verse.begin() + 15);
                    expect_same(run(*m, *plain, next, o, 0), run(*m, *fast, next, o, 10));
                    EXPECT_EQ(plain->cache.length(), fast->cache.length());
                }
            }
        }
    }
    // The comparison above means something only if drafts were made and taken.
    EXPECT_GT(drafted, 0);
    EXPECT_GT(accepted, 0);
    std::printf("prompt lookup over the fixtures: %d draft tokens, %d taken\n", drafted, accepted);
}

// Every way generation can end, met inside a draft, ends as without prompt lookup.
TEST(PromptLookup, StopsInsideADraftMatchPlainDecoding) {
    WP_REQUIRE_SHARED();
    const auto m = Model::load(shared_dir() / "fixtures" / "tiny-gemma2");
    std::vector<int> verse;
    for (int i = 0; i < 16; ++i) verse.push_back(3 + (i * 37) % 990);
    std::vector<int> prompt = verse;
    prompt.insert(prompt.end(), verse.begin(), verse.end());
    GenerateOptions base;
    base.eos_ids = std::vector<int>{};
    base.max_new_tokens = 30;
    auto ctx = m->new_context(CacheKind::Dynamic, 0);
    const GenerateResult full = run(*m, *ctx, prompt, base, 0);
    auto fast_ctx = m->new_context(CacheKind::Dynamic, 0);
    ASSERT_GT(run(*m, *fast_ctx, prompt, base, 8).accepted, 0) << "no draft taken: this test would test nothing";
    for (int limit = 1; limit <= 12; ++limit) {
        GenerateOptions o = base;
        o.max_new_tokens = limit;
        auto a_ctx = m->new_context(CacheKind::Hybrid, 0), b_ctx = m->new_context(CacheKind::Hybrid, 0);
        expect_same(run(*m, *a_ctx, prompt, o, 0), run(*m, *b_ctx, prompt, o, 8));
        EXPECT_EQ(a_ctx->cache.length(), b_ctx->cache.length()) << "max " << limit;
    }
    for (std::size_t e = 1; e < 12; ++e) {
        GenerateOptions o = base;
        o.eos_ids = std::vector<int>{full.tokens[e].id};
        auto a_ctx = m->new_context(CacheKind::Hybrid, 0), b_ctx = m->new_context(CacheKind::Hybrid, 0);
        const GenerateResult a = run(*m, *a_ctx, prompt, o, 0);
        expect_same(a, run(*m, *b_ctx, prompt, o, 8));
        EXPECT_EQ(a.reason, StopReason::Eos);
        EXPECT_EQ(a_ctx->cache.length(), b_ctx->cache.length()) << "eos " << e;
    }
    for (int n = 1; n <= 8; ++n) {  // a callback that stops after n tokens
        GenerateOptions o = base;
        int seen = 0;
        o.on_token = [&](const GeneratedToken&) { return ++seen < n; };
        auto a_ctx = m->new_context(CacheKind::Hybrid, 0), b_ctx = m->new_context(CacheKind::Hybrid, 0);
        const GenerateResult a = run(*m, *a_ctx, prompt, o, 0);
        seen = 0;
        expect_same(a, run(*m, *b_ctx, prompt, o, 8));
        EXPECT_EQ(a_ctx->cache.length(), b_ctx->cache.length()) << "callback " << n;
    }
    // A static cache's capacity reached inside a draft.
    for (int extra = 1; extra <= 10; ++extra) {
        const std::int64_t cap = static_cast<std::int64_t>(prompt.size()) + extra;
        auto a_ctx = m->new_context(CacheKind::Static, cap), b_ctx = m->new_context(CacheKind::Static, cap);
        const GenerateResult a = run(*m, *a_ctx, prompt, base, 0);
        expect_same(a, run(*m, *b_ctx, prompt, base, 8));
        EXPECT_EQ(a.reason, StopReason::ContextFull);
        EXPECT_EQ(a_ctx->cache.length(), b_ctx->cache.length()) << "capacity " << cap;
    }
}

// Sampling is left alone: a sampled choice is not repeatable, so no draft is made.
TEST(PromptLookup, SamplingMakesNoDrafts) {
    WP_REQUIRE_SHARED();
    const auto m = Model::load(shared_dir() / "fixtures" / "tiny-qwen2");
    std::vector<int> prompt;
    for (int r = 0; r < 3; ++r)
        for (int i = 0; i < 10; ++i) prompt.push_back(3 + i * 17);
    GenerateOptions o;
    o.max_new_tokens = 20;
    o.eos_ids = std::vector<int>{};
    o.sampling.greedy = false;
    o.sampling.seed = 3;
    o.prompt_lookup_tokens = 10;
    auto ctx = m->new_context();
    EXPECT_EQ(generate(*m, *ctx, prompt, o).drafted, 0);
}

}  // namespace
}  // namespace wp::test

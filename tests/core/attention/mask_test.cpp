// MaskSpec, the one predicate that decides whether query position q sees key position k, for the
// forward pass, the caches and the visualizer: causal, a sliding window of W that admits exactly
// 0 <= q - k < W, the per-layer kinds a config gives, and absolute positions as the hybrid cache
// holds them after its ring buffers wrap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "wp/attention/mask.h"
#include "wp/cache/kv_cache.h"
#include "wp/model/model_config.h"

namespace wp::test {
namespace {

MaskSpec causal() { return MaskSpec{true, 0}; }
MaskSpec sliding(int window) { return MaskSpec{true, window}; }

TEST(MaskSpec, CausalSeesThePastAndItselfButNotTheFuture) {
    const MaskSpec m = causal();
    for (std::int64_t q = 0; q < 16; ++q)
        for (std::int64_t k = 0; k < 16; ++k) {
            EXPECT_EQ(m.allows(q, k), k <= q) << "q " << q << " k " << k;
            EXPECT_EQ(m.reason(q, k), k <= q ? MaskReason::Allowed : MaskReason::Future) << "q " << q << " k " << k;
        }
}

TEST(MaskSpec, CausalWithoutAWindowSeesTheWholePast) {
    const MaskSpec m = causal();
    EXPECT_FALSE(m.sliding());
    EXPECT_TRUE(m.allows(100'000, 0));
    EXPECT_TRUE(m.allows(100'000, 99'999));
}

TEST(MaskSpec, NonCausalWithoutAWindowSeesEveryPosition) {
    const MaskSpec m{false, 0};
    for (std::int64_t q = 0; q < 8; ++q)
        for (std::int64_t k = 0; k < 8; ++k) EXPECT_EQ(m.reason(q, k), MaskReason::Allowed) << "q " << q << " k " << k;
}

TEST(MaskSpec, WindowAdmitsExactlyTheLastWPositionsIncludingItself) {
    for (int w : {1, 2, 3, 5, 8, 32}) {
        const MaskSpec m = sliding(w);
        EXPECT_TRUE(m.sliding());
        for (std::int64_t q = 0; q < 48; ++q)
            for (std::int64_t k = 0; k < 48; ++k) {
                const std::int64_t d = q - k;
                EXPECT_EQ(m.allows(q, k), 0 <= d && d < w) << "W " << w << " q " << q << " k " << k;
            }
    }
}

TEST(MaskSpec, WindowEdgeWMinusOneBackIsSeenWBackIsNot) {
    const MaskSpec m = sliding(4);
    EXPECT_EQ(m.reason(10, 10), MaskReason::Allowed);       // q - k = 0
    EXPECT_EQ(m.reason(10, 7), MaskReason::Allowed);        // q - k = W - 1
    EXPECT_EQ(m.reason(10, 6), MaskReason::OutsideWindow);  // q - k = W
    EXPECT_EQ(m.reason(10, 0), MaskReason::OutsideWindow);
    EXPECT_EQ(m.reason(10, 11), MaskReason::Future);  // q - k = -1: the future, whatever the window
}

TEST(MaskSpec, WindowOfOneSeesOnlyItself) {
    const MaskSpec m = sliding(1);
    EXPECT_TRUE(m.allows(5, 5));
    EXPECT_EQ(m.reason(5, 4), MaskReason::OutsideWindow);
    EXPECT_EQ(m.reason(5, 6), MaskReason::Future);
}

TEST(MaskSpec, EarlyQueriesSeeEverythingBeforeTheWindowFills) {
    const MaskSpec m = sliding(8);
    for (std::int64_t q = 0; q < 8; ++q)
        for (std::int64_t k = 0; k <= q; ++k) EXPECT_TRUE(m.allows(q, k)) << "q " << q << " k " << k;
}

// A long generation: the positions the hybrid cache keeps are absolute and far beyond the window
// (past 2^31 too, where 32-bit arithmetic would wrap); only their difference matters.
TEST(MaskSpec, LargeAbsolutePositionsKeepTheWindowEdges) {
    const MaskSpec m = sliding(4096);
    for (std::int64_t q : {std::int64_t{4096}, std::int64_t{1'000'003}, (std::int64_t{1} << 31) + 52}) {
        EXPECT_TRUE(m.allows(q, q)) << q;
        EXPECT_TRUE(m.allows(q, q - 4095)) << q;
        EXPECT_EQ(m.reason(q, q - 4096), MaskReason::OutsideWindow) << q;
        EXPECT_EQ(m.reason(q, q + 1), MaskReason::Future) << q;
    }
    EXPECT_TRUE(causal().allows((std::int64_t{1} << 31) + 52, 0));
}

ModelConfig tiny_gemma2(int layers, int window) {
    return ModelConfig::parse(R"({"model_type":"gemma2","vocab_size":100,"hidden_size":64,"intermediate_size":128,
        "num_hidden_layers":)" + std::to_string(layers) + R"(,"num_attention_heads":4,"num_key_value_heads":2,
        "head_dim":16,"sliding_window":)" + std::to_string(window) + "}");
}

// What the decode step does after the sliding layer's ring has wrapped: the query at position
// length() attends to the held keys plus its own. The ring holds the last W positions, so the
// oldest of them is W back and masked, as in transformers' HybridCache.
TEST(MaskSpec, AfterARingWrapTheQuerySeesAllHeldKeysButTheOldest) {
    constexpr int kWindow = 4;
    const ModelConfig cfg = tiny_gemma2(2, kWindow);
    ASSERT_TRUE(cfg.layer_is_sliding(0));
    ASSERT_FALSE(cfg.layer_is_sliding(1));
    KvCache cache(cfg, CacheKind::Hybrid);
    const std::vector<float> row(static_cast<std::size_t>(cfg.kv_dim()), 0.0f);
    for (int t = 0; t < 3 * kWindow + 3; ++t) {  // wraps the ring three times
        for (int l = 0; l < cfg.num_layers; ++l) cache.store(l, row.data(), row.data(), 1);
        cache.advance(1);
    }
    const std::int64_t q = cache.length();  // the next token's position
    ASSERT_TRUE(cache.is_ring(0));
    std::vector<std::int64_t> held = cache.positions(0);
    std::sort(held.begin(), held.end());
    ASSERT_EQ(held, (std::vector<std::int64_t>{q - 4, q - 3, q - 2, q - 1}));
    const MaskSpec& slide = cfg.layer_masks[0];
    EXPECT_EQ(slide.reason(q, held[0]), MaskReason::OutsideWindow);
    for (std::size_t i = 1; i < held.size(); ++i) EXPECT_TRUE(slide.allows(q, held[i])) << held[i];
    EXPECT_TRUE(slide.allows(q, q));
    // Every held key is in the window of the last stored position.
    for (std::int64_t k : held) EXPECT_TRUE(slide.allows(q - 1, k)) << k;
    // The global layer holds and sees every position.
    const MaskSpec& global = cfg.layer_masks[1];
    for (std::int64_t k : cache.positions(1)) EXPECT_TRUE(global.allows(q, k)) << k;
    EXPECT_EQ(static_cast<std::int64_t>(cache.positions(1).size()), q);
}

TEST(MaskSpec, Gemma2ConfigAlternatesSlidingAndGlobalLayers) {
    const ModelConfig cfg = tiny_gemma2(4, 8);
    ASSERT_EQ(cfg.layer_masks.size(), 4u);
    for (int l = 0; l < 4; ++l) {
        const MaskSpec& m = cfg.layer_masks[l];
        EXPECT_TRUE(m.causal) << l;
        EXPECT_EQ(m.window, l % 2 == 0 ? 8 : 0) << l;
        EXPECT_EQ(m.allows(100, 50), l % 2 != 0) << l;  // 50 back: outside the window, seen by global layers
    }
}

TEST(MaskSpec, Qwen2ConfigSlidesFromMaxWindowLayersOn) {
    const ModelConfig cfg = ModelConfig::parse(R"({"model_type":"qwen2","hidden_size":64,"num_attention_heads":4,
        "num_key_value_heads":2,"num_hidden_layers":4,"sliding_window":16,"max_window_layers":2,
        "use_sliding_window":true})");
    for (int l = 0; l < 4; ++l) {
        EXPECT_EQ(cfg.layer_masks[l].window, l >= 2 ? 16 : 0) << l;
        EXPECT_EQ(cfg.layer_masks[l].allows(40, 24), l < 2) << l;  // 16 back
        EXPECT_TRUE(cfg.layer_masks[l].allows(40, 25)) << l;       // 15 back
    }
}

TEST(MaskSpec, LayerTypesChooseEachLayersKind) {
    const ModelConfig cfg = ModelConfig::parse(R"({"model_type":"gemma2","num_hidden_layers":3,"sliding_window":2,
        "layer_types":["full_attention","full_attention","sliding_attention"]})");
    EXPECT_FALSE(cfg.layer_masks[0].sliding());
    EXPECT_FALSE(cfg.layer_masks[1].sliding());
    EXPECT_EQ(cfg.layer_masks[2].window, 2);
    EXPECT_TRUE(cfg.layer_masks[0].allows(9, 0));
    EXPECT_FALSE(cfg.layer_masks[2].allows(9, 7));
}

TEST(MaskSpec, GemmaConfigHasOnlyCausalLayers) {
    const ModelConfig cfg = ModelConfig::parse(R"({"model_type":"gemma","num_hidden_layers":3})");
    for (const MaskSpec& m : cfg.layer_masks) {
        EXPECT_TRUE(m.causal);
        EXPECT_FALSE(m.sliding());
        EXPECT_TRUE(m.allows(10'000, 0));
    }
}

}  // namespace
}  // namespace wp::test

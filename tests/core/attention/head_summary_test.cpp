// The head summary of the fixtures' reference attention probabilities against a computation
// written out here, hand-made rows with known answers, and the engine's own trace.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "wp/attention/head_summary.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

struct Expected {
    double entropy = 0, first = 0, distance = 0, used = 0;
};

// Straight from the definitions, one row at a time, rows 1 .. T-1.
Expected expected_for(const float* p, int T, const MaskSpec& mask) {
    Expected e;
    for (int q = 1; q < T; ++q) {
        const float* row = p + static_cast<std::size_t>(q) * T;
        double total = 0;
        for (int k = 0; k <= q; ++k) total += row[k];
        for (int k = 0; k <= q; ++k) {
            if (row[k] > 0) e.entropy -= row[k] * std::log(static_cast<double>(row[k]));
            e.distance += row[k] * static_cast<double>(q - k);
        }
        e.first += row[0];
        if (mask.sliding()) {
            const int offered = std::min(q + 1, mask.window);
            int need = offered;
            for (int d = 1; d <= offered; ++d) {
                double mass = 0;
                for (int k = q - d + 1; k <= q; ++k) mass += row[k];
                if (mass >= 0.9 * total) {
                    need = d;
                    break;
                }
            }
            e.used += static_cast<double>(need) / offered;
        }
    }
    const double n = T - 1;
    return {e.entropy / n, e.first / n, e.distance / n, e.used / n};
}

TEST(HeadSummary, ReferenceProbabilitiesGiveTheDefinitions) {
    WP_REQUIRE_SHARED();
    int checked_sliding = 0;
    for (const RefCase& rc : all_cases()) {
        const ModelConfig cfg = ModelConfig::load(rc.model_dir);
        const std::vector<float> probs = rc.floats("attn_file");
        const int T = static_cast<int>(rc.input_ids().size()), heads = cfg.num_heads;
        ASSERT_EQ(probs.size(), static_cast<std::size_t>(cfg.num_layers) * heads * T * T);
        for (int l = 0; l < cfg.num_layers; ++l)
            for (int h = 0; h < heads; ++h) {
                const float* p = probs.data() + (static_cast<std::size_t>(l) * heads + h) * T * T;
                const HeadSummary s = summarize_head(p, T, static_cast<std::size_t>(T), cfg.layer_masks[l]);
                const Expected e = expected_for(p, T, cfg.layer_masks[l]);
                EXPECT_NEAR(s.entropy, e.entropy, 1e-9) << rc.name << " layer " << l << " head " << h;
                EXPECT_NEAR(s.first_token, e.first, 1e-9);
                EXPECT_NEAR(s.mean_distance, e.distance, 1e-9);
                if (cfg.layer_masks[l].sliding()) {
                    EXPECT_NEAR(s.window_used, e.used, 1e-9);
                    ++checked_sliding;
                } else {
                    EXPECT_TRUE(std::isnan(s.window_used));
                }
            }
    }
    EXPECT_GT(checked_sliding, 0) << "no sliding layer among the fixtures";
}

TEST(HeadSummary, KnownRows) {
    // Uniform causal attention over 4 tokens, then all on the first token, then all on itself.
    const int T = 4;
    std::vector<float> uniform(T * T, 0), sink(T * T, 0), self(T * T, 0);
    for (int q = 0; q < T; ++q) {
        for (int k = 0; k <= q; ++k) uniform[q * T + k] = 1.0f / (q + 1);
        sink[q * T] = 1;
        self[q * T + q] = 1;
    }
    const HeadSummary u = summarize_head(uniform.data(), T, T, MaskSpec{});
    EXPECT_NEAR(u.entropy, (std::log(2.0) + std::log(3.0) + std::log(4.0)) / 3, 1e-6);
    EXPECT_NEAR(u.first_token, (1 / 2.0 + 1 / 3.0 + 1 / 4.0) / 3, 1e-6);
    EXPECT_NEAR(u.mean_distance, (0.5 + 1.0 + 1.5) / 3, 1e-6);
    const HeadSummary s = summarize_head(sink.data(), T, T, MaskSpec{true, 8});
    EXPECT_NEAR(s.first_token, 1.0, 1e-12);
    EXPECT_NEAR(s.entropy, 0.0, 1e-12);
    EXPECT_NEAR(s.window_used, 1.0, 1e-12);  // the whole window back to the first token
    const HeadSummary me = summarize_head(self.data(), T, T, MaskSpec{true, 8});
    EXPECT_NEAR(me.mean_distance, 0.0, 1e-12);
    EXPECT_NEAR(me.window_used, (1 / 2.0 + 1 / 3.0 + 1 / 4.0) / 3, 1e-12);
}

// The engine's trace summarised equals the reference's summary.
TEST(HeadSummary, TheEnginesTraceAgreesWithTheReference) {
    WP_REQUIRE_SHARED();
    for (const RefCase& rc : all_cases()) {
        LoadOptions lo;
        lo.kernels.bf16_gemm = false;
        const auto model = Model::load(rc.model_dir, {}, lo);
        const ModelConfig& cfg = model->config();
        const std::vector<int> ids = rc.input_ids();
        const int T = static_cast<int>(ids.size());
        AttentionTrace trace(cfg.num_layers, cfg.num_heads, T);
        auto ctx = model->new_context();
        model->forward(*ctx, ids, LogitsMode::Last, &trace);
        const auto got = summarize_heads(trace, cfg.layer_masks, T);
        const std::vector<float> probs = rc.floats("attn_file");
        for (int l = 0; l < cfg.num_layers; ++l)
            for (int h = 0; h < cfg.num_heads; ++h) {
                const HeadSummary want = summarize_head(
                    probs.data() + (static_cast<std::size_t>(l) * cfg.num_heads + h) * T * T, T, T, cfg.layer_masks[l]);
                const HeadSummary& s = got[static_cast<std::size_t>(l) * cfg.num_heads + h];
                EXPECT_NEAR(s.entropy, want.entropy, 1e-4) << rc.name << " layer " << l << " head " << h;
                EXPECT_NEAR(s.first_token, want.first_token, 1e-4);
                EXPECT_NEAR(s.mean_distance, want.mean_distance, 1e-4);
                if (cfg.layer_masks[l].sliding()) { EXPECT_NEAR(s.window_used, want.window_used, 1e-4); }
            }
    }
}

}  // namespace
}  // namespace wp::test

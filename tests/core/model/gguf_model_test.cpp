// GGUF files of the fixtures (written at build time by tests/bench/llamacpp/gguf_export.py, as
// llama.cpp's converter lays them out) run as their folders do: the reference logits, the same
// q8 weights, and for the demo model (with its own tokenizer in the file) the same tokens, prompt
// and greedy text.
#include <gtest/gtest.h>

#include <cmath>

#include "io/gguf.h"
#include "test_support.h"
#include "wp/generate/chat_session.h"
#include "wp/model/model.h"

namespace wp::test {
namespace {

fs::path gguf_of(const fs::path& model_dir) {
    // fixtures/tiny-gemma2/model_bf16 -> tiny-gemma2-model_bf16.gguf
    const fs::path rel = fs::relative(model_dir, shared_dir() / "fixtures");
    std::string name = rel.string();
    for (char& c : name)
        if (c == '/') c = '-';
    return fs::path(WP_GGUF_FIXTURE_DIR) / (name + ".gguf");
}

std::vector<float> all_logits(const Model& m, const std::vector<int>& ids) {
    auto ctx = m.new_context();
    const auto out = m.forward(*ctx, ids, LogitsMode::All);
    return {out.begin(), out.end()};
}

TEST(GgufModel, FixturesGiveTheReferenceLogits) {
    WP_REQUIRE_SHARED();
    int cases = 0;
    for (const RefCase& rc : all_cases()) {
        SCOPED_TRACE(rc.name);
        const fs::path file = gguf_of(rc.model_dir);
        ASSERT_TRUE(fs::exists(file)) << file;
        // As forward_test: the references are f32 sums, so bf16 weights run without the bf16 product.
        LoadOptions exact;
        exact.kernels.bf16_gemm = false;
        const auto gguf = Model::load(file, {}, exact);
        const auto folder = Model::load(rc.model_dir, {}, exact);
        const std::vector<float> ref = rc.floats("logits_file");
        const std::vector<float> got = all_logits(*gguf, rc.input_ids());
        const std::vector<float> same = all_logits(*folder, rc.input_ids());
        ASSERT_EQ(got.size(), ref.size());
        float worst = 0, apart = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) {
            worst = std::max(worst, std::fabs(got[i] - ref[i]));
            apart = std::max(apart, std::fabs(got[i] - same[i]));
        }
        EXPECT_LE(worst, 1e-4f);
        // Gemma's stored 1 + w is the sum the folder's path forms at run time, in f32 as well.
        EXPECT_LE(apart, 1e-5f);
        ++cases;
    }
    EXPECT_GE(cases, 10);
}

TEST(GgufModel, QuantizedAtLoadLikeTheFolder) {
    WP_REQUIRE_SHARED();
    LoadOptions q8;
    q8.precision = Precision::Q8;
    const fs::path dir = shared_dir() / "fixtures" / "tiny-qwen2";
    const auto gguf = Model::load(gguf_of(dir), {}, q8);
    const auto folder = Model::load(dir, {}, q8);
    EXPECT_EQ(gguf->precision(), Precision::Q8);
    ASSERT_EQ(gguf->weight_conversions().size(), 1u);
    EXPECT_EQ(gguf->weight_conversions()[0].from, "F32");
    EXPECT_EQ(gguf->weight_conversions()[0].to, Precision::Q8);
    const std::vector<int> ids = {5, 17, 300, 2, 999, 41, 7};
    EXPECT_EQ(all_logits(*gguf, ids), all_logits(*folder, ids));  // the same f32 values, the same q8 bytes
}

TEST(GgufModel, Q8_0FileKeepsItsValues) {
    // A complete tiny Gemma2 whose matrices are Q8_0 (the fuzz seed): repacked, not re-quantized.
    const auto m = Model::load(fs::path(WP_GGUF_SEED_DIR) / "tiny-gemma2.gguf");
    EXPECT_EQ(m->precision(), Precision::Q8);
    EXPECT_EQ(m->weights_dtype(), "Q8_0");
    ASSERT_EQ(m->weight_conversions().size(), 1u);
    EXPECT_TRUE(m->weight_conversions()[0].repacked);
    EXPECT_EQ(m->weight_conversions()[0].matrices, 8);  // 7 in the layer + the tied embedding
    const auto logits = all_logits(*m, {2, 3, 4, 5});
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    LoadOptions f32;
    f32.precision = Precision::F32;
    const auto wide = Model::load(fs::path(WP_GGUF_SEED_DIR) / "tiny-gemma2.gguf", {}, f32);
    EXPECT_EQ(wide->weight_conversions()[0].to, Precision::F32);
    EXPECT_FALSE(wide->weight_conversions()[0].repacked);
}

TEST(GgufModel, DemoModelChatsAsItsFolder) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "models" / "windowpane-demo-gemma2";
    const auto folder = LoadedModel::load(dir);
    const auto gguf = LoadedModel::load(fs::path(WP_GGUF_FIXTURE_DIR) / "windowpane-demo-gemma2.gguf");
    const std::string text = "And God said, Let there be light: <start_of_turn> and there was light.";
    EXPECT_EQ(gguf->tokenizer().encode(text, true), folder->tokenizer().encode(text, true));
    const std::vector<ChatMessage> chat = {{"user", "Who made the heaven and the earth?"}};
    ChatSession a(*folder), b(*gguf);
    GenerateOptions opts;
    opts.max_new_tokens = 24;
    const Reply ra = a.reply(chat, opts), rb = b.reply(chat, opts);
    EXPECT_EQ(rb.result.prompt_tokens, ra.result.prompt_tokens);
    EXPECT_EQ(rb.text, ra.text);
    EXPECT_FALSE(ra.text.empty());
}

}  // namespace
}  // namespace wp::test

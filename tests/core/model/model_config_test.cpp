// config.json parsing with transformers' defaults for the keys a config may omit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "wp/error.h"
#include "wp/model/model_config.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string parse_error(const std::string& cfg, const std::string& gen = {}) {
    return error_of([&] { ModelConfig::parse(cfg, gen); });
}

TEST(Config, Gemma2DefaultsAlternateLayersAndHybridCache) {
    // No layer_types, no tie_word_embeddings: even layers slide, the head is tied.
    auto c = ModelConfig::parse(R"({"model_type":"gemma2","num_hidden_layers":5,"sliding_window":8,
        "head_dim":32,"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,"query_pre_attn_scalar":32})");
    EXPECT_EQ(c.family, Family::Gemma2);
    for (int l = 0; l < 5; ++l) EXPECT_EQ(c.layer_is_sliding(l), l % 2 == 0) << l;
    EXPECT_EQ(c.layer_masks[0].window, 8);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(32.0f));
    EXPECT_FLOAT_EQ(c.attn_softcap, 50.0f);
    EXPECT_FLOAT_EQ(c.final_softcap, 30.0f);
    EXPECT_EQ(c.cache_implementation, "hybrid");
    EXPECT_EQ(c.norm_style, NormStyle::OnePlusWeight);
    EXPECT_TRUE(c.sandwich_norms);
    EXPECT_TRUE(c.scale_embeddings);
}

TEST(Config, Gemma2LayerTypesWin) {
    auto c = ModelConfig::parse(R"({"model_type":"gemma2","num_hidden_layers":3,"sliding_window":16,
        "layer_types":["full_attention","sliding_attention","sliding_attention"]})");
    EXPECT_FALSE(c.layer_is_sliding(0));
    EXPECT_TRUE(c.layer_is_sliding(1));
    EXPECT_TRUE(c.layer_is_sliding(2));
    EXPECT_THAT(parse_error(R"({"model_type":"gemma2","num_hidden_layers":2,"layer_types":["full_attention"]})"),
                HasSubstr("layer_types must list one entry per layer"));
    EXPECT_THAT(parse_error(R"({"model_type":"gemma2","num_hidden_layers":1,"layer_types":["chunked"]})"),
                HasSubstr("is not sliding_attention or full_attention"));
}

TEST(Config, GemmaHeadDimIsNotHiddenOverHeads) {
    auto c = ModelConfig::parse(R"({"model_type":"gemma","hidden_size":64,"num_attention_heads":4,
        "num_key_value_heads":1,"head_dim":32,"hidden_act":"silu"})");
    EXPECT_EQ(c.head_dim, 32);
    EXPECT_EQ(c.q_dim(), 128);
    EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(32.0f));
    // Gemma ignores the legacy hidden_act; a missing hidden_activation means gelu tanh.
    EXPECT_EQ(c.activation, Activation::GeluTanh);
    EXPECT_EQ(c.attn_softcap, 0.0f);
    for (int l = 0; l < c.num_layers; ++l) EXPECT_FALSE(c.layer_is_sliding(l));
}

TEST(Config, Qwen2SlidingWindowIsInertUnlessEnabled) {
    auto off = ModelConfig::parse(R"({"model_type":"qwen2","hidden_size":64,"num_attention_heads":4,
        "num_key_value_heads":2,"num_hidden_layers":3,"sliding_window":32768,"max_window_layers":2,
        "use_sliding_window":false,"tie_word_embeddings":false})");
    EXPECT_EQ(off.head_dim, 16);
    for (int l = 0; l < 3; ++l) EXPECT_FALSE(off.layer_is_sliding(l));
    EXPECT_TRUE(off.qkv_bias);
    EXPECT_EQ(off.norm_style, NormStyle::Weight);
    EXPECT_FALSE(off.tie_word_embeddings);
    EXPECT_EQ(off.activation, Activation::Silu);

    auto on = ModelConfig::parse(R"({"model_type":"qwen2","hidden_size":64,"num_attention_heads":32,
        "num_hidden_layers":4,"sliding_window":16,"max_window_layers":2,"use_sliding_window":true})");
    EXPECT_FALSE(on.layer_is_sliding(0));
    EXPECT_FALSE(on.layer_is_sliding(1));
    EXPECT_TRUE(on.layer_is_sliding(2));
    EXPECT_EQ(on.layer_masks[3].window, 16);
    EXPECT_EQ(on.num_kv_heads, 32);  // Qwen2Config's default
    EXPECT_EQ(on.head_dim, 2);
}

TEST(Config, Qwen2ExplicitHeadDimAndNullKvHeads) {
    auto c = ModelConfig::parse(R"({"model_type":"qwen2","hidden_size":64,"num_attention_heads":4,
        "num_key_value_heads":null,"head_dim":24})");
    EXPECT_EQ(c.head_dim, 24);
    EXPECT_EQ(c.num_kv_heads, 4);
}

TEST(Config, EosIdsAreTheUnionOfConfigAndGenerationConfig) {
    auto c = ModelConfig::parse(R"({"model_type":"qwen2","eos_token_id":999})",
                                R"({"eos_token_id":[999,997],"bos_token_id":997})");
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{999, 997}));
    EXPECT_EQ(c.bos_token_id, 997);
    auto g = ModelConfig::parse(R"({"model_type":"gemma","eos_token_id":[1,107]})");
    EXPECT_EQ(g.eos_token_ids, (std::vector<int>{1, 107}));
}

TEST(Config, RopeParametersOfTransformersV5) {
    auto c = ModelConfig::parse(R"({"model_type":"qwen2","rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"},"dtype":"bfloat16"})");
    EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
    EXPECT_EQ(c.torch_dtype, "bfloat16");
    EXPECT_THAT(parse_error(R"({"model_type":"qwen2","rope_scaling":{"type":"yarn","factor":4}})"),
                HasSubstr("rope_scaling type \"yarn\" is not supported"));
}

TEST(Config, ClearErrors) {
    EXPECT_THAT(parse_error("{"), HasSubstr("config.json: not valid JSON"));
    EXPECT_THAT(parse_error(R"({"model_type":"llama"})"), HasSubstr("unknown model_type \"llama\" (supported: gemma, gemma2, qwen2)"));
    EXPECT_THAT(parse_error(R"({"hidden_size":8})"), HasSubstr("no model_type"));
    EXPECT_THAT(parse_error(R"({"model_type":"qwen2","hidden_size":48,"num_attention_heads":6,"num_key_value_heads":4})"),
                HasSubstr("not a multiple of num_key_value_heads"));
    EXPECT_THAT(parse_error(R"({"model_type":"gemma","hidden_size":-3})"), HasSubstr("hidden_size = -3 is out of range"));
    EXPECT_THAT(parse_error(R"({"model_type":"gemma","hidden_size":"big"})"), HasSubstr("hidden_size must be an integer"));
    EXPECT_THAT(parse_error(R"({"model_type":"gemma"})", "{oops"), HasSubstr("generation_config.json: not valid JSON"));
}

TEST(Config, EachFamilyIsFoundByItsName) {
    for (Family f : {Family::Gemma, Family::Gemma2, Family::Qwen2}) {
        const std::string name = family_name(f);
        const ModelConfig c = ModelConfig::parse(R"({"model_type":")" + name + R"("})");
        EXPECT_EQ(c.family, f) << name;
        EXPECT_EQ(c.model_type, name);
    }
}

TEST(Config, EveryFixtureParses) {
    WP_REQUIRE_SHARED();
    for (const auto& dir : fixture_models()) {
        SCOPED_TRACE(dir.string());
        const ModelConfig c = ModelConfig::load(dir);
        EXPECT_FALSE(c.eos_token_ids.empty());
    }
    const ModelConfig demo = ModelConfig::load(shared_dir() / "models" / "windowpane-demo-gemma2");
    EXPECT_EQ(demo.sliding_window, 32);
    EXPECT_EQ(demo.eos_token_ids, (std::vector<int>{1, 5}));
}

}  // namespace
}  // namespace wp::test

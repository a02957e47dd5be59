// config.json written to hurt: sizes past every real model, numbers that do not fit an int, and
// values that make no sense. Each ends in a one-line error naming the key, before anything is sized.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "test_support.h"
#include "wp/error.h"
#include "wp/model/model_config.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string parse_error(const std::string& cfg, const std::string& gen = {}) {
    return error_of([&] { ModelConfig::parse(cfg, gen); });
}

std::string gemma2_with(const std::string& key_value) {
    return R"({"model_type":"gemma2",)" + key_value + "}";
}

TEST(ConfigHostile, HugeLayerCountIsRefusedAtOnce) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(parse_error(gemma2_with(R"("num_hidden_layers":1e9)")),
              "config.json: num_hidden_layers = 1000000000 is out of range (1..1024)");
    EXPECT_EQ(parse_error(gemma2_with(R"("num_hidden_layers":1000000000)")),
              "config.json: num_hidden_layers = 1000000000 is out of range (1..1024)");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(1)));
}

TEST(ConfigHostile, NumbersPastInt64AreShownAsWritten) {
    EXPECT_EQ(parse_error(gemma2_with(R"("hidden_size":18446744073709551616)")),
              "config.json: hidden_size = 18446744073709551616 is out of range (1..131072)");
    EXPECT_EQ(parse_error(gemma2_with(R"("hidden_size":18446744073709551615)")),
              "config.json: hidden_size = 18446744073709551615 is out of range (1..131072)");
    EXPECT_EQ(parse_error(gemma2_with(R"("hidden_size":-9223372036854775808)")),
              "config.json: hidden_size = -9223372036854775808 is out of range (1..131072)");
    EXPECT_EQ(parse_error(gemma2_with(R"("vocab_size":1e300)")),
              "config.json: vocab_size = too large is out of range (1..4194304)");
    EXPECT_EQ(parse_error(gemma2_with(R"("vocab_size":2.5)")), "config.json: vocab_size must be an integer");
}

TEST(ConfigHostile, EveryShapeKeyIsBounded) {
    const std::pair<const char*, const char*> cases[] = {
        {"vocab_size", "(1..4194304)"},           {"hidden_size", "(1..131072)"},
        {"intermediate_size", "(1..1048576)"},    {"num_hidden_layers", "(1..1024)"},
        {"num_attention_heads", "(1..1024)"},     {"num_key_value_heads", "(1..1024)"},
        {"head_dim", "(1..2048)"},                {"max_position_embeddings", "(1..4194304)"},
        {"sliding_window", "(1..4194304)"},
    };
    for (const auto& [key, range] : cases) {
        SCOPED_TRACE(key);
        EXPECT_EQ(parse_error(gemma2_with("\"" + std::string(key) + "\":2147483648")),
                  "config.json: " + std::string(key) + " = 2147483648 is out of range " + range);
        EXPECT_THAT(parse_error(gemma2_with("\"" + std::string(key) + "\":0")), HasSubstr("is out of range"));
    }
    EXPECT_THAT(parse_error(R"({"model_type":"qwen2","use_sliding_window":true,"max_window_layers":1e12})"),
                HasSubstr("max_window_layers = 1000000000000 is out of range (0..4194304)"));
    // head_dim derived from hidden_size / num_attention_heads is bounded too.
    EXPECT_EQ(parse_error(R"({"model_type":"qwen2","hidden_size":131072,"num_attention_heads":1,
        "num_key_value_heads":1})"),
              "config.json: head_dim = 131072 is out of range (1..2048)");
}

TEST(ConfigHostile, RealSizesStayInside) {
    // Qwen2-72B's shape and Gemma2-27B's: well inside the limits.
    const ModelConfig q = ModelConfig::parse(R"({"model_type":"qwen2","vocab_size":152064,"hidden_size":8192,
        "intermediate_size":29568,"num_hidden_layers":80,"num_attention_heads":64,"num_key_value_heads":8,
        "max_position_embeddings":131072,"sliding_window":131072,"max_window_layers":80})");
    EXPECT_EQ(q.num_layers, 80);
    const ModelConfig g = ModelConfig::parse(R"({"model_type":"gemma2","vocab_size":256000,"hidden_size":4608,
        "intermediate_size":36864,"num_hidden_layers":46,"num_attention_heads":32,"num_key_value_heads":16,
        "head_dim":128,"sliding_window":4096,"query_pre_attn_scalar":144})");
    EXPECT_EQ(g.vocab_size, 256000);
}

TEST(ConfigHostile, TokenIdsMustFitAnInt) {
    EXPECT_EQ(parse_error(R"({"model_type":"qwen2","eos_token_id":4294967296})"),
              "config.json: eos_token_id 4294967296 is not a token id (0..2147483647)");
    EXPECT_EQ(parse_error(R"({"model_type":"qwen2","eos_token_id":[1,-5]})"),
              "config.json: eos_token_id -5 is not a token id (0..2147483647)");
    EXPECT_EQ(parse_error(R"({"model_type":"qwen2","bos_token_id":18446744073709551615})"),
              "config.json: bos_token_id 18446744073709551615 is not a token id (0..2147483647)");
    EXPECT_EQ(parse_error(R"({"model_type":"qwen2"})", R"({"pad_token_id":2147483648})"),
              "generation_config.json: pad_token_id 2147483648 is not a token id (0..2147483647)");
}

TEST(ConfigHostile, NormEpsilonAndScalesMustBePositive) {
    EXPECT_EQ(parse_error(gemma2_with(R"("rms_norm_eps":-1e-6)")),
              "config.json: rms_norm_eps must be a positive finite number");
    EXPECT_EQ(parse_error(gemma2_with(R"("rms_norm_eps":0)")),
              "config.json: rms_norm_eps must be a positive finite number");
    EXPECT_EQ(parse_error(gemma2_with(R"("query_pre_attn_scalar":-1)")),
              "config.json: query_pre_attn_scalar must be a positive finite number");
    EXPECT_EQ(parse_error(gemma2_with(R"("final_logit_softcapping":-1)")),
              "config.json: soft-capping must be a finite number >= 0");
    // JSON has no infinity; a number past double's range is a parse error, in the project's words.
    EXPECT_EQ(parse_error(gemma2_with(R"("rms_norm_eps":1e999)")),
              "config.json: not valid JSON (a number out of range)");
}

TEST(ConfigHostile, CacheImplementationIsKnownOrRefused) {
    EXPECT_EQ(parse_error(gemma2_with(R"("cache_implementation":"magic")")),
              "config.json: unknown cache_implementation \"magic\" (supported: hybrid, sliding_window, "
              "offloaded_hybrid, static, offloaded_static, dynamic, dynamic_full, offloaded, quantized)");
    EXPECT_THAT(parse_error(R"({"model_type":"gemma2"})", R"({"cache_implementation":"magic"})"),
                HasSubstr("generation_config.json: unknown cache_implementation \"magic\""));
    EXPECT_EQ(parse_error(gemma2_with(R"("cache_implementation":"hybrid_chunked")")),
              "config.json: cache_implementation \"hybrid_chunked\" (chunked attention) is not supported");
    // What each accepted value is served as.
    const std::pair<const char*, const char*> served[] = {
        {"hybrid", "hybrid"},   {"sliding_window", "sliding_window"}, {"offloaded_hybrid", "hybrid"},
        {"static", "static"},   {"offloaded_static", "static"},       {"dynamic", "dynamic"},
        {"dynamic_full", "dynamic"}, {"offloaded", "dynamic"},        {"quantized", "dynamic"},
    };
    for (const auto& [name, as] : served) {
        SCOPED_TRACE(name);
        EXPECT_EQ(ModelConfig::parse(R"({"model_type":"gemma2"})", std::string(R"({"cache_implementation":")") + name +
                                                                        "\"}")
                      .cache_implementation,
                  as);
    }
}

}  // namespace
}  // namespace wp::test

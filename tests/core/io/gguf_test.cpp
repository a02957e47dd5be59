// GGUF headers, well-formed and written to hurt: lying counts, huge strings, truncation, misaligned,
// overlapping and out-of-file tensors, unknown types and architectures. Each is a one-line error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "io/gguf.h"
#include "model/gguf_checkpoint.h"
#include "gguf_writer.h"
#include "test_support.h"
#include "wp/error.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

void write_bytes(const std::filesystem::path& p, const std::string& s) {
    wp::test::write_bytes(p, std::vector<std::uint8_t>(s.begin(), s.end()));
}

using Gguf = GgufWriter;

std::string open_error(const std::string& bytes) {
    TempDir d;
    write_bytes(d.path() / "m.gguf", bytes);
    return error_of([&] { GgufFile f(d.path() / "m.gguf"); });
}

TEST(Gguf, ReadsMetadataAndTensors) {
    Gguf g;
    g.string("general.architecture", "qwen2").u32("qwen2.block_count", 2).f32("qwen2.rope.freq_base", 1e6f);
    g.strings("tokenizer.ggml.tokens", {"a", "bc", ""});
    g.tensor("token_embd.weight", {64, 3}, 8, 3 * 2 * 34).tensor("output_norm.weight", {64}, 0, 256);
    TempDir d;
    write_bytes(d.path() / "m.gguf", g.bytes());
    GgufFile f(d.path() / "m.gguf");
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.require_string("general.architecture"), "qwen2");
    EXPECT_EQ(f.require_int("qwen2.block_count"), 2);
    EXPECT_FLOAT_EQ(static_cast<float>(*f.get_float("qwen2.rope.freq_base")), 1e6f);
    EXPECT_EQ(f.string_array("tokenizer.ggml.tokens"), (std::vector<std::string_view>{"a", "bc", ""}));
    EXPECT_EQ(f.get_int("absent"), std::nullopt);
    EXPECT_EQ(error_of([&] { f.get_int("general.architecture"); }),
              "m.gguf: general.architecture is string, expected an integer");
    ASSERT_EQ(f.tensors().size(), 2u);
    const GgufTensor* t = f.tensor("token_embd.weight");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->bytes, 204u);
    EXPECT_EQ(t->dims_string(), "[64, 3]");
    EXPECT_EQ(ggml_type_name(t->type), "Q8_0");
    EXPECT_EQ(t->data[0], 1);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t->data) % 32, 0u);
}

TEST(Gguf, HostileHeadersAreOneLineErrors) {
    EXPECT_EQ(open_error("GGUF"), "m.gguf: truncated: the version needs 4 bytes at offset 4, 0 left");
    EXPECT_EQ(open_error("GGML" + std::string(20, '\0')), "m.gguf: not a GGUF file (the first bytes are not \"GGUF\")");
    Gguf v1;
    v1.version = 1;
    EXPECT_EQ(open_error(v1.bytes()), "m.gguf: GGUF version 1 is not supported (versions 2 and 3 are)");

    Gguf lying;  // a count far beyond what the file holds
    lying.n_kv = 1u << 15;
    EXPECT_THAT(open_error(lying.bytes()), HasSubstr("metadata entries, more than the file can hold"));
    Gguf many;
    many.n_tensors = 1ull << 40;
    EXPECT_THAT(open_error(many.bytes()), HasSubstr("tensors, more than the file can hold"));

    Gguf huge;  // a string length of 2^60
    huge.kvs = Gguf::raw<std::uint64_t>(1ull << 60) + "k";
    huge.n_kv = 1;
    EXPECT_EQ(open_error(huge.bytes()), "m.gguf: a metadata key claims 1152921504606846976 bytes (more than 67108864)");
    Gguf long_string;
    long_string.kvs = Gguf::str("k") + Gguf::raw<std::uint32_t>(8) + Gguf::raw<std::uint64_t>(1000) + "short";
    long_string.n_kv = 1;
    EXPECT_THAT(open_error(long_string.bytes()), HasSubstr("truncated: k needs 1000 bytes"));
    Gguf array;
    array.add("arr", 9, Gguf::raw<std::uint32_t>(4) + Gguf::raw<std::uint64_t>(1u << 25));
    EXPECT_THAT(open_error(array.bytes()), HasSubstr("truncated: arr claims 33554432 elements"));
    Gguf twice;
    twice.u32("a", 1).u32("a", 2);
    EXPECT_EQ(open_error(twice.bytes()), "m.gguf: metadata key a appears twice");
    Gguf bad_type;
    bad_type.add("k", 13, "");
    EXPECT_EQ(open_error(bad_type.bytes()), "m.gguf: k has unknown value type 13");
    Gguf align;
    align.u32("general.alignment", 48);
    EXPECT_EQ(open_error(align.bytes()), "m.gguf: general.alignment must be a power of two up to 1 MiB");
}

TEST(Gguf, HostileTensorsAreOneLineErrors) {
    auto one = [](std::vector<std::int64_t> dims, std::uint32_t type, std::size_t bytes) {
        Gguf g;
        g.tensor("w", std::move(dims), type, bytes);
        return g;
    };
    EXPECT_EQ(open_error(one({4}, 99, 16).bytes()), "m.gguf: tensor w has unknown type 99");
    EXPECT_EQ(open_error(one({0}, 0, 0).bytes()), "m.gguf: tensor w has dimension 0");
    EXPECT_EQ(open_error(one({1, 1, 1, 1, 1}, 0, 4).bytes()), "m.gguf: tensor w has 5 dimensions (1 to 4 allowed)");
    EXPECT_EQ(open_error(one({1ll << 40, 1ll << 40}, 0, 4).bytes()), "m.gguf: tensor w has too many elements");
    // A type Windowpane cannot compute with is still measured against the file (IQ4_XS: 136 bytes per 256).
    EXPECT_THAT(open_error(one({256, 1ll << 40}, 23, 0).bytes()), HasSubstr("truncated: tensor w (149533581377536 bytes"));
    EXPECT_EQ(open_error(one({48}, 8, 64).bytes()),
              "m.gguf: tensor w (Q8_0) has rows of 48 elements, not a multiple of its block of 32");
    // The data a tensor claims runs past the end of the file.
    Gguf cut = one({64}, 0, 256);
    std::string bytes = cut.bytes();
    bytes.resize(bytes.size() - 100);
    EXPECT_THAT(open_error(bytes), HasSubstr("truncated: tensor w (256 bytes at data offset 0) runs past the end"));
    Gguf mis;
    mis.tensor("w", {4}, 0, 0, 8);
    EXPECT_EQ(open_error(mis.bytes()), "m.gguf: tensor w starts at offset 8, not a multiple of the alignment 32");
    Gguf overlap;
    overlap.tensor("a", {64}, 0, 256).tensor("b", {32}, 0, 0, 128);
    EXPECT_EQ(open_error(overlap.bytes()), "m.gguf: tensor b overlaps tensor a");
    Gguf dup;
    dup.tensor("a", {8}, 0, 32).tensor("a", {8}, 0, 32);
    EXPECT_EQ(open_error(dup.bytes()), "m.gguf: tensor a appears twice");
}

TEST(Gguf, ConfigFromMetadata) {
    auto config_error = [](Gguf g) {
        TempDir d;
        write_bytes(d.path() / "m.gguf", g.bytes());
        return error_of([&] { gguf_model_config(GgufFile(d.path() / "m.gguf")); });
    };
    auto gemma2 = [] {
        Gguf g;
        g.string("general.architecture", "gemma2").u32("gemma2.embedding_length", 64).u32("gemma2.block_count", 4);
        g.u32("gemma2.attention.head_count", 4).u32("gemma2.attention.head_count_kv", 2).u32("gemma2.feed_forward_length", 128);
        g.u32("gemma2.context_length", 8192).u32("gemma2.attention.key_length", 32).u32("gemma2.attention.value_length", 32);
        g.f32("gemma2.attn_logit_softcapping", 5).f32("gemma2.final_logit_softcapping", 3).u32("gemma2.attention.sliding_window", 8);
        g.u32("tokenizer.ggml.eos_token_id", 1).u32("tokenizer.ggml.bos_token_id", 2);
        g.tensor("token_embd.weight", {64, 1000}, 0, 64 * 1000 * 4);
        return g;
    };
    TempDir d;
    write_bytes(d.path() / "m.gguf", gemma2().bytes());
    ASSERT_TRUE(is_gguf_file(d.path() / "m.gguf"));
    EXPECT_FALSE(is_gguf_file(d.path()));
    const ModelConfig c = ModelConfig::load(d.path() / "m.gguf");
    EXPECT_EQ(c.family, Family::Gemma2);
    EXPECT_EQ(c.vocab_size, 1000);
    EXPECT_EQ(c.head_dim, 32);
    EXPECT_EQ(c.sliding_window, 8);
    EXPECT_FLOAT_EQ(c.attn_softcap, 5.f);
    EXPECT_FLOAT_EQ(c.attn_scale, 1.f / std::sqrt(32.f));
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.norm_style, NormStyle::Weight);  // the converter stored 1 + w
    EXPECT_EQ(c.eos_token_ids, std::vector<int>{1});
    EXPECT_EQ(gguf_tensor_name(c, "model.layers.3.pre_feedforward_layernorm.weight"), "blk.3.ffn_norm.weight");
    EXPECT_EQ(gguf_tensor_name(c, "model.layers.0.self_attn.o_proj.weight"), "blk.0.attn_output.weight");

    Gguf llama;
    llama.string("general.architecture", "llama");
    EXPECT_EQ(config_error(llama), "m.gguf: general.architecture \"llama\" is not one Windowpane runs (gemma, gemma2, qwen2)");
    Gguf zero = gemma2();
    zero.u32("gemma2.attention.head_count_kv", 0);  // written twice: refused before the value matters
    EXPECT_EQ(config_error(zero), "m.gguf: metadata key gemma2.attention.head_count_kv appears twice");
    Gguf bad_eos = gemma2();
    bad_eos.u32("tokenizer.ggml.eot_token_id", 5000);
    EXPECT_EQ(config_error(bad_eos), "m.gguf: tokenizer.ggml.eot_token_id = 5000 is outside the vocabulary (0..999)");
    Gguf no_layers;
    no_layers.string("general.architecture", "qwen2").u32("qwen2.embedding_length", 64).u32("qwen2.block_count", 0);
    no_layers.tensor("token_embd.weight", {64, 10}, 0, 2560);
    EXPECT_EQ(config_error(no_layers), "m.gguf: qwen2.block_count = 0 is out of range (1..1024)");
}

}  // namespace
}  // namespace wp::test

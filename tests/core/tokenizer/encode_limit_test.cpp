// The longest text a tokenizer encodes: one repeated letter is a single pre-token whose merges
// cost tens of bytes per byte, so a text past max_encode_bytes() is refused before any work, in
// one line, and a text at the limit still encodes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "test_support.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string encode_error(const Tokenizer& tok, std::string_view text) {
    try {
        tok.encode(text, true);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

void expect_bounded(const fs::path& dir, std::size_t expected_limit) {
    const auto tok = Tokenizer::load(dir);
    ASSERT_EQ(tok->max_encode_bytes(), expected_limit);
    const std::string over(expected_limit + 1, 'a');
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(encode_error(*tok, over), "the text is " + std::to_string(expected_limit + 1) +
                                            " bytes; this tokenizer encodes at most " +
                                            std::to_string(expected_limit >> 20) + " MB (" +
                                            std::to_string(expected_limit) + " bytes) at once");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::milliseconds(500)));
}

TEST(EncodeLimit, SentencePieceRefusesPastOneMegabyte) {
    WP_REQUIRE_SHARED();
    const fs::path dir = shared_dir() / "tokenizers" / "llama2-sentencepiece";
    expect_bounded(dir, std::size_t{1} << 20);
    // At the limit it still encodes: every 'a' lands in some piece.
    const auto tok = Tokenizer::load(dir);
    const std::string at(std::size_t{1} << 20, 'a');
    const auto ids = tok->encode(at, false);
    EXPECT_GT(ids.size(), at.size() / 64);
    EXPECT_LE(ids.size(), at.size() + 1);
}

TEST(EncodeLimit, ByteLevelBpeRefusesPastEightMegabytes) {
    WP_REQUIRE_SHARED();
    expect_bounded(shared_dir() / "tokenizers" / "qwen2", std::size_t{8} << 20);
    expect_bounded(shared_dir() / "tokenizers" / "gemma2", std::size_t{8} << 20);
}

}  // namespace
}  // namespace wp::test

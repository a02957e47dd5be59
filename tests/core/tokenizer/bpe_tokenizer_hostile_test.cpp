// tokenizer.json written to hurt: ids that would size the id table past the file's own entries,
// ids past an int, two tokens with one id, and keys of the wrong type. Each ends in a one-line error
// naming the file and the key, quickly and without a large allocation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "test_support.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

using testing::HasSubstr;

std::string load_error(const std::string& tokenizer_json) {
    TempDir d;
    write_text(d.path() / "tokenizer.json", tokenizer_json);
    try {
        Tokenizer::load(d.path());
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

std::string with_vocab(const std::string& vocab, const std::string& rest = "") {
    return R"({"model": {"type": "BPE", "vocab": )" + vocab + R"(, "merges": []})" + rest + "}";
}

TEST(BpeTokenizerHostile, HugeIdIsRefusedBeforeSizing) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(load_error(with_vocab(R"({"a": 0, "b": 1000000000})")),
              "tokenizer.json: vocab entry \"b\" has id 1000000000, outside 0..1 (the vocabulary and added tokens "
              "number 2)");
    EXPECT_THAT(load_error(with_vocab(R"({"a": 2147483647})")), HasSubstr("has id 2147483647, outside 0..0"));
    EXPECT_THAT(load_error(with_vocab(R"({"a": 18446744073709551615})")),
                HasSubstr("has id 18446744073709551615, outside"));
    EXPECT_THAT(load_error(with_vocab(R"({"a": -1})")), HasSubstr("vocab entry \"a\" has id -1, outside"));
    EXPECT_EQ(load_error(with_vocab(R"({"a": 1e9})")), "tokenizer.json: vocab entry \"a\" has no integer id");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(2)));
}

TEST(BpeTokenizerHostile, AddedTokenIdsAreBoundedToo) {
    EXPECT_THAT(load_error(with_vocab(R"({"a": 0})", R"(, "added_tokens": [{"id": 1000000000, "content": "<x>"}])")),
                HasSubstr("added token \"<x>\" has id 1000000000, outside 0..1"));
    // Ids that extend the vocabulary densely are fine.
    TempDir d;
    write_text(d.path() / "tokenizer.json",
               with_vocab(R"({"a": 0})", R"(, "added_tokens": [{"id": 1, "content": "<x>", "special": true}])"));
    EXPECT_EQ(Tokenizer::load(d.path())->piece(1), "<x>");
}

TEST(BpeTokenizerHostile, DuplicateVocabularyIdsAreRefused) {
    EXPECT_EQ(load_error(with_vocab(R"({"a": 0, "b": 0})")), "tokenizer.json: vocab entry \"b\" repeats id 0");
}

TEST(BpeTokenizerHostile, WrongTypesAreNamed) {
    EXPECT_EQ(load_error(with_vocab(R"({"a": 0})", R"(, "added_tokens": "nope")")),
              "tokenizer.json: added_tokens must be a list");
    EXPECT_EQ(load_error(with_vocab(R"({"a": 0})", R"(, "added_tokens": ["nope"])")),
              "tokenizer.json: added_tokens entries must be objects with an id and a content string");
    EXPECT_EQ(load_error(with_vocab(R"({"a": 0})", R"(, "added_tokens": [{"id": "1", "content": "<x>"}])")),
              "tokenizer.json: added token \"<x>\" has no integer id");
    const std::string e = load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "byte_fallback": "yes"}})");
    EXPECT_THAT(e, HasSubstr("tokenizer.json: a value of the wrong type"));
    EXPECT_THAT(e, testing::Not(HasSubstr("json.exception")));
}

std::string config_error(const std::string& tokenizer_config_json) {
    TempDir d;
    write_text(d.path() / "tokenizer.json", with_vocab(R"({"a": 0})"));
    write_text(d.path() / "tokenizer_config.json", tokenizer_config_json);
    try {
        Tokenizer::load(d.path());
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

TEST(TokenizerConfigHostile, AddedTokensDecoderIsChecked) {
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {"-5": {"content": "<x>"}}})"),
              "tokenizer_config.json: added_tokens_decoder \"-5\" is not a token id (0..4194303)");
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {"99999999": {"content": "<x>"}}})"),
              "tokenizer_config.json: added_tokens_decoder \"99999999\" is not a token id (0..4194303)");
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {"12abc": {"content": "<x>"}}})"),
              "tokenizer_config.json: added_tokens_decoder \"12abc\" is not a token id (0..4194303)");
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {"1": "<x>"}})"),
              "tokenizer_config.json: added_tokens_decoder \"1\" must be an object");
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {"1": {"content": "<x>", "special": "yes"}}})"),
              "tokenizer_config.json: added_tokens_decoder \"1\": special must be true or false");
}

TEST(TokenizerConfigHostile, ManyAddedTokensLoadInLinearTime) {
    std::string entries;
    for (int i = 0; i < 100000; ++i)
        entries += (i ? "," : "") + std::string("\"") + std::to_string(i % 50000) + R"(": {"content": "<t)" +
                   std::to_string(i) + R"(>"})";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(config_error(R"({"added_tokens_decoder": {)" + entries + "}}"), "no error");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace wp::test

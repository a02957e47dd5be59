// Tokenizers against the reference encodings of shared/tokenizers and the fixture models, plus
// round-trip and streaming properties on random text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>

#include "test_support.h"
#include "tokenizer/text_util.h"
#include "wp/error.h"
#include "wp/tokenizer/streaming_decoder.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

const Tokenizer& tokenizer_for(const fs::path& dir) {
    static std::map<fs::path, std::unique_ptr<Tokenizer>> cache;
    auto& t = cache[dir];
    if (!t) t = Tokenizer::load(dir);
    return *t;
}

std::vector<fs::path> tokenizer_folders() {
    std::vector<fs::path> out;
    const fs::path root = shared_dir();
    if (root.empty() || !fs::is_directory(root / "tokenizers")) return out;
    for (const auto& e : fs::directory_iterator(root / "tokenizers"))
        if (fs::exists(e.path() / "cases.json")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_text(p)); }

class TokenizerCases : public testing::TestWithParam<std::string> {
protected:
    fs::path dir() const { return shared_dir() / "tokenizers" / GetParam(); }
};

TEST_P(TokenizerCases, EncodeDecodeMatchReference) {
    const Tokenizer& tok = tokenizer_for(dir());
    const auto cases = read_json(dir() / "cases.json");
    ASSERT_GT(cases.size(), 100u);
    int failures = 0;
    for (const auto& c : cases) {
        const std::string id = c["id"];
        const std::string text = c["text"];
        SCOPED_TRACE(id);
        const auto ids = tok.encode(text, false);
        const auto want = c["ids"].get<std::vector<int>>();
        EXPECT_EQ(ids, want);
        EXPECT_EQ(tok.encode(text, true), c["ids_with_special"].get<std::vector<int>>());
        if (c.contains("tokens")) {
            std::vector<std::string> pieces;
            for (int i : want) pieces.push_back(tok.piece(i));
            EXPECT_EQ(pieces, c["tokens"].get<std::vector<std::string>>());
        }
        EXPECT_EQ(tok.decode(want, false), c["decoded"].get<std::string>());
        const auto with_special = c["ids_with_special"].get<std::vector<int>>();
        EXPECT_EQ(tok.decode(with_special, false), c["decoded_with_special"].get<std::string>());
        if (c.contains("decoded_skip_special")) {
            EXPECT_EQ(tok.decode(with_special, true), c["decoded_skip_special"].get<std::string>());
        }
        if (ids != want && ++failures > 10) FAIL() << "stopping after 10 mismatching encodings";
    }
}

TEST_P(TokenizerCases, ChatCaseIdsMatchReference) {
    if (!fs::exists(dir() / "chat_cases.json")) GTEST_SKIP() << "no chat cases for " << GetParam();
    const Tokenizer& tok = tokenizer_for(dir());
    for (const auto& c : read_json(dir() / "chat_cases.json")) {
        if (!c.contains("ids") || !c.contains("rendered")) continue;
        SCOPED_TRACE(c["id"].get<std::string>());
        EXPECT_EQ(tok.encode(c["rendered"].get<std::string>(), false), c["ids"].get<std::vector<int>>());
    }
}

// Random valid UTF-8 from a mix of scripts, whitespace and markup.
std::string random_text(std::mt19937_64& rng, int len) {
    static const char32_t ranges[][2] = {{0x20, 0x7e}, {0x20, 0x7e}, {0x20, 0x7e}, {0x0a, 0x0a}, {0x09, 0x09},
                                          {0xc0, 0x17f}, {0x391, 0x3c9}, {0x410, 0x44f}, {0x4e00, 0x4fff},
                                          {0x3040, 0x30ff}, {0xac00, 0xac80}, {0x1f600, 0x1f64f}, {0x10330, 0x1034a},
                                          {0x300, 0x36f}};
    std::string s;
    for (int i = 0; i < len; ++i) {
        const auto& r = ranges[rng() % std::size(ranges)];
        text::append_utf8(s, static_cast<char32_t>(r[0] + rng() % (r[1] - r[0] + 1)));
    }
    return s;
}

TEST_P(TokenizerCases, RoundTripAndStreamingOnRandomText) {
    const Tokenizer& tok = tokenizer_for(dir());
    const bool nfc = tok.describe().find("byte-level") != std::string::npos;  // Qwen normalises to NFC
    const bool dummy_prefix = GetParam() == "llama2-sentencepiece";            // adds a leading "▁"
    std::mt19937_64 rng(1234);
    for (int n = 0; n < 60; ++n) {
        const std::string s = random_text(rng, 1 + static_cast<int>(rng() % 40));
        SCOPED_TRACE(s);
        const auto ids = tok.encode(s, false);
        const std::string want = nfc ? text::nfc(s) : s;
        const std::string dec = tok.decode(ids, false);
        if (!dummy_prefix) { EXPECT_EQ(dec, want); }
        StreamingDecoder sd(tok, false);
        std::string streamed;
        for (int id : ids) {
            const std::string chunk = sd.push(id);
            EXPECT_EQ(text::utf8_lossy(chunk), chunk) << "chunk is not valid UTF-8";
            streamed += chunk;
        }
        streamed += sd.flush();
        EXPECT_EQ(streamed, dec);
    }
}

std::vector<std::string> folder_names() {
    std::vector<std::string> v;
    for (const auto& p : tokenizer_folders()) v.push_back(p.filename().string());
    return v;
}

INSTANTIATE_TEST_SUITE_P(Shared, TokenizerCases, testing::ValuesIn(folder_names()),
                         [](const auto& info) {
                             std::string s = info.param;
                             for (char& c : s)
                                 if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return s;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TokenizerCases);

TEST(Tokenizers, SharedFoldersArePresent) {
    WP_REQUIRE_SHARED();
    EXPECT_GE(tokenizer_folders().size(), 6u);
}

TEST(Tokenizers, FixtureModelsEncodeTheirReferenceTexts) {
    WP_REQUIRE_SHARED();
    int checked = 0;
    for (const auto& rc : all_cases()) {
        if (!rc.meta.contains("text")) continue;
        const fs::path dir = rc.model_dir;
        if (!fs::exists(dir / "tokenizer.json") && !fs::exists(dir / "tokenizer.model")) continue;
        SCOPED_TRACE(rc.name);
        const Tokenizer& tok = tokenizer_for(dir);
        const auto ids = rc.input_ids();
        EXPECT_EQ(tok.encode(rc.meta["text"].get<std::string>(), rc.meta["add_special_tokens"].get<bool>()), ids);
        const bool bos = rc.meta["add_special_tokens"].get<bool>();
        const std::vector<int> body(ids.begin() + (bos ? 1 : 0), ids.end());
        EXPECT_EQ(tok.decode(body, false), rc.meta["text"].get<std::string>());
        ++checked;
    }
    EXPECT_GE(checked, 9);
}

TEST(Tokenizers, DemoModelSpecialTokens) {
    WP_REQUIRE_SHARED();
    const Tokenizer& tok = tokenizer_for(shared_dir() / "models" / "windowpane-demo-gemma2");
    EXPECT_EQ(tok.special().bos, 2);
    EXPECT_EQ(tok.special().turn_start, 4);
    EXPECT_EQ(tok.special().turn_end, 5);
    const auto ids = tok.encode("<start_of_turn>user\nIn the beginning<end_of_turn>", true);
    ASSERT_GE(ids.size(), 4u);
    EXPECT_EQ(ids[0], 2);
    EXPECT_EQ(ids[1], 4);
    EXPECT_EQ(ids.back(), 5);
    EXPECT_EQ(tok.decode(ids, false), "<bos><start_of_turn>user\nIn the beginning<end_of_turn>");
    EXPECT_EQ(tok.decode(ids, true), "user\nIn the beginning");
}

TEST(Tokenizers, StreamingHoldsBackPartialCharacters) {
    WP_REQUIRE_SHARED();
    // Gemma's byte fallback spells a Gothic letter (4 bytes) as 4 byte tokens.
    const Tokenizer& tok = tokenizer_for(shared_dir() / "tokenizers" / "gemma2");
    const std::string s = "a\xf0\x90\x8c\xb0z";  // a 𐌰 z
    const auto ids = tok.encode(s, false);
    StreamingDecoder sd(tok);
    std::vector<std::string> chunks;
    for (int id : ids) chunks.push_back(sd.push(id));
    chunks.push_back(sd.flush());
    std::string all;
    for (const auto& c : chunks) {
        EXPECT_EQ(text::utf8_lossy(c), c);
        EXPECT_EQ(c.find("\xef\xbf\xbd"), std::string::npos) << "replacement character streamed";
        all += c;
    }
    EXPECT_EQ(all, s);
}

TEST(Tokenizers, ClearErrors) {
    TempDir d;
    EXPECT_THROW(Tokenizer::load(d.path()), Error);
    write_text(d.path() / "tokenizer.json", "{\"model\": ");
    try {
        Tokenizer::load(d.path());
        FAIL();
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("tokenizer.json: not valid JSON"));
    }
    write_text(d.path() / "tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
    try {
        Tokenizer::load(d.path());
        FAIL();
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("\"WordPiece\" is not supported"));
    }
    write_text(d.path() / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
    try {
        Tokenizer::load(d.path());
        FAIL();
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("merge \"a b\" uses a piece missing from the vocab"));
    }
    fs::remove(d.path() / "tokenizer.json");
    // A file that is not a SentencePiece model, in the project's words (not the library's
    // source file and line).
    for (const char* bytes : {"not a model", "\xff\xfe\x00garbage"}) {
        write_text(d.path() / "tokenizer.model", bytes);
        EXPECT_EQ(error_of([&] { Tokenizer::load(d.path()); }), "tokenizer.model: not a valid SentencePiece model");
    }
}

TEST(Tokenizers, MergesAsPairsOrStrings) {
    TempDir a, b;
    const std::string head = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4}, "merges": )";
    write_text(a.path() / "tokenizer.json", head + R"(["a b", "ab c"]}})");
    write_text(b.path() / "tokenizer.json", head + R"([["a", "b"], ["ab", "c"]]}})");
    EXPECT_EQ(Tokenizer::load(a.path())->encode("abcab", false), (std::vector<int>{4, 2}));
    EXPECT_EQ(Tokenizer::load(b.path())->encode("abcab", false), (std::vector<int>{4, 2}));
}

}  // namespace
}  // namespace wp::test

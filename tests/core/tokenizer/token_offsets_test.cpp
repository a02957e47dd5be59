// token_spans over the shared tokenizers' reference encodings: the spans tile the text in order,
// never split a character, give special tokens none, and each whole-character token's span is
// what that token decodes to.
#include <gtest/gtest.h>

#include "test_support.h"
#include "wp/tokenizer/token_offsets.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

bool starts_character(std::string_view text, std::size_t i) {
    return i >= text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
}

TEST(TokenOffsets, TileTheTextOfEveryReferenceEncoding) {
    WP_REQUIRE_SHARED();
    int checked = 0;
    for (const auto& entry : fs::directory_iterator(shared_dir() / "tokenizers")) {
        if (!fs::exists(entry.path() / "cases.json")) continue;
        const auto tok = Tokenizer::load(entry.path());
        for (const auto& c : nlohmann::json::parse(read_text(entry.path() / "cases.json"))) {
            const std::string text = c.value("text", "");
            // Normalising tokenizers (text not given back) are covered by the "follows the decode" rule only.
            if (!c.contains("ids_with_special") || c.value("decoded_skip_special", nlohmann::json()) != text) continue;
            SCOPED_TRACE(entry.path().filename().string() + " " + c["id"].get<std::string>());
            const std::vector<int> ids = c["ids_with_special"];
            const std::vector<ByteSpan> spans = token_spans(*tok, ids, text);
            ASSERT_EQ(ids.size(), spans.size());
            std::size_t at = 0;
            for (std::size_t i = 0; i < ids.size(); ++i) {
                EXPECT_EQ(at, spans[i].begin) << i;
                EXPECT_LE(spans[i].begin, spans[i].end) << i;
                EXPECT_TRUE(starts_character(text, spans[i].end)) << i;
                if (tok->is_special(ids[i])) { EXPECT_TRUE(spans[i].empty()) << i; }
                at = spans[i].end;
                const std::string alone = tok->decode(std::vector<int>{ids[i]}, true);
                // A token of whole characters (not the first, whose leading space a decoder may strip).
                if (i > 0 && !spans[i].empty() && alone.find("\xEF\xBF\xBD") == std::string::npos &&
                    text.find("\xEF\xBF\xBD") == std::string::npos && starts_character(text, spans[i].begin)) {
                    EXPECT_EQ(alone, text.substr(spans[i].begin, spans[i].end - spans[i].begin)) << i;
                }
            }
            EXPECT_EQ(text.size(), at);
            ++checked;
        }
    }
    EXPECT_GT(checked, 100);
}

TEST(TokenOffsets, CharOffsetsCountCodePoints) {
    const std::string text = "naïve café ☕ x";
    EXPECT_EQ(0u, char_offset(text, 0));
    EXPECT_EQ(3u, char_offset(text, 3));   // "na" + 2-byte ï starts at byte 2 and ends at 4
    EXPECT_EQ(3u, char_offset(text, 4));
    EXPECT_EQ(14u, char_offset(text, text.size()));
    EXPECT_EQ(14u, char_offset(text, text.size() + 10));
}

}  // namespace
}  // namespace wp::test

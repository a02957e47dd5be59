// The tokenizer of a GGUF file against the reference encodings of shared/tokenizers: each folder
// is written as a vocab-only GGUF by tests/gguf/tokenizer_to_gguf.py (llama.cpp's converter
// conventions; CMake runs it at build time into WP_GGUF_TOKENIZER_DIR), then must encode, decode
// and render its chat template as the Hugging Face tokenizer does. Plus malformed metadata.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include <map>
#include <memory>

#include "io/gguf.h"
#include "gguf_writer.h"
#include "test_support.h"
#include "tokenizer/gguf_tokenizer.h"
#include "wp/chat/chat_template.h"
#include "wp/error.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp::test {
namespace {

using nlohmann::ordered_json;
using testing::HasSubstr;

const fs::path kGgufDir = WP_GGUF_TOKENIZER_DIR;

// The shared folders the build turned into GGUF files (tests/CMakeLists.txt).
const std::vector<std::string> kFolders = {"gemma", "gemma2", "qwen2", "qwen2_5", "qwen3", "llama2-sentencepiece"};

fs::path gguf_of(const std::string& folder) { return kGgufDir / (folder + ".gguf"); }

const Tokenizer& tokenizer_for(const std::string& folder) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
    auto& t = cache[folder];
    if (!t) t = Tokenizer::load(gguf_of(folder));
    return *t;
}

// A vocabulary string as llama.cpp's converter spells it in the GGUF file: user-defined tokens with
// spaces for U+2581 (Gemma 2's "▁▁" is "  "), and GemmaConverter's "\t" as SentencePiece's own
// byte piece "<0x09>".
std::string gguf_spelling(const Tokenizer& tok, int id, std::string hf) {
    if (hf == "\t" && tok.piece(id) == "<0x09>") return "<0x09>";
    for (const auto& t : tok.added_tokens()) {
        if (t.id != id || t.special) continue;
        for (std::size_t at; (at = hf.find("\xe2\x96\x81")) != std::string::npos;) hf.replace(at, 3, " ");
    }
    return hf;
}

// Where the GGUF tokenizer differs from the reference on purpose, and why.
bool known_difference(const std::string& folder, const std::string& id) {
    // llama2-sentencepiece's reference is libsentencepiece, which does not match control-token
    // text ("<s>", "</s>") in the input; transformers, and so the GGUF tokenizer, does.
    if (folder == "llama2-sentencepiece" && (id == "code-085" || id == "special_text-167")) return true;
    return false;
}

class GgufTokenizerCases : public testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        WP_REQUIRE_SHARED();
        ASSERT_TRUE(fs::exists(gguf_of(GetParam())))
            << gguf_of(GetParam()) << " was not built (tests/gguf/tokenizer_to_gguf.py; reconfigure with the shared folder)";
    }
    fs::path dir() const { return shared_dir() / "tokenizers" / GetParam(); }
};

TEST_P(GgufTokenizerCases, EncodeDecodeMatchReference) {
    const Tokenizer& tok = tokenizer_for(GetParam());
    const bool llama2 = GetParam() == "llama2-sentencepiece";
    const auto cases = nlohmann::json::parse(read_text(dir() / "cases.json"));
    ASSERT_GT(cases.size(), 100u);
    int failures = 0, checked = 0;
    for (const auto& c : cases) {
        const std::string id = c["id"];
        SCOPED_TRACE(id);
        if (known_difference(GetParam(), id)) continue;
        const std::string text = c["text"];
        const auto want = c["ids"].get<std::vector<int>>();
        const auto ids = tok.encode(text, false);
        EXPECT_EQ(ids, want);
        const auto with_special = c["ids_with_special"].get<std::vector<int>>();
        EXPECT_EQ(tok.encode(text, true), with_special);
        const auto tokens = c["tokens"].get<std::vector<std::string>>();
        ASSERT_EQ(tokens.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(tok.piece(want[i]), gguf_spelling(tok, want[i], tokens[i]));
        EXPECT_EQ(tok.decode(want, false), c["decoded"].get<std::string>());
        // libsentencepiece (llama2's reference) decodes control tokens to nothing, transformers to
        // their text: the reference is the GGUF tokenizer's decode without special tokens.
        EXPECT_EQ(tok.decode(with_special, llama2), c["decoded_with_special"].get<std::string>());
        // Gemma 2's <unusedN> are added tokens that transformers keeps when skipping special ones;
        // the converter types them control (does_token_look_special), so a GGUF drops them.
        if (c.contains("decoded_skip_special") && !(GetParam() == "gemma2" && id == "special_text-173")) {
            EXPECT_EQ(tok.decode(with_special, true), c["decoded_skip_special"].get<std::string>());
        }
        ++checked;
        if (ids != want && ++failures > 10) FAIL() << "stopping after 10 mismatching encodings";
    }
    EXPECT_GE(checked, 127);
}

TEST_P(GgufTokenizerCases, ChatTemplateRendersAsReference) {
    if (!fs::exists(dir() / "chat_cases.json")) GTEST_SKIP() << "no chat cases for " << GetParam();
    const fs::path gguf = gguf_of(GetParam());
    const std::optional<ChatTemplate> tmpl = ChatTemplate::from_folder(gguf);
    ASSERT_TRUE(tmpl.has_value());
    const Tokenizer& tok = tokenizer_for(GetParam());
    int checked = 0;
    for (const auto& c : ordered_json::parse(read_text(dir() / "chat_cases.json"))) {
        SCOPED_TRACE(c["id"].get<std::string>());
        ordered_json ctx = ChatTemplate::special_tokens_context(gguf);
        ctx["messages"] = c.at("messages");
        ctx["add_generation_prompt"] = c.at("add_generation_prompt");
        ctx["tools"] = c.contains("tools") ? c["tools"] : ordered_json(nullptr);
        ctx["documents"] = nullptr;
        if (c.contains("rendered")) {
            const std::string rendered = tmpl->render(ctx);
            EXPECT_EQ(rendered, c["rendered"].get<std::string>());
            if (c.contains("ids")) {
                EXPECT_EQ(tok.encode(rendered, false), c["ids"].get<std::vector<int>>());
            }
        } else {
            try {
                tmpl->render(ctx);
                ADD_FAILURE() << "expected the template to raise";
            } catch (const TemplateError& e) {
                EXPECT_EQ(std::string(e.what()), c.at("error").get<std::string>());
            }
        }
        ++checked;
    }
    EXPECT_GE(checked, 15);
}

INSTANTIATE_TEST_SUITE_P(Shared, GgufTokenizerCases, testing::ValuesIn(kFolders), [](const auto& info) {
    std::string s = info.param;
    for (char& c : s)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
});

TEST(GgufTokenizer, DescribesItselfAndItsSpecialTokens) {
    WP_REQUIRE_SHARED();
    const Tokenizer& gemma = tokenizer_for("gemma2");
    EXPECT_EQ(gemma.describe(), "gemma2.gguf, SentencePiece BPE (GGUF metadata), 256000 ids");
    EXPECT_EQ(gemma.special().bos, 2);
    EXPECT_EQ(gemma.special().eos, std::vector<int>{1});
    EXPECT_EQ(gemma.special().bos_text, "<bos>");
    const Tokenizer& qwen = tokenizer_for("qwen2_5");
    EXPECT_EQ(qwen.describe(), "qwen2_5.gguf, byte-level BPE (GGUF metadata), 151665 ids");
    EXPECT_FALSE(qwen.special().bos.has_value());
    EXPECT_EQ(qwen.special().eos, std::vector<int>{151645});
    EXPECT_EQ(qwen.special().turn_start, std::nullopt);  // finish_setup is the folders' business
    EXPECT_EQ(ChatTemplate::special_tokens_context(gguf_of("qwen2_5")),
              ordered_json::parse(R"({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})"));
}

// ---- malformed metadata ------------------------------------------------------------------------

// A three-token "llama" vocabulary (valid with the default types and scores) to break a key of.
GgufWriter llama_vocab(const std::vector<std::int32_t>& types = {2, 3, 1}, const std::vector<float>& scores = {0, 0, -1}) {
    GgufWriter w;
    w.string("general.architecture", "llama")
        .string("tokenizer.ggml.model", "llama")
        .strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "\xe2\x96\x81" "a"})
        .f32s("tokenizer.ggml.scores", scores)
        .i32s("tokenizer.ggml.token_type", types);
    return w;
}

std::string load_error(const fs::path& p) {
    const std::string e = error_of([&] { Tokenizer::load(p); });
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    return e;
}

TEST(GgufTokenizerHostile, AValidSmallVocabularyLoads) {
    TempDir dir;
    auto w = llama_vocab();
    w.u32("tokenizer.ggml.bos_token_id", 1);
    const auto tok = Tokenizer::load(w.write_in(dir.path()));
    EXPECT_EQ(tok->encode("a", true), (std::vector<int>{1, 2}));
    EXPECT_EQ(tok->encode("<s>a", false), (std::vector<int>{1, 2}));
    EXPECT_EQ(tok->decode(std::vector<int>{1, 2}, true), "a");
}

TEST(GgufTokenizerHostile, EdgeVocabulariesStayInsideThemselves) {
    TempDir dir;
    // An empty byte-level token keeps its id, unreachable from text.
    const auto bpe = Tokenizer::load(GgufWriter()
                                         .string("tokenizer.ggml.model", "gpt2")
                                         .string("tokenizer.ggml.pre", "qwen2")
                                         .strings("tokenizer.ggml.tokens", {"a", "", "b", "ab"})
                                         .i32s("tokenizer.ggml.token_type", {1, 3, 1, 1})
                                         .strings("tokenizer.ggml.merges", {"a b"})
                                         .write_in(dir.path(), "bpe.gguf"));
    EXPECT_EQ(bpe->vocab_size(), 4);
    EXPECT_EQ(bpe->encode("ab", false), (std::vector<int>{3}));
    // 256 byte tokens of which one repeats, and no unknown token: a missing byte would have no id.
    std::vector<std::string> tokens = {"a"};
    std::vector<std::int32_t> types = {1};
    for (int b = 0; b < 256; ++b) {
        char piece[8];
        std::snprintf(piece, sizeof piece, "<0x%02X>", b == 0x42 ? 0x41 : b);
        tokens.push_back(piece);
        types.push_back(6);
    }
    EXPECT_EQ(load_error(GgufWriter()
                             .string("tokenizer.ggml.model", "llama")
                             .strings("tokenizer.ggml.tokens", tokens)
                             .f32s("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.f))
                             .i32s("tokenizer.ggml.token_type", types)
                             .write_in(dir.path(), "bytes.gguf")),
              "bytes.gguf: the vocabulary has neither an unknown token (type 2) nor the 256 byte tokens");
}

TEST(GgufTokenizerHostile, MalformedMetadataGivesOneLineErrors) {
    TempDir dir;
    EXPECT_EQ(load_error(GgufWriter().string("general.architecture", "llama").write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.model is missing (the file has no tokenizer)");
    EXPECT_EQ(load_error(GgufWriter().string("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"a"}).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.model \"bert\" is not supported (llama or gpt2)");
    EXPECT_EQ(load_error(GgufWriter().string("tokenizer.ggml.model", "llama").write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.tokens is missing");
    EXPECT_EQ(load_error(llama_vocab({1, 1}).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.token_type has 2 entries for 3 tokens");
    EXPECT_EQ(load_error(llama_vocab({2, 3, 1}, {0}).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.scores has 1 entries for 3 tokens");
    EXPECT_EQ(load_error(llama_vocab({2, 9, 1}).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.token_type of token 1 is 9, not a token type (0..6)");
    EXPECT_EQ(load_error(llama_vocab().u32("tokenizer.ggml.bos_token_id", 3).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.bos_token_id is 3, outside the 3 tokens of tokenizer.ggml.tokens");
    EXPECT_EQ(load_error(llama_vocab().u32("tokenizer.ggml.eos_token_id", 70000).write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.eos_token_id is 70000, outside the 3 tokens of tokenizer.ggml.tokens");
    EXPECT_EQ(load_error(GgufWriter()
                             .string("tokenizer.ggml.model", "gpt2")
                             .string("tokenizer.ggml.pre", "tekken")
                             .strings("tokenizer.ggml.tokens", {"a", "b", "ab"})
                             .strings("tokenizer.ggml.merges", {"a b"})
                             .write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.pre \"tekken\" is not a supported pre-tokenizer (qwen2, deepseek-r1-qwen, "
              "llama-bpe, gpt-2, default)");
    EXPECT_EQ(load_error(GgufWriter()
                             .string("tokenizer.ggml.model", "gpt2")
                             .string("tokenizer.ggml.pre", "qwen2")
                             .strings("tokenizer.ggml.tokens", {"a", "b", "a"})
                             .strings("tokenizer.ggml.merges", {})
                             .write_in(dir.path())),
              "bad.gguf: tokenizer.ggml.tokens repeats \"a\" (ids 0 and 2)");
    EXPECT_EQ(load_error(GgufWriter()
                             .string("tokenizer.ggml.model", "gpt2")
                             .string("tokenizer.ggml.pre", "qwen2")
                             .strings("tokenizer.ggml.tokens", {"a", "b"})
                             .strings("tokenizer.ggml.merges", {"a c"})
                             .write_in(dir.path())),
              "bad.gguf: merge \"a c\" uses a piece missing from the vocab");
    // The chat-template context checks its ids too.
    const fs::path bad = llama_vocab().u32("tokenizer.ggml.unknown_token_id", 5).write_in(dir.path(), "ctx.gguf");
    EXPECT_EQ(error_of([&] { ChatTemplate::special_tokens_context(bad); }),
              "ctx.gguf: tokenizer.ggml.unknown_token_id is 5, outside the 3 tokens of tokenizer.ggml.tokens");
}

}  // namespace
}  // namespace wp::test

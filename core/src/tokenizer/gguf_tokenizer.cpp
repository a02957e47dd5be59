// A GGUF file's tokenizer metadata as a wp::Tokenizer. "llama" files become an in-memory
// SentencePiece model (BPE, scores, byte fallback, the dummy prefix from add_space_prefix) run by
// libsentencepiece; "gpt2" files become the tokenizer.json pipeline transformers has for the
// pre-tokenizer named in tokenizer.ggml.pre, run by BpeTokenizer. In both, control and
// user-defined tokens are added tokens, split out of the text first as transformers does.
#include "tokenizer/gguf_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <bitset>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/text_util.h"
#include "wp/error.h"

namespace wp {

namespace {

using json = nlohmann::json;

// llama.cpp's token types (llama_token_type / gguf.TokenType); 0 (undefined) counts as normal.
enum TokenType : std::int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The keys every model kind shares, read and checked once.
struct GgufVocab {
    std::string where;  // "model.gguf"
    std::vector<std::string> tokens;
    std::vector<std::int64_t> types;
    std::optional<int> bos, eos, unk, pad, eot, eom;
    std::optional<bool> add_bos, add_eos;
};

std::optional<int> token_id(const GgufFile& g, const GgufVocab& v, const char* key) {
    const auto id = g.get_int(key);
    if (!id) return std::nullopt;
    if (*id < 0 || *id >= static_cast<std::int64_t>(v.tokens.size()))
        throw Error(v.where + ": " + key + " is " + std::to_string(*id) + ", outside the " +
                    std::to_string(v.tokens.size()) + " tokens of tokenizer.ggml.tokens");
    return static_cast<int>(*id);
}

GgufVocab read_vocab(const GgufFile& g) {
    GgufVocab v;
    v.where = g.path().filename().string();
    if (!g.find("tokenizer.ggml.tokens")) throw Error(v.where + ": tokenizer.ggml.tokens is missing");
    const auto& tokens = g.string_array("tokenizer.ggml.tokens");
    if (tokens.empty()) throw Error(v.where + ": tokenizer.ggml.tokens is empty");
    // Ids are ints everywhere else (config.json allows at most 2^22 of them).
    if (tokens.size() > (std::size_t{1} << 22))
        throw Error(v.where + ": tokenizer.ggml.tokens has " + std::to_string(tokens.size()) +
                    " tokens, more than the 4194304 a vocabulary may have");
    v.tokens.assign(tokens.begin(), tokens.end());
    if (g.find("tokenizer.ggml.token_type")) {
        v.types = g.int_array("tokenizer.ggml.token_type");
        if (v.types.size() != v.tokens.size())
            throw Error(v.where + ": tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
                        " entries for " + std::to_string(v.tokens.size()) + " tokens");
        for (std::size_t i = 0; i < v.types.size(); ++i) {
            if (v.types[i] < 0 || v.types[i] > kByte)
                throw Error(v.where + ": tokenizer.ggml.token_type of token " + std::to_string(i) + " is " +
                            std::to_string(v.types[i]) + ", not a token type (0..6)");
            if (v.types[i] == 0) v.types[i] = kNormal;
        }
    } else {
        v.types.assign(v.tokens.size(), kNormal);
    }
    v.bos = token_id(g, v, "tokenizer.ggml.bos_token_id");
    v.eos = token_id(g, v, "tokenizer.ggml.eos_token_id");
    v.unk = token_id(g, v, "tokenizer.ggml.unknown_token_id");
    v.pad = token_id(g, v, "tokenizer.ggml.padding_token_id");
    v.eot = token_id(g, v, "tokenizer.ggml.eot_token_id");
    v.eom = token_id(g, v, "tokenizer.ggml.eom_token_id");
    v.add_bos = g.get_bool("tokenizer.ggml.add_bos_token");
    v.add_eos = g.get_bool("tokenizer.ggml.add_eos_token");
    return v;
}

// Control and user-defined tokens, matched whole in the text (transformers' added tokens).
std::vector<AddedToken> added_tokens_of(const GgufVocab& v) {
    std::vector<AddedToken> out;
    for (std::size_t i = 0; i < v.tokens.size(); ++i) {
        if ((v.types[i] != kControl && v.types[i] != kUserDefined) || v.tokens[i].empty()) continue;
        AddedToken t;
        t.id = static_cast<int>(i);
        t.content = v.tokens[i];
        t.special = v.types[i] == kControl;
        out.push_back(std::move(t));
    }
    return out;
}

void fill_special(const GgufVocab& v, SpecialTokens& s) {
    s.bos = v.bos;
    s.unk = v.unk;
    s.pad = v.pad;
    s.eos.clear();
    // The end-of-turn tokens stop generation as eos does (llama.cpp's end-of-generation set).
    for (const auto& id : {v.eos, v.eot, v.eom})
        if (id && std::find(s.eos.begin(), s.eos.end(), *id) == s.eos.end()) s.eos.push_back(*id);
    if (v.bos) s.bos_text = v.tokens[*v.bos];
    if (v.eos) s.eos_text = v.tokens[*v.eos];
    if (v.pad) s.pad_text = v.tokens[*v.pad];
    if (v.unk) s.unk_text = v.tokens[*v.unk];
}

std::string filename_describe(const GgufVocab& v, const char* kind) {
    return v.where + ", " + kind + " (GGUF metadata), " + std::to_string(v.tokens.size()) + " ids";
}

// ---- "llama": SentencePiece --------------------------------------------------------------------

// Protocol-buffer encoding of the few sentencepiece_model.proto fields the model needs.
void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7F) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}
void put_tag(std::string& out, int field, int wire) { put_varint(out, (static_cast<std::uint64_t>(field) << 3) | wire); }
void put_bytes(std::string& out, int field, std::string_view s) {
    put_tag(out, field, 2);
    put_varint(out, s.size());
    out.append(s);
}
void put_int(std::string& out, int field, std::int64_t v) {
    put_tag(out, field, 0);
    put_varint(out, static_cast<std::uint64_t>(v));  // negative int32: ten bytes, as protobuf does
}
void put_float(std::string& out, int field, float f) {
    put_tag(out, field, 5);
    char b[4];
    std::memcpy(b, &f, 4);
    out.append(b, 4);
}

bool is_byte_piece(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return false;
    const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return hex(p[3]) && hex(p[4]);  // libsentencepiece's own spelling, upper case
}

// The tokenizer.ggml.* metadata of a "llama" file as a serialized SentencePiece ModelProto.
std::string sentencepiece_proto(const GgufFile& g, const GgufVocab& vocab) {
    const std::size_t n = vocab.tokens.size();
    if (!g.find("tokenizer.ggml.scores")) throw Error(vocab.where + ": tokenizer.ggml.scores is missing");
    const std::vector<float> scores = g.float_array("tokenizer.ggml.scores");
    if (scores.size() != n)
        throw Error(vocab.where + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) + " entries for " +
                    std::to_string(n) + " tokens");
    // libsentencepiece needs exactly one unknown piece: the file's unknown_token_id, else the
    // first token of type 2, else one appended past the vocabulary.
    int unk = vocab.unk.value_or(-1);
    if (unk < 0)
        for (std::size_t i = 0; i < n && unk < 0; ++i)
            if (vocab.types[i] == kUnknown) unk = static_cast<int>(i);

    // libsentencepiece's byte fallback needs all 256 byte pieces; without them, bytes are
    // ordinary pieces and unknown characters become the unknown token.
    std::bitset<256> bytes;  // distinct byte values: a repeated <0x41> must not stand in for a missing one
    for (std::size_t i = 0; i < n; ++i)
        if (vocab.types[i] == kByte && is_byte_piece(vocab.tokens[i]))
            bytes.set(static_cast<std::size_t>(std::stoi(vocab.tokens[i].substr(3, 2), nullptr, 16)));
    const bool byte_fallback = bytes.all();
    std::string model;
    std::unordered_set<std::string_view> seen;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& tok = vocab.tokens[i];
        const std::int64_t t = vocab.types[i];
        // Control and user-defined tokens are handled outside libsentencepiece (split out of the
        // text, decoded from their text); as its control pieces they are never produced.
        int sp_type = 1;  // NORMAL
        if (static_cast<int>(i) == unk) sp_type = 2;
        else if (t == kControl || t == kUserDefined || t == kUnknown) sp_type = 3;
        else if (t == kUnused) sp_type = 5;
        else if (t == kByte && byte_fallback && is_byte_piece(tok)) sp_type = 6;
        std::string piece = tok;
        // libsentencepiece refuses empty and repeated pieces: such ids become unreachable controls.
        if (piece.empty() || !seen.insert(tok).second) {
            piece = "\x01wp-gguf-" + std::to_string(i);
            if (sp_type != 2) sp_type = 3;
        }
        std::string sp;
        put_bytes(sp, 1, piece);
        put_float(sp, 2, scores[i]);
        put_int(sp, 3, sp_type);
        put_bytes(model, 1, sp);
    }
    // Without an unknown token and without byte pieces, a character outside the vocabulary
    // would have no id to become.
    if (unk < 0 && !byte_fallback)
        throw Error(vocab.where + ": the vocabulary has neither an unknown token (type 2) nor the 256 byte tokens");
    if (unk < 0) {  // never produced: byte fallback covers every character
        std::string sp;
        put_bytes(sp, 1, "\x01wp-gguf-unk");
        put_float(sp, 2, 0.0f);
        put_int(sp, 3, 2);
        put_bytes(model, 1, sp);
        unk = static_cast<int>(n);
    }
    std::string trainer;
    put_int(trainer, 3, 2);  // model_type BPE
    put_int(trainer, 35, byte_fallback ? 1 : 0);
    put_int(trainer, 40, unk);
    put_int(trainer, 41, -1);  // bos/eos/pad are the file's business, not libsentencepiece's
    put_int(trainer, 42, -1);
    put_int(trainer, 43, -1);
    put_bytes(model, 2, trainer);
    // llama.cpp's add_space_prefix is SentencePiece's dummy prefix (true unless stated:
    // Gemma's files say false). Whitespace is kept as is and escaped to U+2581.
    const bool dummy_prefix = g.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    std::string normalizer;
    put_bytes(normalizer, 1, "identity");
    put_int(normalizer, 3, dummy_prefix ? 1 : 0);
    put_int(normalizer, 4, 0);  // remove_extra_whitespaces
    put_int(normalizer, 5, 1);  // escape_whitespaces
    put_bytes(model, 3, normalizer);
    return model;
}

class GgufSentencePieceTokenizer : public SentencePieceTokenizer {
public:
    GgufSentencePieceTokenizer(const GgufFile& g, GgufVocab v)
        : SentencePieceTokenizer(sentencepiece_proto(g, v), v.where + " tokenizer.ggml.*"), vocab_(std::move(v)) {
        const std::size_t n = vocab_.tokens.size();
        for (std::size_t i = 0; i < n; ++i) by_piece_.emplace(vocab_.tokens[i], static_cast<int>(i));
        added_ = added_tokens_of(vocab_);
        fill_special(vocab_, special_);
        // SentencePiece models add BOS unless told otherwise (llama.cpp's default, and Gemma's
        // and Llama's tokenizer_config.json).
        config_add_bos_ = vocab_.add_bos.value_or(true);
        config_add_eos_ = vocab_.add_eos.value_or(false);
        added_tokens_changed();
    }

    std::string piece(int id) const override {
        if (id < 0 || id >= vocab_size()) return {};
        return vocab_.tokens[static_cast<std::size_t>(id)];
    }

    std::optional<int> piece_to_id(std::string_view piece) const override {
        const auto it = by_piece_.find(std::string(piece));
        if (it == by_piece_.end()) return std::nullopt;
        return it->second;
    }

    int vocab_size() const override { return static_cast<int>(vocab_.tokens.size()); }
    std::string describe() const override { return filename_describe(vocab_, "SentencePiece BPE"); }

protected:
    // llama.cpp's converter writes user-defined tokens with U+2581 turned into spaces; the
    // Hugging Face tokenizer matched the U+2581 spelling (Gemma 2's "▁▁" ...), so both match.
    std::vector<AddedToken> tokens_to_match() const override {
        std::vector<AddedToken> match = added_;
        for (const auto& t : added_) {
            if (t.special || t.content.find(' ') == std::string::npos) continue;
            AddedToken alias = t;
            alias.content.clear();
            for (char c : t.content) alias.content += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
            match.push_back(std::move(alias));
        }
        return match;
    }

private:
    GgufVocab vocab_;
    std::unordered_map<std::string, int> by_piece_;
};

// ---- "gpt2": byte-level BPE ------------------------------------------------------------------

// transformers' pipeline for the pre-tokenizer names llama.cpp's converter writes
// (get_vocab_base_pre): the tokenizer.json normalizer and pre-tokenizer of those models.
struct PreTokenizerSpec {
    const char* regex;  // nullptr: GPT-2's ByteLevel regex
    bool nfc;
};

std::optional<PreTokenizerSpec> pre_tokenizer_spec(const std::string& pre) {
    // Qwen1.5/2/2.5/3 (and DeepSeek-R1's Qwen distillations): NFC, then this split.
    static const char* const kQwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    // Llama 3: digits in runs of up to three, no normalizer.
    static const char* const kLlama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreTokenizerSpec{kQwen2, true};
    if (pre == "llama-bpe" || pre == "llama3") return PreTokenizerSpec{kLlama3, false};
    // GPT-2 itself; "default" is what llama.cpp assumes for a file without the key.
    if (pre == "gpt-2" || pre == "default") return PreTokenizerSpec{nullptr, false};
    return std::nullopt;
}

class GgufBpeTokenizer : public BpeTokenizer {
public:
    GgufBpeTokenizer(const json& j, const GgufVocab& v) : BpeTokenizer(j, v.where), describe_(filename_describe(v, "byte-level BPE")) {
        fill_special(v, special_);
        // Byte-level BPE models add no BOS unless the file says so (Qwen's add_bos_token false).
        if (v.add_bos) config_add_bos_ = v.add_bos;
        if (v.add_eos) config_add_eos_ = v.add_eos;
    }
    std::string describe() const override { return describe_; }

private:
    std::string describe_;
};

std::unique_ptr<Tokenizer> load_gpt2(const GgufFile& g, const GgufVocab& v) {
    const std::string pre = g.get_string("tokenizer.ggml.pre").value_or("default");
    const auto spec = pre_tokenizer_spec(pre);
    if (!spec)
        throw Error(v.where + ": tokenizer.ggml.pre \"" + pre +
                    "\" is not a supported pre-tokenizer (qwen2, deepseek-r1-qwen, llama-bpe, gpt-2, default)");
    if (!g.find("tokenizer.ggml.merges")) throw Error(v.where + ": tokenizer.ggml.merges is missing");
    const auto& merges = g.string_array("tokenizer.ggml.merges");

    // The tokenizer.json transformers would have: the vocabulary without the added tokens, which
    // go to added_tokens (control = special).
    json vocab = json::object();
    json added = json::array();
    std::unordered_map<std::string_view, std::size_t> first;
    for (std::size_t i = 0; i < v.tokens.size(); ++i) {
        const std::int64_t t = v.types[i];
        // An empty token keeps its id as an unreachable special one (as in the SentencePiece path).
        if (v.tokens[i].empty()) {
            added.push_back({{"id", i}, {"content", "\x01wp-gguf-" + std::to_string(i)}, {"special", true},
                             {"normalized", false}, {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
            continue;
        }
        if (t == kControl || t == kUserDefined) {
            added.push_back({{"id", i}, {"content", v.tokens[i]}, {"special", t == kControl},
                             {"normalized", false}, {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
            continue;
        }
        const auto [it, fresh] = first.emplace(v.tokens[i], i);
        if (!fresh)
            throw Error(v.where + ": tokenizer.ggml.tokens repeats \"" + v.tokens[i] + "\" (ids " +
                        std::to_string(it->second) + " and " + std::to_string(i) + ")");
        vocab[v.tokens[i]] = i;
    }
    json merge_list = json::array();
    for (const auto& m : merges) merge_list.push_back(std::string(m));
    json j;
    j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merge_list)}, {"byte_fallback", false}};
    j["added_tokens"] = std::move(added);
    j["normalizer"] = spec->nfc ? json{{"type", "NFC"}} : json();
    if (spec->regex) {
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"}, {"pattern", {{"Regex", spec->regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    } else {
        j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
    }
    j["decoder"] = {{"type", "ByteLevel"}};
    return std::make_unique<GgufBpeTokenizer>(j, v);
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& g) {
    const std::string where = g.path().filename().string();
    const auto model = g.get_string("tokenizer.ggml.model");
    if (!model) throw Error(where + ": tokenizer.ggml.model is missing (the file has no tokenizer)");
    if (*model != "llama" && *model != "gpt2")
        throw Error(where + ": tokenizer.ggml.model \"" + *model + "\" is not supported (llama or gpt2)");
    GgufVocab v = read_vocab(g);
    if (*model == "llama") return std::make_unique<GgufSentencePieceTokenizer>(g, std::move(v));
    return load_gpt2(g, v);
}

std::optional<std::string> gguf_chat_template(const GgufFile& g) { return g.get_string("tokenizer.chat_template"); }

std::optional<ChatTemplate> gguf_parsed_chat_template(const GgufFile& g) {
    auto source = gguf_chat_template(g);
    if (!source) return std::nullopt;
    try {
        return ChatTemplate(std::move(*source));
    } catch (const TemplateError& e) {
        throw TemplateError(g.path().string() + ": " + e.what());
    }
}

nlohmann::ordered_json gguf_special_tokens_context(const GgufFile& g) {
    nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
    if (!g.find("tokenizer.ggml.tokens")) return ctx;
    const auto& tokens = g.string_array("tokenizer.ggml.tokens");
    const std::string where = g.path().filename().string();
    // transformers' order of the special-token attributes; llama.cpp spells sep "seperator".
    static const std::pair<const char*, const char*> kKeys[] = {
        {"bos_token", "tokenizer.ggml.bos_token_id"},     {"eos_token", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "tokenizer.ggml.unknown_token_id"}, {"sep_token", "tokenizer.ggml.seperator_token_id"},
        {"pad_token", "tokenizer.ggml.padding_token_id"}, {"cls_token", "tokenizer.ggml.cls_token_id"},
        {"mask_token", "tokenizer.ggml.mask_token_id"},
    };
    for (const auto& [name, key] : kKeys) {
        const auto id = g.get_int(key);
        if (!id) continue;
        if (*id < 0 || static_cast<std::uint64_t>(*id) >= tokens.size())
            throw Error(where + ": " + key + " is " + std::to_string(*id) + ", outside the " +
                        std::to_string(tokens.size()) + " tokens of tokenizer.ggml.tokens");
        if (!tokens[static_cast<std::size_t>(*id)].empty()) ctx[name] = std::string(tokens[static_cast<std::size_t>(*id)]);
    }
    return ctx;
}

}  // namespace wp

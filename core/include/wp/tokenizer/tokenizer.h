// Text <-> token ids, as transformers does it for the model folder's tokenizer files:
// tokenizer.json when present (the fast tokenizers' file), else tokenizer.model (SentencePiece).
// tokenizer_config.json supplies add_bos_token/add_eos_token and the special tokens.
#pragma once

#include <filesystem>
#include <memory>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wp {

struct SpecialTokens {
    std::optional<int> bos, pad, unk;
    std::vector<int> eos;                            // eos_token of tokenizer_config (+ model's, added by callers)
    std::optional<int> turn_start, turn_end;         // <start_of_turn>/<end_of_turn> or <|im_start|>/<|im_end|>
    std::string bos_text, eos_text, pad_text, unk_text;
};

// An added token of tokenizer.json or tokenizer_config.json's added_tokens_decoder.
struct AddedToken {
    int id = 0;
    std::string content;
    bool special = false;
    bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // add_special_tokens: what transformers adds by default (Gemma's <bos>; nothing for Qwen2).
    // Added-token text inside `text` (e.g. "<|im_start|>") is matched as that token. A text longer
    // than max_encode_bytes() is refused (wp::Error) before any work.
    std::vector<int> encode(std::string_view text, bool add_special_tokens) const;
    // The longest text encode() takes: a run of one character is one pre-token, whose merges cost
    // tens of bytes of memory per byte of text, so the bound keeps that to a few hundred MB.
    virtual std::size_t max_encode_bytes() const = 0;
    // skip_special: drops the ids of added tokens marked special.
    virtual std::string decode(std::span<const int> ids, bool skip_special) const = 0;
    virtual std::string piece(int id) const = 0;  // the vocabulary string ("Ġworld", "▁the", "<0x0A>")
    virtual std::optional<int> piece_to_id(std::string_view piece) const = 0;
    virtual int vocab_size() const = 0;           // highest id + 1, added tokens included
    virtual std::string describe() const = 0;     // e.g. "tokenizer.json, byte-level BPE"

    const SpecialTokens& special() const { return special_; }
    bool is_special(int id) const;
    const std::vector<AddedToken>& added_tokens() const { return added_; }

    // Picks tokenizer.json, else tokenizer.model; for a .gguf file, its tokenizer.ggml.* metadata.
    // Throws wp::Error when there is neither, or a file is malformed.
    static std::unique_ptr<Tokenizer> load(const std::filesystem::path& dir);

protected:
    // Reads tokenizer_config.json (when present): special-token strings, add_bos/add_eos, and
    // added_tokens_decoder entries not already known. Resolves SpecialTokens ids.
    void finish_setup(const std::filesystem::path& dir);
    virtual void added_tokens_changed() {}
    virtual std::vector<int> encode_text(std::string_view text, bool add_special_tokens) const = 0;

    std::vector<AddedToken> added_;
    SpecialTokens special_;
    std::optional<bool> config_add_bos_, config_add_eos_;
};

}  // namespace wp

// A SentencePiece model run by libsentencepiece, with added tokens split out of the text first as
// transformers' slow tokenizers do: tokenizer.model files, and (gguf_tokenizer.cpp) the models
// built in memory from a GGUF file's tokenizer.ggml.* metadata.
#pragma once

#include <sentencepiece_processor.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/text_util.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

class SentencePieceTokenizer : public Tokenizer {
public:
    // `proto`: a serialized ModelProto; `where` names its source in errors ("tokenizer.model").
    SentencePieceTokenizer(const std::string& proto, std::string where);

    // libsentencepiece spends about 110 bytes and 1.4 µs per byte of one repeated letter, growing
    // slightly faster than the text; 1 MB keeps a hostile text to about 4 s with a 256k vocabulary.
    std::size_t max_encode_bytes() const override { return std::size_t{1} << 20; }
    std::vector<int> encode_text(std::string_view text, bool add_special_tokens) const override;
    std::string decode(std::span<const int> ids, bool skip_special) const override;
    std::string piece(int id) const override;
    std::optional<int> piece_to_id(std::string_view piece) const override;
    int vocab_size() const override;
    std::string describe() const override;
    void added_tokens_changed() override;

    // Without tokenizer_config.json: the model's own bos/eos/unk/pad.
    void defaults_without_config();

protected:
    // The added tokens the splitter matches in text (each maps to its id): added_ unless a
    // subclass knows other spellings of them.
    virtual std::vector<AddedToken> tokens_to_match() const { return added_; }
    const AddedToken* added(int id) const;

    sentencepiece::SentencePieceProcessor sp_;

private:
    std::string where_;
    text::AddedTokenSplitter splitter_;
    std::unordered_map<int, std::size_t> by_id_;
};

}  // namespace wp

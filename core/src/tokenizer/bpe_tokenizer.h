// tokenizer.json BPE (internal header; users see wp::Tokenizer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/text_util.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

class BpeTokenizer : public Tokenizer {
public:
    explicit BpeTokenizer(const std::filesystem::path& tokenizer_json);
    // A parsed tokenizer.json (the GGUF loader builds one in memory); `where` names it in errors.
    BpeTokenizer(const nlohmann::json& tokenizer_json, const std::string& where);
    ~BpeTokenizer() override;

    std::vector<int> encode_text(std::string_view text, bool add_special_tokens) const override;
    // 8 MB of one repeated letter: about 400 MB and 5 s (bench-tokenize measures typical text).
    std::size_t max_encode_bytes() const override { return std::size_t{8} << 20; }
    std::string decode(std::span<const int> ids, bool skip_special) const override;
    std::string piece(int id) const override;
    std::optional<int> piece_to_id(std::string_view piece) const override;
    int vocab_size() const override { return static_cast<int>(pieces_.size()); }
    std::string describe() const override { return describe_; }

    void added_tokens_changed() override { splitter_.build(added_); }

private:
    struct Normalizer;
    struct PreTokenizer;
    struct Decoder;
    struct Merge {
        int rank;
        int new_id;
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using WordCache = std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>>;

    static std::uint64_t pair_key(int a, int b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }
    void parse_normalizer(const nlohmann::json& n);
    void parse_pre_tokenizer(const nlohmann::json& p);
    void parse_decoder(const nlohmann::json& d);
    void bpe_word(const std::string& word, std::vector<int>& out) const;
    void encode_segment(std::string_view seg, bool first_segment, std::vector<int>& out, WordCache& cache) const;
    // One pre-tokenized word through the cache and BPE; `map_bytes` applies the byte-level map first.
    void encode_word(std::string_view word, bool map_bytes, std::vector<int>& out, WordCache& cache) const;
    std::vector<int> add_special(std::vector<int> body) const;

    std::unordered_map<std::string, int> vocab_;
    std::vector<std::string> pieces_;
    std::unordered_map<std::uint64_t, Merge> merges_;
    std::vector<int> byte_ids_;
    std::optional<int> unk_;
    bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
    std::vector<std::unique_ptr<Normalizer>> normalizers_;
    std::vector<std::unique_ptr<PreTokenizer>> pre_;
    std::vector<std::unique_ptr<Decoder>> decoders_;
    // Fast path for the common pipeline "regex split (isolated) [+ byte-level map]": words are
    // views into the normalised text and the cache is keyed by the raw word.
    bool fast_split_ = false;
    bool fast_byte_level_ = false;
    std::vector<int> template_;  // post-processor: -1 = the sequence, else a token id
    text::AddedTokenSplitter splitter_;
    std::string describe_;
    mutable std::mutex cache_mutex_;
    mutable WordCache cache_;
};

}  // namespace wp

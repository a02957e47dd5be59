#include "tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>

#include "wp/error.h"

namespace wp {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& proto, std::string where) : where_(std::move(where)) {
    // libsentencepiece's status names its own source file and line: not for the user.
    if (!sp_.LoadFromSerializedProto(proto).ok()) throw Error(where_ + ": not a valid SentencePiece model");
}

std::vector<int> SentencePieceTokenizer::encode_text(std::string_view text, bool add_special_tokens) const {
    std::vector<int> out;
    if (add_special_tokens && config_add_bos_.value_or(true) && special_.bos) out.push_back(*special_.bos);
    std::vector<text::AddedTokenSplitter::Piece> pieces;
    splitter_.split(text, pieces);
    std::vector<int> ids;
    for (const auto& p : pieces) {
        if (p.token >= 0) {
            out.push_back(p.token);
            continue;
        }
        ids.clear();
        const auto status = sp_.Encode(absl::string_view(p.text.data(), p.text.size()), &ids);
        if (!status.ok()) throw Error(where_ + ": the SentencePiece model failed to encode the text");
        out.insert(out.end(), ids.begin(), ids.end());
    }
    if (add_special_tokens && config_add_eos_.value_or(false) && !special_.eos.empty()) out.push_back(special_.eos.front());
    return out;
}

std::string SentencePieceTokenizer::decode(std::span<const int> ids, bool skip_special) const {
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
        if (run.empty()) return;
        std::string s;
        sp_.Decode(run, &s);
        out += s;
        run.clear();
    };
    for (int id : ids) {
        if (id < 0 || id >= vocab_size()) continue;
        if (const AddedToken* t = added(id)) {
            flush();
            if (!(skip_special && t->special)) out += t->content;
            continue;
        }
        run.push_back(id);
    }
    flush();
    return out;
}

std::string SentencePieceTokenizer::piece(int id) const {
    if (const AddedToken* t = added(id)) return t->content;
    if (id < 0 || id >= sp_.GetPieceSize()) return {};
    return sp_.IdToPiece(id);
}

std::optional<int> SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
    for (const auto& t : added_)
        if (t.content == piece) return t.id;
    const int id = sp_.PieceToId(absl::string_view(piece.data(), piece.size()));
    if (id == sp_.unk_id() && piece != sp_.IdToPiece(id)) return std::nullopt;
    return id;
}

int SentencePieceTokenizer::vocab_size() const {
    int n = sp_.GetPieceSize();
    for (const auto& t : added_) n = std::max(n, t.id + 1);
    return n;
}

std::string SentencePieceTokenizer::describe() const {
    return where_ + " (SentencePiece), " + std::to_string(vocab_size()) + " ids";
}

void SentencePieceTokenizer::added_tokens_changed() {
    splitter_.build(tokens_to_match());
    by_id_.clear();
    for (std::size_t i = 0; i < added_.size(); ++i) by_id_[added_[i].id] = i;
}

void SentencePieceTokenizer::defaults_without_config() {
    if (sp_.bos_id() >= 0 && !special_.bos) special_.bos = sp_.bos_id();
    if (sp_.eos_id() >= 0 && special_.eos.empty()) special_.eos.push_back(sp_.eos_id());
    if (sp_.unk_id() >= 0 && !special_.unk) special_.unk = sp_.unk_id();
    if (sp_.pad_id() >= 0 && !special_.pad) special_.pad = sp_.pad_id();
    if (special_.bos) special_.bos_text = sp_.IdToPiece(*special_.bos);
    if (!special_.eos.empty()) special_.eos_text = sp_.IdToPiece(special_.eos.front());
}

const AddedToken* SentencePieceTokenizer::added(int id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &added_[it->second];
}

}  // namespace wp

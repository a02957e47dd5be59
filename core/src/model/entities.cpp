#include "wp/model/entities.h"

#include <algorithm>
#include <cmath>

#include "wp/error.h"

namespace wp {

namespace {

struct Tag {
    bool begins;      // B-X
    std::string type;  // X
};

// The pipeline's get_tag: B-X and I-X; a label without the prefix continues like I-.
Tag tag_of(const std::string& label) {
    if (label.rfind("B-", 0) == 0) return {true, label.substr(2)};
    if (label.rfind("I-", 0) == 0) return {false, label.substr(2)};
    return {false, label};
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::vector<float> token_probabilities(const TokenClassification& r) {
    std::vector<float> p(r.logits.size());
    const std::size_t n = static_cast<std::size_t>(r.num_labels);
    for (std::size_t row = 0; row + n <= r.logits.size() && n > 0; row += n) {
        const float* l = r.logits.data() + row;
        const double top = *std::max_element(l, l + n);
        double sum = 0;
        for (std::size_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(l[j]) - top);
        for (std::size_t j = 0; j < n; ++j) p[row + j] = static_cast<float>(std::exp(static_cast<double>(l[j]) - top) / sum);
    }
    return p;
}

std::vector<Entity> group_entities(const TokenClassification& r, std::span<const int> ids, const Tokenizer& tok,
                                   std::string_view text) {
    if (r.labels.size() != ids.size()) throw Error("group_entities: the classification is not of these ids");
    const std::vector<ByteSpan> spans = token_spans(tok, ids, text);
    const std::vector<float> probs = token_probabilities(r);
    const std::size_t n = static_cast<std::size_t>(r.num_labels);

    std::vector<Entity> out;
    struct Part {
        int token;
        double score;
    };
    std::vector<Part> parts;  // the entity being gathered
    std::string current;      // its first token's label
    auto close = [&] {
        if (parts.empty()) return;
        Entity e;
        // group_sub_entities: the first token's label after its first "-".
        const std::size_t dash = current.find('-');
        e.group = dash == std::string::npos ? current : current.substr(dash + 1);
        double sum = 0;
        for (const Part& p : parts) sum += p.score;
        e.score = sum / static_cast<double>(parts.size());
        e.first_token = parts.front().token;
        e.last_token = parts.back().token;
        // The tokens' text without the spaces a byte-level or SentencePiece token carries with it.
        std::size_t b = spans[static_cast<std::size_t>(e.first_token)].begin;
        std::size_t en = spans[static_cast<std::size_t>(e.last_token)].end;
        // Tokens holding only part of a character have no bytes of their own (token_spans): such
        // an entity shows the character they belong to.
        if (b == en && b < text.size()) {
            en = b + 1;
            while (en < text.size() && (static_cast<unsigned char>(text[en]) & 0xC0) == 0x80) ++en;
        }
        const std::size_t b0 = b, en0 = en;
        while (b < en && is_space(text[b])) ++b;
        while (en > b && is_space(text[en - 1])) --en;
        e.span = b < en ? ByteSpan{b, en} : ByteSpan{b0, en0};  // an entity of only spaces keeps them
        e.text = std::string(text.substr(e.span.begin, e.span.end - e.span.begin));
        // The pipeline drops entities labelled O (its default ignore_labels).
        if (e.group != "O") out.push_back(std::move(e));
        parts.clear();
    };
    for (std::size_t t = 0; t < ids.size(); ++t) {
        if (tok.is_special(ids[t])) continue;  // the pipeline's special_tokens_mask
        const std::string& label = r.labels[t];
        const float* p = probs.data() + t * n;
        const double score = *std::max_element(p, p + n);
        if (!parts.empty()) {
            const Tag now = tag_of(label), last = tag_of(r.labels[static_cast<std::size_t>(parts.back().token)]);
            if (now.type == last.type && !now.begins) {
                parts.push_back({static_cast<int>(t), score});
                continue;
            }
            close();
        }
        current = label;
        parts.push_back({static_cast<int>(t), score});
    }
    close();
    return out;
}

}  // namespace wp

// Token classification's entities, as transformers' token-classification pipeline groups them
// with aggregation_strategy="simple": each token takes its arg-max label and that label's softmax
// probability; B-X starts an entity, following I-X (or X) tokens of the same type join it; the
// entity's score is the mean of its tokens'; special tokens are skipped and "O" entities dropped.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wp/model/task_heads.h"
#include "wp/tokenizer/token_offsets.h"
#include "wp/tokenizer/tokenizer.h"

namespace wp {

struct Entity {
    std::string group;  // the label without its B-/I- prefix
    double score = 0;   // mean of the tokens' probabilities
    int first_token = 0, last_token = 0;
    // In the text, without the spaces around its words (unless it is only spaces); tokens that
    // hold only part of a character give that whole character.
    ByteSpan span;
    std::string text;   // the text's bytes in span
};

// Softmax of each token's logits: [tokens][labels].
std::vector<float> token_probabilities(const TokenClassification& r);

// `ids` is the encoding of `text` that `r` classified.
std::vector<Entity> group_entities(const TokenClassification& r, std::span<const int> ids, const Tokenizer& tok,
                                   std::string_view text);

}  // namespace wp

// Where each token of an encoding lies in the text it came from, for showing entities and answers
// in their text. Found by streaming the ids through a StreamingDecoder, so it works for every
// tokenizer without tracking offsets through normalisation and merges.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "wp/tokenizer/tokenizer.h"

namespace wp {

struct ByteSpan {
    std::size_t begin = 0, end = 0;  // bytes of the text, [begin, end)
    bool empty() const { return begin >= end; }
};

// Each token's bytes of `text`, where `ids` is text's encoding (special tokens allowed: they get
// an empty span). A token that ends inside a UTF-8 character ends before it (the next token takes
// the whole character). When decoding does not give back `text` (a normalising tokenizer), the
// spans follow the decoded text as far as it agrees with `text` and are empty after that.
// Linear in the number of ids.
std::vector<ByteSpan> token_spans(const Tokenizer& tok, std::span<const int> ids, std::string_view text);

// Characters (code points) in text[0, byte): offsets as Python, and transformers' pipelines, count them.
std::size_t char_offset(std::string_view text, std::size_t byte);

}  // namespace wp

// Turns a token stream into text chunks for display, token by token. A chunk never ends in the
// middle of a UTF-8 character (byte-fallback and byte-level tokens can split one), and leading
// spaces come out as they do in a full decode: each step decodes a short window that starts with
// already-shown tokens, and emits only what the new token adds.
#pragma once

#include <string>
#include <vector>

#include "wp/tokenizer/tokenizer.h"

namespace wp {

class StreamingDecoder {
public:
    explicit StreamingDecoder(const Tokenizer& tok, bool skip_special = true) : tok_(tok), skip_(skip_special) {}

    // Text that became complete with this token (possibly empty).
    std::string push(int id);
    // Whatever is still held back (an incomplete character at the very end becomes U+FFFD).
    std::string flush();
    void reset();

private:
    void keep_context();

    const Tokenizer& tok_;
    bool skip_;
    std::vector<int> window_;      // context tokens + tokens not yet shown
    std::size_t shown_ = 0;        // window_[0, shown_) is context already emitted
    std::string shown_text_;       // decode of window_[0, shown_)
};

}  // namespace wp

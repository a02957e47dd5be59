#include "wp/tokenizer/token_offsets.h"

#include <algorithm>
#include <string>

#include "wp/tokenizer/streaming_decoder.h"

namespace wp {

namespace {

bool continuation_byte(char b) { return (static_cast<unsigned char>(b) & 0xC0) == 0x80; }

}  // namespace

std::vector<ByteSpan> token_spans(const Tokenizer& tok, std::span<const int> ids, std::string_view text) {
    std::vector<ByteSpan> spans(ids.size());
    // The streaming decoder emits each token's text as a full decode would show it, and holds
    // back a character split between tokens until its last byte: that token takes it whole.
    // Special tokens emit nothing (skip_special) and so take an empty span.
    StreamingDecoder decoder(tok, true);
    std::size_t end = 0;
    bool agrees = true;  // the decode so far is text's prefix
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::string added = decoder.push(ids[i]);
        spans[i].begin = end;
        if (agrees && text.substr(end, added.size()) == added) end += added.size();
        else agrees = false;
        spans[i].end = end;
    }
    return spans;
}

std::size_t char_offset(std::string_view text, std::size_t byte) {
    byte = std::min(byte, text.size());
    std::size_t chars = 0;
    for (std::size_t i = 0; i < byte; ++i)
        if (!continuation_byte(text[i])) ++chars;
    return chars;
}

}  // namespace wp

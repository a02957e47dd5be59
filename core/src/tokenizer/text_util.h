// UTF-8 and Unicode helpers shared by the tokenizers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wp/tokenizer/tokenizer.h"

namespace wp::text {

// Length of the UTF-8 sequence starting with byte `b` (1 for invalid lead bytes).
int utf8_len(unsigned char b);
void append_utf8(std::string& out, char32_t cp);
// Decodes one code point at s[i], advancing i; invalid bytes yield U+FFFD and advance by one.
char32_t next_cp(std::string_view s, std::size_t& i);
// Replaces invalid UTF-8 with U+FFFD per invalid byte, like Rust's String::from_utf8_lossy.
std::string utf8_lossy(std::string_view bytes);
bool is_ascii(std::string_view s);
// Python's str.isprintable() for one code point: all but controls, format, surrogates, private
// use, unassigned and separators (the ASCII space excepted); repr() escapes the others.
bool is_printable(char32_t cp);
// Unicode canonical composition (NFC), through utf8proc.
std::string nfc(std::string_view s);

// GPT-2's byte <-> unicode map used by byte-level BPE.
const std::string& byte_to_unicode(unsigned char b);  // UTF-8 of the mapped code point
int unicode_to_byte(char32_t cp);                     // -1 when not in the map

// Splits text around added tokens, leftmost-longest, honouring lstrip/rstrip/single_word.
class AddedTokenSplitter {
public:
    struct Piece {
        std::string_view text;  // when token < 0
        int token = -1;
    };
    void build(const std::vector<AddedToken>& tokens);
    bool empty() const { return nodes_.size() <= 1; }
    void split(std::string_view text, std::vector<Piece>& out) const;

private:
    struct Node {
        std::vector<std::pair<unsigned char, int>> children;
        int token = -1;  // index into tokens_
    };
    int child(int node, unsigned char b) const;
    std::vector<Node> nodes_{1};
    bool first_byte_[256] = {};
    std::vector<AddedToken> tokens_;
};

}  // namespace wp::text

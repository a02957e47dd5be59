#include "tokenizer/text_util.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <utf8proc.h>

#include "wp/error.h"

namespace wp::text {

int utf8_len(unsigned char b) {
    if (b < 0x80) return 1;
    if ((b & 0xe0) == 0xc0) return 2;
    if ((b & 0xf0) == 0xe0) return 3;
    if ((b & 0xf8) == 0xf0) return 4;
    return 1;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

char32_t next_cp(std::string_view s, std::size_t& i) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {
        ++i;
        return 0xfffd;
    }
    i += static_cast<std::size_t>(n);
    return static_cast<char32_t>(cp);
}

std::string utf8_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        const unsigned char b = static_cast<unsigned char>(bytes[i]);
        if (b < 0x80) {
            out += static_cast<char>(b);
            ++i;
            continue;
        }
        utf8proc_int32_t cp = 0;
        const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(bytes.data() + i),
                                        static_cast<utf8proc_ssize_t>(bytes.size() - i), &cp);
        if (n <= 0) {
            // Rust's from_utf8_lossy replaces the longest invalid prefix of a would-be sequence
            // with one U+FFFD: a valid lead byte followed by valid continuations that stop early.
            std::size_t len = 1;
            const int want = utf8_len(b);
            if (want > 1) {
                while (len < static_cast<std::size_t>(want) && i + len < bytes.size() &&
                       (static_cast<unsigned char>(bytes[i + len]) & 0xc0) == 0x80) {
                    // Only continuations that could still form a valid sequence are swallowed.
                    const unsigned char c = static_cast<unsigned char>(bytes[i + len]);
                    if (len == 1) {
                        if (b == 0xe0 && c < 0xa0) break;
                        if (b == 0xed && c >= 0xa0) break;
                        if (b == 0xf0 && c < 0x90) break;
                        if (b == 0xf4 && c >= 0x90) break;
                        if (b > 0xf4 || b < 0xc2) break;
                    }
                    ++len;
                }
            }
            out += "\xef\xbf\xbd";
            i += len;
            continue;
        }
        out.append(bytes.substr(i, static_cast<std::size_t>(n)));
        i += static_cast<std::size_t>(n);
    }
    return out;
}

bool is_printable(char32_t cp) {
    if (cp < 0x80) return cp >= 0x20 && cp < 0x7f;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CN:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
        case UTF8PROC_CATEGORY_ZS: return false;
        default: return true;
    }
}

bool is_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

namespace {

std::string nfc_run(std::string_view s) {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &out,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) return utf8_lossy(s);  // invalid UTF-8: leave it to the byte-level stage
    std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
    std::free(out);
    return r;
}

}  // namespace

std::string nfc(std::string_view s) {
    // ASCII characters are starters that never compose with what precedes them, so only each
    // non-ASCII run, together with the one character before it, can change.
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && static_cast<unsigned char>(s[j]) < 0x80) ++j;
        if (j == s.size()) {
            out.append(s.substr(i));
            break;
        }
        const std::size_t start = j > i ? j - 1 : j;  // the ASCII starter before the run
        out.append(s.substr(i, start - i));
        std::size_t k = j;
        while (k < s.size() && static_cast<unsigned char>(s[k]) >= 0x80) ++k;
        out += nfc_run(s.substr(start, k - start));
        i = k;
    }
    return out;
}

namespace {

struct ByteTables {
    std::array<std::string, 256> to_unicode;
    std::array<int, 512> from_unicode{};
    ByteTables() {
        from_unicode.fill(-1);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool direct = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            const char32_t cp = direct ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
            append_utf8(to_unicode[b], cp);
            from_unicode[cp] = b;
        }
    }
};

const ByteTables& byte_tables() {
    static const ByteTables t;
    return t;
}

}  // namespace

const std::string& byte_to_unicode(unsigned char b) { return byte_tables().to_unicode[b]; }

int unicode_to_byte(char32_t cp) { return cp < 512 ? byte_tables().from_unicode[cp] : -1; }

int AddedTokenSplitter::child(int node, unsigned char b) const {
    for (const auto& [c, n] : nodes_[node].children)
        if (c == b) return n;
    return -1;
}

void AddedTokenSplitter::build(const std::vector<AddedToken>& tokens) {
    nodes_.assign(1, Node{});
    tokens_ = tokens;
    std::fill(std::begin(first_byte_), std::end(first_byte_), false);
    for (std::size_t t = 0; t < tokens_.size(); ++t) {
        const std::string& s = tokens_[t].content;
        if (s.empty()) continue;
        first_byte_[static_cast<unsigned char>(s[0])] = true;
        int node = 0;
        for (unsigned char b : s) {
            int next = child(node, b);
            if (next < 0) {
                next = static_cast<int>(nodes_.size());
                nodes_.push_back(Node{});
                nodes_[node].children.emplace_back(b, next);
            }
            node = next;
        }
        nodes_[node].token = static_cast<int>(t);
    }
}

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
}  // namespace

void AddedTokenSplitter::split(std::string_view text, std::vector<Piece>& out) const {
    out.clear();
    if (empty()) {
        if (!text.empty()) out.push_back({text, -1});
        return;
    }
    std::size_t emitted = 0;  // text before this offset is already in `out`
    std::size_t i = 0;
    while (i < text.size()) {
        if (!first_byte_[static_cast<unsigned char>(text[i])]) {
            ++i;
            continue;
        }
        // Longest added token starting at i.
        int node = 0, best = -1;
        std::size_t best_end = 0;
        for (std::size_t j = i; j < text.size(); ++j) {
            node = child(node, static_cast<unsigned char>(text[j]));
            if (node < 0) break;
            if (nodes_[node].token >= 0) {
                best = nodes_[node].token;
                best_end = j + 1;
            }
        }
        if (best < 0) {
            ++i;
            continue;
        }
        const AddedToken& tok = tokens_[best];
        std::size_t start = i, stop = best_end;
        if (tok.single_word && ((start > 0 && is_word(text[start - 1])) || (stop < text.size() && is_word(text[stop])))) {
            ++i;
            continue;
        }
        if (tok.lstrip)
            while (start > emitted && is_space(text[start - 1])) --start;
        if (tok.rstrip)
            while (stop < text.size() && is_space(text[stop])) ++stop;
        if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
        out.push_back({{}, tok.id});
        emitted = stop;
        i = stop;
    }
    if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace wp::text

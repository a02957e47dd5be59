// The first stage of reading a chat template: the source text with jinja2's preprocessing, and its
// tokens, with jinja2's whitespace control (trim_blocks and lstrip_blocks on, as transformers sets).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wp::jinja {

// The template text with jinja2's preprocessing (\r\n and \r become \n; one trailing newline is
// dropped, keep_trailing_newline being off) and positions for error messages.
class Source {
public:
    explicit Source(std::string_view raw);

    const std::string& text() const { return text_; }

    int line(std::size_t pos) const {  // 1-based
        return static_cast<int>(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
    }

    // Throws the TemplateError of a syntax error at `pos` (line and column).
    [[noreturn]] void fail(std::size_t pos, const std::string& message) const;

private:
    std::string text_;
    std::vector<std::size_t> line_starts_;
};

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
    Tok type;
    std::string text;  // Text, Name, String (unescaped), Op
    std::size_t pos = 0;
    std::int64_t int_value = 0;
    double float_value = 0;
};

// Splits the source into text and tags, and tags into tokens, ending with one Tok::End. Throws
// TemplateError on an unclosed tag, string or bracket and on characters outside the grammar.
std::vector<Token> tokenize(const Source& src);

}  // namespace wp::jinja

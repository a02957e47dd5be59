// The chat-template lexer: jinja2's preprocessing of the source, then text and tags split the way
// jinja2's lexer does, with whitespace control, and the tags' tokens (names, literals with
// Python's string escapes, operators).
#include "chat/jinja_lexer.h"

#include <charconv>
#include <cstring>

#include "chat/jinja_strings.h"
#include "tokenizer/text_util.h"
#include "wp/chat/chat_template.h"

namespace wp::jinja {

Source::Source(std::string_view raw) {
    text_.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r') {
            text_ += '\n';
            if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
        } else {
            text_ += raw[i];
        }
    }
    if (!text_.empty() && text_.back() == '\n') text_.pop_back();
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < text_.size(); ++i)
        if (text_[i] == '\n') line_starts_.push_back(i + 1);
}

void Source::fail(std::size_t pos, const std::string& message) const {
    pos = std::min(pos, text_.size());
    const int ln = line(pos);
    const std::size_t line_start = line_starts_[static_cast<std::size_t>(ln - 1)];
    const std::size_t column = code_point_count(std::string_view(text_).substr(line_start, pos - line_start)) + 1;
    throw TemplateError("chat template syntax error at line " + std::to_string(ln) + ", column " +
                        std::to_string(column) + ": " + message);
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Splits the source into text and tags the way jinja2's lexer does, applying whitespace control:
// `-` on a tag strips all whitespace on that side; trim_blocks drops the first newline after a block
// or comment tag; lstrip_blocks drops spaces and tabs before a block or comment tag that starts
// its line; `+` disables either. None of that applies to the text before `{{`.
class Lexer {
public:
    explicit Lexer(const Source& src) : src_(src), s_(src.text()) {}

    std::vector<Token> run() {
        std::size_t pos = 0;
        while (pos < s_.size()) {
            const std::size_t start = find_tag(pos);
            if (start == std::string::npos) {
                emit_text(std::string_view(s_).substr(pos), pos);
                break;
            }
            const char kind = s_[start + 1];  // '{', '%' or '#'
            std::size_t body = start + 2;
            const char sign = body < s_.size() && (s_[body] == '-' || s_[body] == '+') ? s_[body++] : 0;
            emit_text(strip_before(std::string_view(s_).substr(pos, start - pos), sign, kind == '{'), pos);
            if (kind == '#')
                pos = comment(start, body);
            else if (kind == '{')
                pos = tag(start, body, true);
            else if (const std::size_t raw_body = raw_begin(body); raw_body != std::string::npos)
                pos = raw(start, raw_body);
            else
                pos = tag(start, body, false);
        }
        out_.push_back({Tok::End, "", s_.size()});
        return std::move(out_);
    }

private:
    bool at(std::size_t p, std::string_view what) const { return s_.compare(p, what.size(), what) == 0; }

    std::size_t find_tag(std::size_t pos) const {
        for (std::size_t i = s_.find('{', pos); i != std::string::npos; i = s_.find('{', i + 1))
            if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
        return std::string::npos;
    }

    void emit_text(std::string_view text, std::size_t pos) {
        if (!text.empty()) out_.push_back({Tok::Text, std::string(text), pos});
    }

    std::string_view strip_before(std::string_view text, char sign, bool variable) const {
        if (sign == '-') return text.substr(0, rstrip_py_space(text));
        if (sign == '+' || variable) return text;
        // lstrip_blocks: only whitespace between the line start and the tag. The text may begin
        // mid-line, unless the previous tag ended with a newline.
        const std::size_t nl = text.rfind('\n');
        const std::size_t line = nl == std::string_view::npos ? 0 : nl + 1;
        if ((line > 0 || line_starting_) && line < text.size() && skip_py_space(text, line) == text.size())
            return text.substr(0, line);
        return text;
    }

    // Where the text after a block or comment end marker resumes.
    std::size_t after_block_end(std::size_t end, char sign) {
        if (sign == '-')
            end = skip_py_space(s_, end);
        else if (sign != '+' && end < s_.size() && s_[end] == '\n')
            ++end;  // trim_blocks
        line_starting_ = s_[end - 1] == '\n';
        return end;
    }

    std::size_t comment(std::size_t start, std::size_t body) {
        const std::size_t close = s_.find("#}", body);
        if (close == std::string::npos) src_.fail(start, "missing end of comment tag '#}'");
        const char sign = close > body && (s_[close - 1] == '-' || s_[close - 1] == '+') ? s_[close - 1] : 0;
        return after_block_end(close + 2, sign);
    }

    // `{% raw %}`: returns where its body starts, or npos when the tag is something else.
    std::size_t raw_begin(std::size_t p) const {
        p = skip_py_space(s_, p);
        if (!at(p, "raw")) return std::string::npos;
        p = skip_py_space(s_, p + 3);
        if (at(p, "-%}")) return skip_py_space(s_, p + 3);
        if (at(p, "%}")) return p + 2;
        return std::string::npos;
    }

    std::size_t raw(std::size_t start, std::size_t body) {
        line_starting_ = s_[body - 1] == '\n';
        for (std::size_t c = s_.find("{%", body); c != std::string::npos; c = s_.find("{%", c + 1)) {
            std::size_t p = c + 2;
            const char sign = p < s_.size() && (s_[p] == '-' || s_[p] == '+') ? s_[p++] : 0;
            p = skip_py_space(s_, p);
            if (!at(p, "endraw")) continue;
            p = skip_py_space(s_, p + 6);
            char end_sign = 0;
            if (at(p, "-%}") || at(p, "+%}")) end_sign = s_[p++];
            if (!at(p, "%}")) continue;
            emit_text(strip_before(std::string_view(s_).substr(body, c - body), sign, false), body);
            return after_block_end(p + 2, end_sign);
        }
        src_.fail(start, "missing end of raw block '{% endraw %}'");
    }

    // The tokens of a {{ }} or {% %} tag. End markers inside brackets are operators, as in
    // jinja2 ({{ {'a': {'b': 1}} }}).
    std::size_t tag(std::size_t start, std::size_t p, bool variable) {
        out_.push_back({variable ? Tok::VarBegin : Tok::BlockBegin, "", start});
        std::vector<char> closers;
        while (true) {
            p = skip_py_space(s_, p);
            if (p >= s_.size())
                src_.fail(start, variable ? "unclosed '{{': expected '}}'" : "unclosed '{%': expected '%}'");
            if (closers.empty()) {
                if (variable && (at(p, "}}") || at(p, "-}}"))) {
                    out_.push_back({Tok::VarEnd, "", p});
                    if (s_[p] == '}') {
                        line_starting_ = false;
                        return p + 2;
                    }
                    const std::size_t end = skip_py_space(s_, p + 3);
                    line_starting_ = s_[end - 1] == '\n';
                    return end;
                }
                const char sign = s_[p] == '-' || s_[p] == '+' ? s_[p] : 0;
                if (!variable && at(p + (sign ? 1 : 0), "%}")) {
                    out_.push_back({Tok::BlockEnd, "", p});
                    return after_block_end(p + (sign ? 3 : 2), sign);
                }
            }
            p = token(p, closers);
        }
    }

    std::size_t digits(std::size_t p) const {  // (\d+_)*\d+
        while (p < s_.size() && (is_digit(s_[p]) || (s_[p] == '_' && p + 1 < s_.size() && is_digit(s_[p + 1])))) ++p;
        return p;
    }

    std::size_t token(std::size_t p, std::vector<char>& closers) {
        const char c = s_[p];
        if (is_digit(c)) return number(p);
        if (is_name_start(c)) {
            std::size_t e = p;
            while (e < s_.size() && is_name_char(s_[e])) ++e;
            out_.push_back({Tok::Name, s_.substr(p, e - p), p});
            return e;
        }
        if (c == '\'' || c == '"') return string(p);
        for (std::string_view op : {"//", "**", "==", "!=", ">=", "<="})
            if (at(p, op)) {
                out_.push_back({Tok::Op, std::string(op), p});
                return p + 2;
            }
        if (std::strchr("+-/*%~[](){}><=.:|,;", c) == nullptr) {
            std::size_t e = p;
            text::next_cp(s_, e);
            src_.fail(p, "unexpected character '" + s_.substr(p, e - p) + "'");
        }
        if (c == '(' || c == '[' || c == '{') {
            closers.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        } else if (c == ')' || c == ']' || c == '}') {
            if (closers.empty()) src_.fail(p, std::string("unexpected '") + c + "'");
            if (closers.back() != c)
                src_.fail(p, std::string("unexpected '") + c + "', expected '" + closers.back() + "'");
            closers.pop_back();
        }
        out_.push_back({Tok::Op, std::string(1, c), p});
        return p + 1;
    }

    std::size_t number(std::size_t p) {
        std::size_t e = digits(p);
        bool is_float = false;
        // No float right after a '.': `x.0.1` is two item lookups, as in jinja2.
        if (p == 0 || s_[p - 1] != '.') {
            std::size_t f = e;
            if (f + 1 < s_.size() && s_[f] == '.' && is_digit(s_[f + 1])) {
                f = digits(f + 1);
                is_float = true;
            }
            if (f < s_.size() && (s_[f] == 'e' || s_[f] == 'E')) {
                std::size_t x = f + 1;
                if (x < s_.size() && (s_[x] == '+' || s_[x] == '-')) ++x;
                if (x < s_.size() && is_digit(s_[x])) {
                    f = digits(x);
                    is_float = true;
                }
            }
            if (is_float) e = f;
        }
        std::string clean;
        for (std::size_t i = p; i < e; ++i)
            if (s_[i] != '_') clean += s_[i];
        Token t{is_float ? Tok::Float : Tok::Int, clean, p};
        const char* first = clean.data();
        const char* last = clean.data() + clean.size();
        if (is_float) {
            std::from_chars(first, last, t.float_value);  // locale-independent, unlike strtod
        } else {
            if (clean[0] == '0' && clean.find_first_not_of('0') != std::string::npos)
                src_.fail(p, "leading zeros in an integer literal");
            if (std::from_chars(first, last, t.int_value).ec != std::errc()) src_.fail(p, "integer literal too large");
        }
        out_.push_back(std::move(t));
        return e;
    }

    // A string literal with Python's escapes (jinja2 decodes them with "unicode-escape").
    std::size_t string(std::size_t p) {
        const char quote = s_[p];
        std::string value;
        std::size_t i = p + 1;
        while (true) {
            if (i >= s_.size()) src_.fail(p, "unterminated string literal");
            const char c = s_[i];
            if (c == quote) break;
            if (c != '\\') {
                value += c;
                ++i;
                continue;
            }
            if (i + 1 >= s_.size()) src_.fail(p, "unterminated string literal");
            const char e = s_[i + 1];
            i += 2;
            switch (e) {
                case '\n': break;  // line continuation
                case '\\': value += '\\'; break;
                case '\'': value += '\''; break;
                case '"': value += '"'; break;
                case 'a': value += '\a'; break;
                case 'b': value += '\b'; break;
                case 'f': value += '\f'; break;
                case 'n': value += '\n'; break;
                case 'r': value += '\r'; break;
                case 't': value += '\t'; break;
                case 'v': value += '\v'; break;
                case 'x':
                case 'u':
                case 'U': {
                    const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    char32_t cp = 0;
                    for (int k = 0; k < n; ++k, ++i) {
                        const int h = i < s_.size() ? hex_value(s_[i]) : -1;
                        if (h < 0) src_.fail(i, std::string("truncated \\") + e + " escape in a string literal");
                        cp = cp * 16 + static_cast<char32_t>(h);
                    }
                    if (cp > 0x10FFFF) src_.fail(i, "escape beyond U+10FFFF in a string literal");
                    text::append_utf8(value, cp);
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {  // up to three octal digits
                        char32_t cp = static_cast<char32_t>(e - '0');
                        for (int k = 0; k < 2 && i < s_.size() && s_[i] >= '0' && s_[i] <= '7'; ++k, ++i)
                            cp = cp * 8 + static_cast<char32_t>(s_[i] - '0');
                        text::append_utf8(value, cp);
                    } else if (e == 'N') {
                        src_.fail(i - 2, "\\N{...} escapes are not supported");
                    } else {  // Python keeps unknown escapes as they are
                        value += '\\';
                        --i;
                    }
            }
        }
        out_.push_back({Tok::String, std::move(value), p});
        return i + 1;
    }

    const Source& src_;
    const std::string& s_;
    std::vector<Token> out_;
    bool line_starting_ = true;  // the last match ended with a newline (or nothing was matched yet)
};

}  // namespace

std::vector<Token> tokenize(const Source& src) { return Lexer(src).run(); }

}  // namespace wp::jinja

// The chat-template interpreter: lexer, parser and evaluator for the Jinja subset Hugging Face chat
// templates use, following jinja2 3.1 as transformers configures it (trim_blocks, lstrip_blocks,
// loop controls, the {% generation %} tag). Values and built-ins live in jinja_value.cpp and
// jinja_methods/filters/tests/globals.cpp.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "chat/jinja.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_strings.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

constexpr int kMaxParseDepth = 100;               // nested blocks and expressions
constexpr std::size_t kStackBudget = 512 * 1024;  // C++ stack a render may use (macro recursion)

// ======================================================================================
// Source and lexer
// ======================================================================================

// The template text with jinja2's preprocessing (\r\n and \r become \n; one trailing newline is
// dropped, keep_trailing_newline being off) and positions for error messages.
class Source {
public:
    explicit Source(std::string_view raw) {
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

    const std::string& text() const { return text_; }

    int line(std::size_t pos) const {
        return static_cast<int>(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
    }

    [[noreturn]] void fail(std::size_t pos, const std::string& message) const {
        pos = std::min(pos, text_.size());
        const int ln = line(pos);
        const std::size_t line_start = line_starts_[static_cast<std::size_t>(ln - 1)];
        const std::size_t column = code_point_count(std::string_view(text_).substr(line_start, pos - line_start)) + 1;
        throw TemplateError("chat template syntax error at line " + std::to_string(ln) + ", column " +
                            std::to_string(column) + ": " + message);
    }

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

// ======================================================================================
// Evaluator state
// ======================================================================================

struct Frame {
    std::shared_ptr<Frame> parent;
    Entries vars;

    const Value* find(std::string_view name) const {
        for (const auto& [k, v] : vars)
            if (k == name) return &v;
        return nullptr;
    }
    void set(const std::string& name, Value v) {
        for (auto& [k, old] : vars)
            if (k == name) {
                old = std::move(v);
                return;
            }
        vars.emplace_back(name, std::move(v));
    }
};

enum class Flow { Normal, Break, Continue };

class Interp : public Runtime {
public:
    Interp(const TemplateLimits& limits, const void* stack_base) : Runtime(limits), stack_base_(stack_base) {}

    Value lookup(const std::string& name) const {
        for (const Frame* f = scope.get(); f != nullptr; f = f->parent.get())
            if (const Value* v = f->find(name)) return *v;
        Value g = find_global(name);
        return g.is_undefined() ? Value::undefined("'" + name + "' is undefined") : g;
    }

    void write(std::string_view s) {
        if (s.size() > limits().max_output_bytes - out->size())
            throw Failure("template output exceeds the limit of " + std::to_string(limits().max_output_bytes) +
                          " bytes");
        bytes(s.size());
        out->append(s);
    }

    Value call(const Value& callee, Args& args);
    Value call_macro(const Macro& macro, Args& args);

    std::shared_ptr<Frame> scope;
    std::string* out = nullptr;
    // Frames that defined macros, kept alive for the render: a macro refers to its frame weakly,
    // so storing it in that frame makes no reference cycle.
    std::vector<std::shared_ptr<Frame>> closures;

private:
    void check_stack() const {
        const char here = 0;
        const auto used = reinterpret_cast<std::uintptr_t>(stack_base_) - reinterpret_cast<std::uintptr_t>(&here);
        if (used > kStackBudget && used < SIZE_MAX / 2)  // stacks grow down; the second test guards the other way
            throw Failure("the template is nested too deeply");
    }

    const void* stack_base_;
    int call_depth_ = 0;
};

// Runs code with another scope and output buffer (loop bodies, macro calls, captured blocks).
class Redirect {
public:
    Redirect(Interp& in, std::shared_ptr<Frame> scope, std::string* out)
        : in_(in), scope_(std::exchange(in.scope, std::move(scope))), out_(std::exchange(in.out, out)) {}
    ~Redirect() {
        in_.scope = std::move(scope_);
        in_.out = out_;
    }
    Redirect(const Redirect&) = delete;
    Redirect& operator=(const Redirect&) = delete;

private:
    Interp& in_;
    std::shared_ptr<Frame> scope_;
    std::string* out_;
};

std::shared_ptr<Frame> child_frame(const std::shared_ptr<Frame>& parent) {
    auto f = std::make_shared<Frame>();
    f->parent = parent;
    return f;
}

// ======================================================================================
// Expressions
// ======================================================================================

struct Expr {
    explicit Expr(int line) : line(line) {}
    virtual ~Expr() = default;
    Value eval(Interp& in) const {
        in.line = line;
        in.step();
        return do_eval(in);
    }
    const int line;

private:
    virtual Value do_eval(Interp& in) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
    std::vector<ExprPtr> positional;
    std::vector<std::pair<std::string, ExprPtr>> keyword;

    Args eval(Interp& in) const {
        Args a;
        for (const auto& e : positional) a.positional.push_back(e->eval(in));
        for (const auto& [k, e] : keyword) a.keyword.emplace_back(k, e->eval(in));
        return a;
    }
};

struct Literal final : Expr {
    Literal(int line, Value v) : Expr(line), value(std::move(v)) {}
    Value do_eval(Interp&) const override { return value; }
    const Value value;
};

struct ListLiteral final : Expr {
    ListLiteral(int line, std::vector<ExprPtr> items, bool tuple) : Expr(line), items(std::move(items)), tuple(tuple) {}
    Value do_eval(Interp& in) const override {
        std::vector<Value> out;
        out.reserve(items.size());
        for (const auto& e : items) out.push_back(e->eval(in));
        return Value::list(std::move(out), tuple);
    }
    const std::vector<ExprPtr> items;
    const bool tuple;
};

struct DictLiteral final : Expr {
    DictLiteral(int line, std::vector<std::pair<ExprPtr, ExprPtr>> items) : Expr(line), items(std::move(items)) {}
    Value do_eval(Interp& in) const override {
        Entries out;
        for (const auto& [k, v] : items) {
            const Value key = k->eval(in);
            // JSON-like dicts only: Python allows other hashable keys, no chat template uses them.
            if (!key.is_string()) throw Failure("dict keys must be strings, not " + type_name(key));
            Value value = v->eval(in);
            in.items(out.size());
            auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == key.str(); });
            if (it != out.end())
                it->second = std::move(value);
            else
                out.emplace_back(key.str(), std::move(value));
        }
        return Value::dict(std::move(out));
    }
    const std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct NameRef final : Expr {
    NameRef(int line, std::string name) : Expr(line), name(std::move(name)) {}
    Value do_eval(Interp& in) const override { return in.lookup(name); }
    const std::string name;
};

struct AttrRef final : Expr {
    AttrRef(int line, ExprPtr obj, std::string name) : Expr(line), obj(std::move(obj)), name(std::move(name)) {}
    Value do_eval(Interp& in) const override { return get_attr(in, obj->eval(in), name); }
    const ExprPtr obj;
    const std::string name;
};

struct ItemRef final : Expr {
    ItemRef(int line, ExprPtr obj, ExprPtr key) : Expr(line), obj(std::move(obj)), key(std::move(key)) {}
    Value do_eval(Interp& in) const override {
        const Value o = obj->eval(in);
        return get_item(in, o, key->eval(in));
    }
    const ExprPtr obj, key;
};

struct SliceRef final : Expr {
    SliceRef(int line, ExprPtr obj, ExprPtr start, ExprPtr stop, ExprPtr step)
        : Expr(line), obj(std::move(obj)), start(std::move(start)), stop(std::move(stop)), step(std::move(step)) {}
    Value do_eval(Interp& in) const override {
        const Value o = obj->eval(in);
        auto part = [&](const ExprPtr& e) { return e ? e->eval(in) : Value::none(); };
        const Value a = part(start), b = part(stop), c = part(step);
        return get_slice(in, o, a, b, c);
    }
    const ExprPtr obj, start, stop, step;
};

struct CallExpr final : Expr {
    CallExpr(int line, ExprPtr callee, CallArgs args) : Expr(line), callee(std::move(callee)), args(std::move(args)) {}
    Value do_eval(Interp& in) const override {
        const Value f = callee->eval(in);
        Args a = args.eval(in);
        return in.call(f, a);
    }
    const ExprPtr callee;
    const CallArgs args;
};

struct FilterCall {
    int line;
    std::string name;
    FilterFn fn;  // nullptr: unknown, reported when used (as jinja2 does for filters in untaken branches)
    CallArgs args;

    Value apply(Interp& in, const Value& input) const {
        Args a = args.eval(in);
        in.line = line;
        if (fn == nullptr) throw Failure("unknown filter '" + name + "'");
        Value out = fn(in, input, a);
        a.finish("filter '" + name + "'");
        return out;
    }
};

struct FilterExpr final : Expr {
    FilterExpr(int line, ExprPtr input, FilterCall filter)
        : Expr(line), input(std::move(input)), filter(std::move(filter)) {}
    Value do_eval(Interp& in) const override { return filter.apply(in, input->eval(in)); }
    const ExprPtr input;
    const FilterCall filter;
};

struct TestExpr final : Expr {
    TestExpr(int line, ExprPtr input, std::string name, CallArgs args)
        : Expr(line),
          input(std::move(input)),
          name(std::move(name)),
          fn(find_test(this->name)),
          args(std::move(args)) {}
    Value do_eval(Interp& in) const override {
        const Value v = input->eval(in);
        Args a = args.eval(in);
        in.line = line;
        if (fn == nullptr) throw Failure("unknown test '" + name + "'");
        const bool result = fn(in, v, a);
        a.finish("test '" + name + "'");
        return Value(result);
    }
    const ExprPtr input;
    const std::string name;
    const TestFn fn;
    const CallArgs args;
};

struct NotExpr final : Expr {
    NotExpr(int line, ExprPtr operand) : Expr(line), operand(std::move(operand)) {}
    Value do_eval(Interp& in) const override { return Value(!truthy(operand->eval(in))); }
    const ExprPtr operand;
};

struct UnaryExpr final : Expr {
    UnaryExpr(int line, ExprPtr operand, bool minus) : Expr(line), operand(std::move(operand)), minus(minus) {}
    Value do_eval(Interp& in) const override {
        const Value v = operand->eval(in);
        if (minus) return negate(v);
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) throw Failure("bad operand type for unary +: '" + type_name(v) + "'");
        return v.is(Value::Kind::Bool) ? Value(v.as_int()) : v;
    }
    const ExprPtr operand;
    const bool minus;
};

struct BinaryExpr final : Expr {
    BinaryExpr(int line, BinaryOp op, ExprPtr left, ExprPtr right)
        : Expr(line), op(op), left(std::move(left)), right(std::move(right)) {}
    Value do_eval(Interp& in) const override {
        const Value a = left->eval(in);
        const Value b = right->eval(in);
        return binary_op(in, op, a, b);
    }
    const BinaryOp op;
    const ExprPtr left, right;
};

// `and` / `or` return an operand, as in Python ("" or "x" is "x").
struct LogicExpr final : Expr {
    LogicExpr(int line, bool is_and, ExprPtr left, ExprPtr right)
        : Expr(line), is_and(is_and), left(std::move(left)), right(std::move(right)) {}
    Value do_eval(Interp& in) const override {
        Value a = left->eval(in);
        if (truthy(a) != is_and) return a;
        return right->eval(in);
    }
    const bool is_and;
    const ExprPtr left, right;
};

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

// Python chains comparisons: a < b < c is (a < b) and (b < c), b evaluated once.
struct CompareExpr final : Expr {
    CompareExpr(int line, ExprPtr first, std::vector<std::pair<CompareOp, ExprPtr>> rest)
        : Expr(line), first(std::move(first)), rest(std::move(rest)) {}
    Value do_eval(Interp& in) const override {
        Value left = first->eval(in);
        for (const auto& [op, e] : rest) {
            Value right = e->eval(in);
            if (!holds(in, op, left, right)) return Value(false);
            left = std::move(right);
        }
        return Value(true);
    }
    static bool holds(Interp& in, CompareOp op, const Value& a, const Value& b) {
        switch (op) {
            case CompareOp::Eq: return equals(in, a, b);
            case CompareOp::Ne: return !equals(in, a, b);
            case CompareOp::Lt: return compare(in, a, b) < 0;
            case CompareOp::Le: return compare(in, a, b) <= 0;
            case CompareOp::Gt: return compare(in, a, b) > 0;
            case CompareOp::Ge: return compare(in, a, b) >= 0;
            case CompareOp::In: return contains(in, b, a);
            case CompareOp::NotIn: return !contains(in, b, a);
        }
        return false;
    }
    const ExprPtr first;
    const std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

struct ConcatExpr final : Expr {  // a ~ b: string concatenation of str() values
    ConcatExpr(int line, std::vector<ExprPtr> parts) : Expr(line), parts(std::move(parts)) {}
    Value do_eval(Interp& in) const override {
        std::string out;
        for (const auto& p : parts) {
            const std::string piece = to_str(in, p->eval(in));
            out += piece;
            in.grew(out, piece.size());
        }
        return Value(std::move(out));
    }
    const std::vector<ExprPtr> parts;
};

struct CondExpr final : Expr {  // `a if cond else b`; without else, undefined when false
    CondExpr(int line, ExprPtr cond, ExprPtr then, ExprPtr otherwise)
        : Expr(line), cond(std::move(cond)), then(std::move(then)), otherwise(std::move(otherwise)) {}
    Value do_eval(Interp& in) const override {
        if (truthy(cond->eval(in))) return then->eval(in);
        if (otherwise) return otherwise->eval(in);
        return Value::undefined("the inline if-expression on line " + std::to_string(line) +
                                " evaluated to false and no else section was defined");
    }
    const ExprPtr cond, then, otherwise;
};

// ======================================================================================
// Statements
// ======================================================================================

}  // namespace

struct Stmt {
    explicit Stmt(int line) : line(line) {}
    virtual ~Stmt() = default;
    Flow exec(Interp& in) const {
        in.line = line;
        in.step();
        return do_exec(in);
    }
    const int line;

private:
    virtual Flow do_exec(Interp& in) const = 0;
};

namespace {

using Body = std::vector<std::unique_ptr<Stmt>>;

Flow run(Interp& in, const Body& body) {
    for (const auto& s : body)
        if (const Flow f = s->exec(in); f != Flow::Normal) return f;
    return Flow::Normal;
}

struct MacroDef {
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // for the last defaults.size() params
    Body body;
};

}  // namespace

struct Macro {
    std::shared_ptr<const MacroDef> def;
    std::weak_ptr<Frame> closure;  // the scope it was defined in (kept alive by Interp::closures)
};

std::string macro_name(const Macro& m) { return m.def->name; }

namespace {

Value make_macro(Interp& in, std::shared_ptr<const MacroDef> def) {
    auto m = std::make_shared<Macro>();
    m->def = std::move(def);
    m->closure = in.scope;
    in.closures.push_back(in.scope);
    return Value(std::shared_ptr<const Macro>(std::move(m)));
}

// What `set` and `for` assign to: a name, names to unpack, or a namespace attribute (ns.attr).
struct Target {
    std::vector<std::string> names;
    bool unpack = false;
    std::string attr;  // non-empty: names[0] is a namespace and this its attribute

    void assign(Interp& in, Frame& frame, const Value& v) const {
        if (!attr.empty()) {
            const Value ns = in.lookup(names[0]);
            if (!ns.is(Value::Kind::Namespace))
                throw Failure("cannot assign attribute on non-namespace object '" + names[0] + "'");
            set_namespace_attr(in, ns.ns(), attr, v);
        } else if (!unpack) {
            frame.set(names[0], v);
        } else {
            const auto items = iterate(in, v);
            if (items->items.size() != names.size())
                throw Failure(std::string(items->items.size() > names.size() ? "too many" : "not enough") +
                              " values to unpack (expected " + std::to_string(names.size()) + ", got " +
                              std::to_string(items->items.size()) + ")");
            for (std::size_t i = 0; i < names.size(); ++i) frame.set(names[i], items->items[i]);
        }
    }
};

Value apply_filters(Interp& in, const std::vector<FilterCall>& filters, Value v) {
    for (const FilterCall& f : filters) v = f.apply(in, v);
    return v;
}

std::string capture(Interp& in, const Body& body) {
    std::string buffer;
    Redirect r(in, in.scope, &buffer);
    run(in, body);
    return buffer;
}

void write_value(Interp& in, const Value& v) {
    if (v.is_string())
        in.write(v.str());
    else
        in.write(to_str(in, v));
}

struct TextStmt final : Stmt {
    TextStmt(int line, std::string text) : Stmt(line), text(std::move(text)) {}
    Flow do_exec(Interp& in) const override {
        in.write(text);
        return Flow::Normal;
    }
    const std::string text;
};

struct PrintStmt final : Stmt {
    PrintStmt(int line, ExprPtr expr) : Stmt(line), expr(std::move(expr)) {}
    Flow do_exec(Interp& in) const override {
        write_value(in, expr->eval(in));
        return Flow::Normal;
    }
    const ExprPtr expr;
};

struct IfStmt final : Stmt {
    explicit IfStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override {  // no new scope: a set inside an if is seen after it
        for (const auto& [cond, body] : branches)
            if (truthy(cond->eval(in))) return run(in, body);
        return run(in, otherwise);
    }
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body otherwise;
};

struct ForStmt final : Stmt {
    explicit ForStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override {
        std::shared_ptr<const Array> items = iterate(in, iter->eval(in));
        const std::shared_ptr<Frame> outer = in.scope;
        if (filter) {  // `for x in xs if cond`: loop.index and friends count the kept items only
            std::vector<Value> kept;
            for (const Value& item : items->items) {
                in.iteration();
                auto frame = child_frame(outer);
                target.assign(in, *frame, item);
                Redirect r(in, frame, in.out);
                if (truthy(filter->eval(in))) kept.push_back(item);
            }
            items = Value::list(std::move(kept)).array_ptr();
        }
        if (items->items.empty()) {
            Redirect r(in, child_frame(outer), in.out);
            return run(in, otherwise);  // a break here belongs to an enclosing loop
        }
        auto loop = std::make_shared<LoopState>();
        loop->items = items;
        const Value loop_value(loop);
        // Each iteration gets a fresh scope: a set in the body is not seen by the next iteration
        // nor after the loop (jinja2's scoping).
        for (std::size_t i = 0; i < items->items.size(); ++i) {
            in.iteration();
            loop->index = i;
            auto frame = child_frame(outer);
            target.assign(in, *frame, items->items[i]);
            frame->set("loop", loop_value);
            Redirect r(in, std::move(frame), in.out);
            if (run(in, body) == Flow::Break) break;
        }
        return Flow::Normal;
    }
    Target target;
    ExprPtr iter, filter;
    Body body, otherwise;
};

struct SetStmt final : Stmt {
    SetStmt(int line, Target target, ExprPtr value) : Stmt(line), target(std::move(target)), value(std::move(value)) {}
    Flow do_exec(Interp& in) const override {
        target.assign(in, *in.scope, value->eval(in));
        return Flow::Normal;
    }
    const Target target;
    const ExprPtr value;
};

struct SetBlockStmt final : Stmt {  // {% set x %}...{% endset %}, optionally {% set x | filter %}
    explicit SetBlockStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override {
        target.assign(in, *in.scope, apply_filters(in, filters, Value(capture(in, body))));
        return Flow::Normal;
    }
    Target target;
    std::vector<FilterCall> filters;
    Body body;
};

struct FilterBlockStmt final : Stmt {  // {% filter upper %}...{% endfilter %}
    explicit FilterBlockStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override {
        write_value(in, apply_filters(in, filters, Value(capture(in, body))));
        return Flow::Normal;
    }
    std::vector<FilterCall> filters;
    Body body;
};

struct MacroStmt final : Stmt {
    MacroStmt(int line, std::shared_ptr<const MacroDef> def) : Stmt(line), def(std::move(def)) {}
    Flow do_exec(Interp& in) const override {
        in.scope->set(def->name, make_macro(in, def));
        return Flow::Normal;
    }
    const std::shared_ptr<const MacroDef> def;
};

// {% call(args) macro(...) %}body{% endcall %}: the macro gets `caller`, which renders the body.
struct CallBlockStmt final : Stmt {
    CallBlockStmt(int line, std::unique_ptr<CallExpr> call, std::shared_ptr<const MacroDef> caller)
        : Stmt(line), call(std::move(call)), caller(std::move(caller)) {}
    Flow do_exec(Interp& in) const override {
        const Value f = call->callee->eval(in);
        Args a = call->args.eval(in);
        a.keyword.emplace_back("caller", make_macro(in, caller));
        write_value(in, in.call(f, a));
        return Flow::Normal;
    }
    const std::unique_ptr<CallExpr> call;
    const std::shared_ptr<const MacroDef> caller;
};

// transformers' {% generation %} marks the assistant's text for its assistant-token mask. It is a
// call block there, so its body renders in place but in a scope of its own.
struct GenerationStmt final : Stmt {
    explicit GenerationStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override {
        Redirect r(in, child_frame(in.scope), in.out);
        run(in, body);
        return Flow::Normal;
    }
    Body body;
};

struct LoopControlStmt final : Stmt {  // break / continue
    LoopControlStmt(int line, Flow flow) : Stmt(line), flow(flow) {}
    Flow do_exec(Interp&) const override { return flow; }
    const Flow flow;
};

}  // namespace

Value Interp::call(const Value& callee, Args& args) {
    switch (callee.kind()) {
        case Value::Kind::Macro: return call_macro(*callee.macro(), args);
        case Value::Kind::Function: {
            Value out = callee.function().call(*this, args);
            args.finish(callee.function().name() + "()");
            return out;
        }
        case Value::Kind::Undefined: undefined_error(callee);
        default: throw Failure("'" + type_name(callee) + "' object is not callable");
    }
}

Value Interp::call_macro(const Macro& macro, Args& args) {
    const MacroDef& def = *macro.def;
    iteration();
    check_stack();
    if (call_depth_ >= limits().max_call_depth)
        throw Failure("macro calls nested more than " + std::to_string(limits().max_call_depth) +
                      " deep (runaway recursion?)");
    if (args.positional.size() > def.params.size())
        throw Failure("macro '" + def.name + "' takes not more than " + std::to_string(def.params.size()) +
                      " argument(s)");
    ++call_depth_;
    struct Leave {
        int& depth;
        ~Leave() { --depth; }
    } leave{call_depth_};

    std::string buffer;
    Redirect r(*this, child_frame(macro.closure.lock()), &buffer);
    const std::size_t first_default = def.params.size() - def.defaults.size();
    for (std::size_t i = 0; i < def.params.size(); ++i) {
        // Defaults are evaluated in the macro's scope, so they may use the parameters before them.
        const Value* v = args.get(i, def.params[i]);
        scope->set(def.params[i], v                    ? *v
                                  : i >= first_default ? def.defaults[i - first_default]->eval(*this)
                                                       : Value::undefined("'" + def.params[i] + "' is undefined"));
    }
    if (const Value* c = args.keyword_arg("caller")) scope->set("caller", *c);
    args.finish("macro '" + def.name + "'");
    run(*this, def.body);
    return Value(std::move(buffer));
}

namespace {

// ======================================================================================
// Parser (jinja2's grammar and precedence)
// ======================================================================================

class Parser {
public:
    Parser(const Source& src, std::vector<Token> tokens) : src_(src), t_(std::move(tokens)) {}

    Body parse() { return subparse({}); }

private:
    // An open block, for end-of-template and stray-tag messages.
    struct Open {
        std::string tag;
        int line;
        std::vector<std::string_view> ends;
    };

    class Nest {  // bounds recursion: a pathological template must not overflow the stack
    public:
        explicit Nest(Parser& p) : p_(p) {
            if (++p_.depth_ > kMaxParseDepth)
                p_.fail("the template is nested more than " + std::to_string(kMaxParseDepth) + " levels deep");
        }
        ~Nest() { --p_.depth_; }
        Nest(const Nest&) = delete;
        Nest& operator=(const Nest&) = delete;

    private:
        Parser& p_;
    };

    // ---- token helpers ----
    const Token& cur() const { return t_[i_]; }
    const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
    const Token& next() {
        const Token& t = t_[i_];
        if (i_ + 1 < t_.size()) ++i_;
        return t;
    }
    int line() const { return src_.line(cur().pos); }
    bool is_op(std::string_view op) const { return cur().type == Tok::Op && cur().text == op; }
    bool is_name(std::string_view name) const { return cur().type == Tok::Name && cur().text == name; }
    bool skip_op(std::string_view op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    bool skip_name(std::string_view name) {
        if (!is_name(name)) return false;
        next();
        return true;
    }

    static std::string describe(const Token& t) {
        switch (t.type) {
            case Tok::Text: return "template text";
            case Tok::VarBegin: return "'{{'";
            case Tok::VarEnd: return "end of print statement '}}'";
            case Tok::BlockBegin: return "'{%'";
            case Tok::BlockEnd: return "end of statement '%}'";
            case Tok::Name: return "'" + t.text + "'";
            case Tok::String: return "a string";
            case Tok::Int:
            case Tok::Float: return "number " + t.text;
            case Tok::Op: return "'" + t.text + "'";
            case Tok::End: return "end of template";
        }
        return "token";
    }

    [[noreturn]] void fail(const std::string& message) const { src_.fail(cur().pos, message); }
    [[noreturn]] void fail_expected(const std::string& what) const {
        fail("expected " + what + ", got " + describe(cur()));
    }

    void expect_op(std::string_view op) {
        if (!skip_op(op)) fail_expected("'" + std::string(op) + "'");
    }
    void expect(Tok type, const char* what) {
        if (cur().type != type) fail_expected(what);
        next();
    }
    std::string expect_name() {
        if (cur().type != Tok::Name) fail_expected("a name");
        return next().text;
    }

    static std::string quoted_list(const std::vector<std::string_view>& names) {
        std::string out;
        for (std::size_t i = 0; i < names.size(); ++i)
            out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + ("'" + std::string(names[i]) + "'");
        return out;
    }

    std::string open_block_hint() const {
        if (open_.empty()) return "";
        const Open& o = open_.back();
        return "; the '" + o.tag + "' at line " + std::to_string(o.line) + " expects " + quoted_list(o.ends);
    }

    // ---- statements ----

    Body subparse(const std::vector<std::string_view>& ends) {
        Body body;
        while (true) {
            const Token& t = cur();
            const int ln = line();
            switch (t.type) {
                case Tok::Text:
                    body.push_back(std::make_unique<TextStmt>(ln, t.text));
                    next();
                    break;
                case Tok::VarBegin: {
                    next();
                    ExprPtr e = parse_tuple(true, {}, false);
                    expect(Tok::VarEnd, "end of print statement '}}'");
                    body.push_back(std::make_unique<PrintStmt>(ln, std::move(e)));
                    break;
                }
                case Tok::BlockBegin:
                    next();
                    if (cur().type == Tok::Name && std::find(ends.begin(), ends.end(), cur().text) != ends.end())
                        return body;
                    parse_statement(body);
                    expect(Tok::BlockEnd, "end of statement '%}'");
                    break;
                case Tok::End:
                    if (!ends.empty()) fail("unexpected end of template" + open_block_hint());
                    return body;
                default: fail("unexpected " + describe(t));
            }
        }
    }

    // Parses a body up to one of `ends`; the current token is then that end tag's name, or the
    // token after it with `drop_end`. `in_loop`: whether break/continue may appear.
    Body parse_statements(const std::string& tag, int ln, std::vector<std::string_view> ends, bool drop_end,
                          bool in_loop) {
        Nest nest(*this);
        skip_op(":");
        expect(Tok::BlockEnd, "end of statement '%}'");
        open_.push_back({tag, ln, ends});
        const int saved_loop = loop_depth_;
        loop_depth_ = in_loop ? loop_depth_ + 1 : 0;
        Body body = subparse(ends);
        loop_depth_ = saved_loop;
        open_.pop_back();
        if (drop_end) next();
        return body;
    }

    void parse_statement(Body& out) {
        if (cur().type != Tok::Name) fail_expected("a tag name");
        const std::string tag = cur().text;
        const int ln = line();
        if (tag == "for") return out.push_back(parse_for(ln));
        if (tag == "if") return out.push_back(parse_if(ln));
        if (tag == "set") return out.push_back(parse_set(ln));
        if (tag == "macro") return out.push_back(parse_macro(ln));
        if (tag == "call") return out.push_back(parse_call_block(ln));
        if (tag == "filter") {
            next();
            auto s = std::make_unique<FilterBlockStmt>(ln);
            s->filters = parse_filters(true);
            s->body = parse_statements(tag, ln, {"endfilter"}, true, false);
            return out.push_back(std::move(s));
        }
        if (tag == "print") {
            next();
            return out.push_back(std::make_unique<PrintStmt>(ln, parse_tuple(true, {}, false)));
        }
        if (tag == "break" || tag == "continue") {
            if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
            next();
            return out.push_back(std::make_unique<LoopControlStmt>(ln, tag == "break" ? Flow::Break : Flow::Continue));
        }
        if (tag == "generation") {
            next();
            auto s = std::make_unique<GenerationStmt>(ln);
            s->body = parse_statements(tag, ln, {"endgeneration"}, true, false);
            return out.push_back(std::move(s));
        }
        if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" || tag == "block")
            fail("'" + tag + "' is not supported: a chat template is a single sandboxed template");
        fail("unknown tag '" + tag + "'" + open_block_hint());
    }

    static bool is_constant_name(std::string_view n) {
        return n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None";
    }

    std::string assignable_name() {
        if (cur().type == Tok::Name && is_constant_name(cur().text)) fail("cannot assign to '" + cur().text + "'");
        return expect_name();
    }

    Target parse_target(bool allow_namespace) {
        Target t;
        if (allow_namespace && cur().type == Tok::Name && peek().type == Tok::Op && peek().text == ".") {
            t.names.push_back(expect_name());
            next();
            t.attr = expect_name();
            return t;
        }
        const bool parens = skip_op("(");
        t.names.push_back(assignable_name());
        while (skip_op(",")) {
            t.unpack = true;
            if (cur().type != Tok::Name || is_name("in")) break;  // trailing comma
            t.names.push_back(assignable_name());
        }
        if (parens) expect_op(")");
        return t;
    }

    std::unique_ptr<Stmt> parse_for(int ln) {
        next();
        auto s = std::make_unique<ForStmt>(ln);
        s->target = parse_target(false);
        if (!skip_name("in")) fail_expected("'in'");
        s->iter = parse_tuple(false, "recursive", false);
        if (skip_name("if")) s->filter = parse_expression(true);
        if (is_name("recursive")) fail("recursive loops are not supported");
        s->body = parse_statements("for", ln, {"endfor", "else"}, false, true);
        if (next().text == "else") s->otherwise = parse_statements("for", ln, {"endfor"}, true, loop_depth_ > 0);
        return s;
    }

    std::unique_ptr<Stmt> parse_if(int ln) {
        next();
        auto s = std::make_unique<IfStmt>(ln);
        const bool in_loop = loop_depth_ > 0;
        while (true) {
            ExprPtr cond = parse_tuple(false, {}, false);
            Body body = parse_statements("if", ln, {"elif", "else", "endif"}, false, in_loop);
            s->branches.emplace_back(std::move(cond), std::move(body));
            const std::string end = next().text;
            if (end == "elif") continue;
            if (end == "else") s->otherwise = parse_statements("if", ln, {"endif"}, true, in_loop);
            return s;
        }
    }

    std::unique_ptr<Stmt> parse_set(int ln) {
        next();
        Target target = parse_target(true);
        if (skip_op("=")) return std::make_unique<SetStmt>(ln, std::move(target), parse_tuple(true, {}, false));
        auto s = std::make_unique<SetBlockStmt>(ln);
        s->target = std::move(target);
        s->filters = parse_filters(false);
        s->body = parse_statements("set", ln, {"endset"}, true, false);
        return s;
    }

    void parse_signature(MacroDef& def) {
        expect_op("(");
        while (!is_op(")")) {
            if (!def.params.empty()) expect_op(",");
            def.params.push_back(assignable_name());
            if (skip_op("="))
                def.defaults.push_back(parse_expression(true));
            else if (!def.defaults.empty())
                fail("non-default argument follows default argument");
        }
        expect_op(")");
    }

    std::unique_ptr<Stmt> parse_macro(int ln) {
        next();
        auto def = std::make_shared<MacroDef>();
        def->name = assignable_name();
        parse_signature(*def);
        def->body = parse_statements("macro", ln, {"endmacro"}, true, false);
        return std::make_unique<MacroStmt>(ln, std::move(def));
    }

    std::unique_ptr<Stmt> parse_call_block(int ln) {
        next();
        auto caller = std::make_shared<MacroDef>();
        caller->name = "caller";
        if (is_op("(")) parse_signature(*caller);
        ExprPtr e = parse_expression(true);
        auto* call = dynamic_cast<CallExpr*>(e.get());
        if (call == nullptr) fail("expected a macro call after 'call'");
        e.release();
        std::unique_ptr<CallExpr> owned(call);
        caller->body = parse_statements("call", ln, {"endcall"}, true, false);
        return std::make_unique<CallBlockStmt>(ln, std::move(owned), std::move(caller));
    }

    // ---- expressions ----

    bool is_tuple_end(std::string_view extra_end) const {
        return cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")") ||
               (!extra_end.empty() && is_name(extra_end));
    }

    // Comma-separated expressions: a tuple when there is a comma, else the single expression.
    ExprPtr parse_tuple(bool condexpr, std::string_view extra_end, bool explicit_parens) {
        const int ln = line();
        std::vector<ExprPtr> items;
        bool tuple = false;
        while (true) {
            if (!items.empty()) expect_op(",");
            if (is_tuple_end(extra_end)) break;
            items.push_back(parse_expression(condexpr));
            if (!is_op(",")) break;
            tuple = true;
        }
        if (!tuple) {
            if (!items.empty()) return std::move(items[0]);
            if (!explicit_parens) fail_expected("an expression");
        }
        return std::make_unique<ListLiteral>(ln, std::move(items), true);
    }

    ExprPtr parse_expression(bool condexpr) {
        Nest nest(*this);
        return condexpr ? parse_condexpr() : parse_or();
    }

    ExprPtr parse_condexpr() {
        int ln = line();
        ExprPtr e = parse_or();
        while (skip_name("if")) {
            ExprPtr cond = parse_or();
            ExprPtr otherwise = skip_name("else") ? parse_expression(true) : nullptr;
            e = std::make_unique<CondExpr>(ln, std::move(cond), std::move(e), std::move(otherwise));
            ln = line();
        }
        return e;
    }

    ExprPtr parse_or() {
        const int ln = line();
        ExprPtr e = parse_and();
        while (skip_name("or")) e = std::make_unique<LogicExpr>(ln, false, std::move(e), parse_and());
        return e;
    }

    ExprPtr parse_and() {
        const int ln = line();
        ExprPtr e = parse_not();
        while (skip_name("and")) e = std::make_unique<LogicExpr>(ln, true, std::move(e), parse_not());
        return e;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            Nest nest(*this);
            const int ln = line();
            next();
            return std::make_unique<NotExpr>(ln, parse_not());
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        const int ln = line();
        ExprPtr first = parse_math1();
        std::vector<std::pair<CompareOp, ExprPtr>> rest;
        static const std::pair<std::string_view, CompareOp> ops[] = {{"==", CompareOp::Eq}, {"!=", CompareOp::Ne},
                                                                     {"<", CompareOp::Lt},  {"<=", CompareOp::Le},
                                                                     {">", CompareOp::Gt},  {">=", CompareOp::Ge}};
        while (true) {
            const auto op = std::find_if(std::begin(ops), std::end(ops), [&](const auto& o) { return is_op(o.first); });
            if (op != std::end(ops)) {
                next();
                rest.emplace_back(op->second, parse_math1());
            } else if (skip_name("in")) {
                rest.emplace_back(CompareOp::In, parse_math1());
            } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
                next();
                next();
                rest.emplace_back(CompareOp::NotIn, parse_math1());
            } else {
                break;
            }
        }
        if (rest.empty()) return first;
        return std::make_unique<CompareExpr>(ln, std::move(first), std::move(rest));
    }

    ExprPtr parse_math1() {
        const int ln = line();
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            const BinaryOp op = next().text == "+" ? BinaryOp::Add : BinaryOp::Sub;
            e = std::make_unique<BinaryExpr>(ln, op, std::move(e), parse_concat());
        }
        return e;
    }

    ExprPtr parse_concat() {
        const int ln = line();
        std::vector<ExprPtr> parts;
        parts.push_back(parse_math2());
        while (skip_op("~")) parts.push_back(parse_math2());
        if (parts.size() == 1) return std::move(parts[0]);
        return std::make_unique<ConcatExpr>(ln, std::move(parts));
    }

    ExprPtr parse_math2() {
        const int ln = line();
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const std::string op = next().text;
            const BinaryOp b = op == "*"    ? BinaryOp::Mul
                               : op == "/"  ? BinaryOp::Div
                               : op == "//" ? BinaryOp::FloorDiv
                                            : BinaryOp::Mod;
            e = std::make_unique<BinaryExpr>(ln, b, std::move(e), parse_pow());
        }
        return e;
    }

    ExprPtr parse_pow() {  // left-associative in jinja2: 2 ** 3 ** 2 == 64
        const int ln = line();
        ExprPtr e = parse_unary(true);
        while (skip_op("**")) e = std::make_unique<BinaryExpr>(ln, BinaryOp::Pow, std::move(e), parse_unary(true));
        return e;
    }

    // Unary minus binds tighter than ** and filters apply to the whole unary expression, as in
    // jinja2: -2 ** 2 == 4, -x | abs == abs(-x).
    ExprPtr parse_unary(bool with_filter) {
        Nest nest(*this);
        const int ln = line();
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            const bool minus = next().text == "-";
            e = std::make_unique<UnaryExpr>(ln, parse_unary(false), minus);
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        const int ln = line();
        switch (t.type) {
            case Tok::Name: {
                const std::string name = next().text;
                if (name == "true" || name == "True") return std::make_unique<Literal>(ln, Value(true));
                if (name == "false" || name == "False") return std::make_unique<Literal>(ln, Value(false));
                if (name == "none" || name == "None") return std::make_unique<Literal>(ln, Value::none());
                return std::make_unique<NameRef>(ln, name);
            }
            case Tok::String: {  // adjacent literals concatenate: "a" "b"
                std::string s;
                while (cur().type == Tok::String) s += next().text;
                return std::make_unique<Literal>(ln, Value(std::move(s)));
            }
            case Tok::Int: return std::make_unique<Literal>(ln, Value(next().int_value));
            case Tok::Float: return std::make_unique<Literal>(ln, Value(next().float_value));
            case Tok::Op:
                if (skip_op("(")) {
                    ExprPtr e = parse_tuple(true, {}, true);
                    expect_op(")");
                    return e;
                }
                if (skip_op("[")) {
                    std::vector<ExprPtr> items;
                    while (!is_op("]")) {
                        if (!items.empty()) expect_op(",");
                        if (is_op("]")) break;
                        items.push_back(parse_expression(true));
                    }
                    expect_op("]");
                    return std::make_unique<ListLiteral>(ln, std::move(items), false);
                }
                if (skip_op("{")) {
                    std::vector<std::pair<ExprPtr, ExprPtr>> items;
                    while (!is_op("}")) {
                        if (!items.empty()) expect_op(",");
                        if (is_op("}")) break;
                        ExprPtr k = parse_expression(true);
                        expect_op(":");
                        items.emplace_back(std::move(k), parse_expression(true));
                    }
                    expect_op("}");
                    return std::make_unique<DictLiteral>(ln, std::move(items));
                }
                break;
            default: break;
        }
        fail("unexpected " + describe(t));
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            if (is_op(".") || is_op("["))
                e = parse_subscript(std::move(e));
            else if (is_op("("))
                e = parse_call(std::move(e));
            else
                return e;
        }
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            const int ln = line();
            if (skip_op("|"))
                e = std::make_unique<FilterExpr>(ln, std::move(e), parse_filter());
            else if (is_name("is"))
                e = parse_test(std::move(e));
            else if (is_op("("))
                e = parse_call(std::move(e));
            else
                return e;
        }
    }

    ExprPtr parse_subscript(ExprPtr obj) {
        const int ln = line();
        if (skip_op(".")) {
            if (cur().type == Tok::Name) return std::make_unique<AttrRef>(ln, std::move(obj), next().text);
            if (cur().type == Tok::Int)
                return std::make_unique<ItemRef>(ln, std::move(obj),
                                                 std::make_unique<Literal>(ln, Value(next().int_value)));
            fail_expected("a name or number after '.'");
        }
        expect_op("[");
        // obj[key], obj[start:stop:step]; a tuple of keys (obj[a, b]) is an item lookup by tuple.
        ExprPtr start;
        if (!is_op(":")) {
            start = parse_expression(true);
            if (is_op(",")) {
                std::vector<ExprPtr> keys;
                keys.push_back(std::move(start));
                while (skip_op(",") && !is_op("]")) keys.push_back(parse_expression(true));
                expect_op("]");
                return std::make_unique<ItemRef>(ln, std::move(obj),
                                                 std::make_unique<ListLiteral>(ln, std::move(keys), true));
            }
            if (skip_op("]")) return std::make_unique<ItemRef>(ln, std::move(obj), std::move(start));
        }
        expect_op(":");
        ExprPtr stop, step;
        if (!is_op(":") && !is_op("]")) stop = parse_expression(true);
        if (skip_op(":") && !is_op("]")) step = parse_expression(true);
        expect_op("]");
        return std::make_unique<SliceRef>(ln, std::move(obj), std::move(start), std::move(stop), std::move(step));
    }

    CallArgs parse_call_args() {
        expect_op("(");
        CallArgs args;
        bool need_comma = false;
        while (!is_op(")")) {
            if (need_comma) {
                expect_op(",");
                if (is_op(")")) break;
            }
            if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
            if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
                std::string key = next().text;
                next();
                args.keyword.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!args.keyword.empty()) fail("positional argument follows keyword argument");
                args.positional.push_back(parse_expression(true));
            }
            need_comma = true;
        }
        expect_op(")");
        return args;
    }

    ExprPtr parse_call(ExprPtr callee) {
        const int ln = line();
        return std::make_unique<CallExpr>(ln, std::move(callee), parse_call_args());
    }

    std::string dotted_name() {
        std::string name = expect_name();
        while (skip_op(".")) {
            name += '.';
            name += expect_name();
        }
        return name;
    }

    FilterCall parse_filter() {
        FilterCall f;
        f.line = line();
        f.name = dotted_name();
        f.fn = find_filter(f.name);
        if (is_op("(")) f.args = parse_call_args();
        return f;
    }

    // `| f | g` after {% set x %} and {% filter %}; the latter starts without the first '|'.
    std::vector<FilterCall> parse_filters(bool start_inline) {
        std::vector<FilterCall> out;
        while (start_inline || skip_op("|")) {
            start_inline = false;
            out.push_back(parse_filter());
        }
        return out;
    }

    ExprPtr parse_test(ExprPtr input) {
        const int ln = line();
        next();  // 'is'
        const bool negated = skip_name("not");
        std::string name = dotted_name();
        CallArgs args;
        if (is_op("(")) {
            args = parse_call_args();
        } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                    cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
            // One argument without parentheses: `x is divisibleby 3`, `x is sameas false`.
            if (is_name("is")) fail("You cannot chain multiple tests with is");
            args.positional.push_back(parse_postfix(parse_primary()));
        }
        ExprPtr e = std::make_unique<TestExpr>(ln, std::move(input), std::move(name), std::move(args));
        return negated ? std::make_unique<NotExpr>(ln, std::move(e)) : std::move(e);
    }

    const Source& src_;
    std::vector<Token> t_;
    std::size_t i_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;  // enclosing for bodies (reset inside macros and captured blocks)
    std::vector<Open> open_;
};

}  // namespace

// ======================================================================================
// Template
// ======================================================================================

Template::Template(std::string_view source) {
    const Source src(source);
    body_ = Parser(src, Lexer(src).run()).parse();
}

Template::~Template() = default;

std::string Template::render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const {
    if (!context.is_object() && !context.is_null())
        throw TemplateError("the chat template context must be a JSON object");
    const char stack_base = 0;
    Interp in(limits, &stack_base);
    std::string out;
    try {
        auto root = std::make_shared<Frame>();
        if (context.is_object())  // null: no variables
            for (const auto& [key, value] : context.items()) root->vars.emplace_back(key, from_json(value));
        in.scope = std::move(root);
        in.out = &out;
        run(in, body_);
    } catch (const Failure& e) {
        throw TemplateError(in.line > 0 ? "chat template error at line " + std::to_string(in.line) + ": " + e.what()
                                        : std::string("chat template error: ") + e.what());
    }
    return out;
}

}  // namespace wp::jinja

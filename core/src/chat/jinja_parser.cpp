// The chat-template parser: jinja2's grammar and operator precedence, from tokens to the tree of
// jinja_ast.h. Syntax errors name the line and column, and for an unclosed block the tag that
// opened it.
#include <algorithm>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace wp::jinja {

namespace {

constexpr int kMaxParseDepth = 100;  // nested blocks and expressions
// Levels of one expression's tree, which flat chains (a + b + ..., x | f | g ...) build without
// nesting; evaluating and freeing the tree recurse that deep. Real templates stay under 20.
constexpr int kMaxExprHeight = 256;

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

    // Every loop that grows a tree and every recursive rule passes its result through here, so no
    // tree taller than the bound is ever built.
    ExprPtr bounded(ExprPtr e) const {
        if (e->height > kMaxExprHeight)
            fail("the expression is nested more than " + std::to_string(kMaxExprHeight) +
                 " levels deep (operators, filters, calls or brackets)");
        return e;
    }

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
        return bounded(condexpr ? parse_condexpr() : parse_or());
    }

    ExprPtr parse_condexpr() {
        int ln = line();
        ExprPtr e = parse_or();
        while (skip_name("if")) {
            ExprPtr cond = parse_or();
            ExprPtr otherwise = skip_name("else") ? parse_expression(true) : nullptr;
            e = bounded(std::make_unique<CondExpr>(ln, std::move(cond), std::move(e), std::move(otherwise)));
            ln = line();
        }
        return e;
    }

    ExprPtr parse_or() {
        const int ln = line();
        ExprPtr e = parse_and();
        while (skip_name("or")) e = bounded(std::make_unique<LogicExpr>(ln, false, std::move(e), parse_and()));
        return e;
    }

    ExprPtr parse_and() {
        const int ln = line();
        ExprPtr e = parse_not();
        while (skip_name("and")) e = bounded(std::make_unique<LogicExpr>(ln, true, std::move(e), parse_not()));
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
            e = bounded(std::make_unique<BinaryExpr>(ln, op, std::move(e), parse_concat()));
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
            e = bounded(std::make_unique<BinaryExpr>(ln, b, std::move(e), parse_pow()));
        }
        return e;
    }

    ExprPtr parse_pow() {  // left-associative in jinja2: 2 ** 3 ** 2 == 64
        const int ln = line();
        ExprPtr e = parse_unary(true);
        while (skip_op("**"))
            e = bounded(std::make_unique<BinaryExpr>(ln, BinaryOp::Pow, std::move(e), parse_unary(true)));
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
        return bounded(with_filter ? parse_filter_expr(std::move(e)) : std::move(e));
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
                e = bounded(parse_subscript(std::move(e)));
            else if (is_op("("))
                e = bounded(parse_call(std::move(e)));
            else
                return e;
        }
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            const int ln = line();
            if (skip_op("|"))
                e = bounded(std::make_unique<FilterExpr>(ln, std::move(e), parse_filter()));
            else if (is_name("is"))
                e = bounded(parse_test(std::move(e)));
            else if (is_op("("))
                e = bounded(parse_call(std::move(e)));
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

Template::Template(std::string_view source) {
    const Source src(source);
    body_ = Parser(src, tokenize(src)).parse();
}

Template::~Template() = default;

}  // namespace wp::jinja

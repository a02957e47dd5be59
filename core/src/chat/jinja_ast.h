// The parsed form of a chat template: expressions (Expr) and statements (Stmt) as jinja2's grammar
// has them. The parser (jinja_parser.cpp) builds the tree; the evaluator (jinja_eval.cpp) defines
// what each node does (do_eval, do_exec). A tree is not modified once built, so a parsed template
// may render on several threads at once.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_builtins.h"
#include "chat/jinja_value.h"

namespace wp::jinja {

class Interp;  // the state of one render (jinja_eval.cpp)
struct Frame;  // one scope of variables (jinja_eval.cpp)

// How a statement ends: break and continue unwind to their loop.
enum class Flow { Normal, Break, Continue };

// ---- Expressions ----

struct Expr {
    // `children`: the height of the tallest subexpression (0 for a leaf).
    Expr(int line, int children) : line(line), height(children + 1) {}
    virtual ~Expr() = default;
    Value eval(Interp& in) const;  // notes the line (for error messages) and counts a step
    const int line;
    // Levels of the tree from here down: evaluation (and destruction) recurses this deep, so the
    // parser bounds it, long flat chains such as a + b + ... and x | f | g | ... included.
    const int height;

private:
    virtual Value do_eval(Interp& in) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

inline int height_of(const ExprPtr& e) { return e ? e->height : 0; }
template <class... More>
int height_of(const ExprPtr& e, const More&... more) {
    return std::max(height_of(e), height_of(more...));
}
inline int height_of(const std::vector<ExprPtr>& es) {
    int h = 0;
    for (const auto& e : es) h = std::max(h, height_of(e));
    return h;
}

struct CallArgs {
    std::vector<ExprPtr> positional;
    std::vector<std::pair<std::string, ExprPtr>> keyword;

    Args eval(Interp& in) const;
    int height() const {
        int h = height_of(positional);
        for (const auto& [name, e] : keyword) h = std::max(h, height_of(e));
        return h;
    }
};

struct Literal final : Expr {
    Literal(int line, Value v) : Expr(line, 0), value(std::move(v)) {}
    Value do_eval(Interp& in) const override;
    const Value value;
};

struct ListLiteral final : Expr {  // [a, b] and tuples (a, b)
    ListLiteral(int line, std::vector<ExprPtr> items, bool tuple)
        : Expr(line, height_of(items)), items(std::move(items)), tuple(tuple) {}
    Value do_eval(Interp& in) const override;
    const std::vector<ExprPtr> items;
    const bool tuple;
};

struct DictLiteral final : Expr {
    DictLiteral(int line, std::vector<std::pair<ExprPtr, ExprPtr>> items)
        : Expr(line, height_of_pairs(items)), items(std::move(items)) {}
    Value do_eval(Interp& in) const override;
    const std::vector<std::pair<ExprPtr, ExprPtr>> items;

private:
    static int height_of_pairs(const std::vector<std::pair<ExprPtr, ExprPtr>>& items) {
        int h = 0;
        for (const auto& [k, v] : items) h = std::max(h, height_of(k, v));
        return h;
    }
};

struct NameRef final : Expr {
    NameRef(int line, std::string name) : Expr(line, 0), name(std::move(name)) {}
    Value do_eval(Interp& in) const override;
    const std::string name;
};

struct AttrRef final : Expr {  // obj.name
    AttrRef(int line, ExprPtr obj, std::string name)
        : Expr(line, height_of(obj)), obj(std::move(obj)), name(std::move(name)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr obj;
    const std::string name;
};

struct ItemRef final : Expr {  // obj[key]
    ItemRef(int line, ExprPtr obj, ExprPtr key)
        : Expr(line, height_of(obj, key)), obj(std::move(obj)), key(std::move(key)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr obj, key;
};

struct SliceRef final : Expr {  // obj[start:stop:step], each part optional
    SliceRef(int line, ExprPtr obj, ExprPtr start, ExprPtr stop, ExprPtr step)
        : Expr(line, height_of(obj, start, stop, step)),
          obj(std::move(obj)),
          start(std::move(start)),
          stop(std::move(stop)),
          step(std::move(step)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr obj, start, stop, step;
};

struct CallExpr final : Expr {
    CallExpr(int line, ExprPtr callee, CallArgs args)
        : Expr(line, std::max(height_of(callee), args.height())), callee(std::move(callee)), args(std::move(args)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr callee;
    const CallArgs args;
};

struct FilterCall {
    int line;
    std::string name;
    FilterFn fn;  // nullptr: unknown, reported when used (as jinja2 does for filters in untaken branches)
    CallArgs args;

    Value apply(Interp& in, const Value& input) const;
};

struct FilterExpr final : Expr {  // input | filter
    FilterExpr(int line, ExprPtr input, FilterCall filter)
        : Expr(line, std::max(height_of(input), filter.args.height())),
          input(std::move(input)),
          filter(std::move(filter)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr input;
    const FilterCall filter;
};

struct TestExpr final : Expr {  // input is test(args)
    TestExpr(int line, ExprPtr input, std::string name, CallArgs args)
        : Expr(line, std::max(height_of(input), args.height())),
          input(std::move(input)),
          name(std::move(name)),
          fn(find_test(this->name)),
          args(std::move(args)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr input;
    const std::string name;
    const TestFn fn;  // nullptr: unknown, reported when used
    const CallArgs args;
};

struct NotExpr final : Expr {
    NotExpr(int line, ExprPtr operand) : Expr(line, height_of(operand)), operand(std::move(operand)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr operand;
};

struct UnaryExpr final : Expr {  // -x, +x
    UnaryExpr(int line, ExprPtr operand, bool minus)
        : Expr(line, height_of(operand)), operand(std::move(operand)), minus(minus) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr operand;
    const bool minus;
};

struct BinaryExpr final : Expr {
    BinaryExpr(int line, BinaryOp op, ExprPtr left, ExprPtr right)
        : Expr(line, height_of(left, right)), op(op), left(std::move(left)), right(std::move(right)) {}
    Value do_eval(Interp& in) const override;
    const BinaryOp op;
    const ExprPtr left, right;
};

// `and` / `or` return an operand, as in Python ("" or "x" is "x").
struct LogicExpr final : Expr {
    LogicExpr(int line, bool is_and, ExprPtr left, ExprPtr right)
        : Expr(line, height_of(left, right)), is_and(is_and), left(std::move(left)), right(std::move(right)) {}
    Value do_eval(Interp& in) const override;
    const bool is_and;
    const ExprPtr left, right;
};

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

// Python chains comparisons: a < b < c is (a < b) and (b < c), b evaluated once.
struct CompareExpr final : Expr {
    CompareExpr(int line, ExprPtr first, std::vector<std::pair<CompareOp, ExprPtr>> rest)
        : Expr(line, std::max(height_of(first), height_of_rest(rest))),
          first(std::move(first)),
          rest(std::move(rest)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr first;
    const std::vector<std::pair<CompareOp, ExprPtr>> rest;

private:
    static int height_of_rest(const std::vector<std::pair<CompareOp, ExprPtr>>& rest) {
        int h = 0;
        for (const auto& [op, e] : rest) h = std::max(h, height_of(e));
        return h;
    }
};

struct ConcatExpr final : Expr {  // a ~ b: string concatenation of str() values
    ConcatExpr(int line, std::vector<ExprPtr> parts) : Expr(line, height_of(parts)), parts(std::move(parts)) {}
    Value do_eval(Interp& in) const override;
    const std::vector<ExprPtr> parts;
};

struct CondExpr final : Expr {  // `a if cond else b`; without else, undefined when false
    CondExpr(int line, ExprPtr cond, ExprPtr then, ExprPtr otherwise)
        : Expr(line, height_of(cond, then, otherwise)),
          cond(std::move(cond)),
          then(std::move(then)),
          otherwise(std::move(otherwise)) {}
    Value do_eval(Interp& in) const override;
    const ExprPtr cond, then, otherwise;
};

// ---- Statements ----

struct Stmt {
    explicit Stmt(int line) : line(line) {}
    virtual ~Stmt() = default;
    Flow exec(Interp& in) const;  // notes the line (for error messages) and counts a step
    const int line;

private:
    virtual Flow do_exec(Interp& in) const = 0;
};

using Body = std::vector<std::unique_ptr<Stmt>>;

struct MacroDef {
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // for the last defaults.size() params
    Body body;
};

// What `set` and `for` assign to: a name, names to unpack, or a namespace attribute (ns.attr).
struct Target {
    std::vector<std::string> names;
    bool unpack = false;
    std::string attr;  // non-empty: names[0] is a namespace and this its attribute

    void assign(Interp& in, Frame& frame, const Value& v) const;
};

struct TextStmt final : Stmt {
    TextStmt(int line, std::string text) : Stmt(line), text(std::move(text)) {}
    Flow do_exec(Interp& in) const override;
    const std::string text;
};

struct PrintStmt final : Stmt {  // {{ expr }} and {% print expr %}
    PrintStmt(int line, ExprPtr expr) : Stmt(line), expr(std::move(expr)) {}
    Flow do_exec(Interp& in) const override;
    const ExprPtr expr;
};

struct IfStmt final : Stmt {
    explicit IfStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override;
    std::vector<std::pair<ExprPtr, Body>> branches;  // if and elif
    Body otherwise;
};

struct ForStmt final : Stmt {
    explicit ForStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override;
    Target target;
    ExprPtr iter, filter;  // filter: `for x in xs if cond`, may be null
    Body body, otherwise;  // otherwise: the else block, rendered when nothing was iterated
};

struct SetStmt final : Stmt {
    SetStmt(int line, Target target, ExprPtr value) : Stmt(line), target(std::move(target)), value(std::move(value)) {}
    Flow do_exec(Interp& in) const override;
    const Target target;
    const ExprPtr value;
};

struct SetBlockStmt final : Stmt {  // {% set x %}...{% endset %}, optionally {% set x | filter %}
    explicit SetBlockStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override;
    Target target;
    std::vector<FilterCall> filters;
    Body body;
};

struct FilterBlockStmt final : Stmt {  // {% filter upper %}...{% endfilter %}
    explicit FilterBlockStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override;
    std::vector<FilterCall> filters;
    Body body;
};

struct MacroStmt final : Stmt {
    MacroStmt(int line, std::shared_ptr<const MacroDef> def) : Stmt(line), def(std::move(def)) {}
    Flow do_exec(Interp& in) const override;
    const std::shared_ptr<const MacroDef> def;
};

// {% call(args) macro(...) %}body{% endcall %}: the macro gets `caller`, which renders the body.
struct CallBlockStmt final : Stmt {
    CallBlockStmt(int line, std::unique_ptr<CallExpr> call, std::shared_ptr<const MacroDef> caller)
        : Stmt(line), call(std::move(call)), caller(std::move(caller)) {}
    Flow do_exec(Interp& in) const override;
    const std::unique_ptr<CallExpr> call;
    const std::shared_ptr<const MacroDef> caller;
};

// transformers' {% generation %} marks the assistant's text for its assistant-token mask. It is a
// call block there, so its body renders in place but in a scope of its own.
struct GenerationStmt final : Stmt {
    explicit GenerationStmt(int line) : Stmt(line) {}
    Flow do_exec(Interp& in) const override;
    Body body;
};

struct LoopControlStmt final : Stmt {  // break / continue
    LoopControlStmt(int line, Flow flow) : Stmt(line), flow(flow) {}
    Flow do_exec(Interp& in) const override;
    const Flow flow;
};

}  // namespace wp::jinja

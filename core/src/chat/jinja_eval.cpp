// The chat-template evaluator: what each node of the parsed tree does, with jinja2's scoping (a
// loop iteration, a macro call and a captured block each get their own scope; if does not), its
// macros and its loop controls, within the render's budget (Runtime).
#include <algorithm>
#include <cstdint>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_json.h"

namespace wp::jinja {

namespace {

constexpr std::size_t kStackBudget = 512 * 1024;  // C++ stack a render may use (macro recursion)

}  // namespace

// ---- Evaluator state ----

// Variables are few in real templates, so a scope is a list searched in order; the search is
// counted in the step budget, so that thousands of names cannot make a render quadratic unbounded.
struct Frame {
    std::shared_ptr<Frame> parent;
    Entries vars;

    const Value* find(Runtime& rt, std::string_view name) const {
        rt.items(vars.size());
        for (const auto& [k, v] : vars)
            if (k == name) return &v;
        return nullptr;
    }
    void set(Runtime& rt, const std::string& name, Value v) {
        rt.items(vars.size());
        for (auto& [k, old] : vars)
            if (k == name) {
                old = std::move(v);
                return;
            }
        vars.emplace_back(name, std::move(v));
    }
};

class Interp : public Runtime {
public:
    Interp(const TemplateLimits& limits, const void* stack_base) : Runtime(limits), stack_base_(stack_base) {}

    Value lookup(const std::string& name) {
        for (const Frame* f = scope.get(); f != nullptr; f = f->parent.get())
            if (const Value* v = f->find(*this, name)) return *v;
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
        // Frame addresses, not a local's: AddressSanitizer may move addressed locals to a heap "fake stack".
        const auto used = reinterpret_cast<std::uintptr_t>(stack_base_) -
                          reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
        if (used > kStackBudget && used < SIZE_MAX / 2)  // stacks grow down; the second test guards the other way
            throw Failure("the template is nested too deeply");
    }

    const void* stack_base_;
    int call_depth_ = 0;
};

struct Macro {
    std::shared_ptr<const MacroDef> def;
    std::weak_ptr<Frame> closure;  // the scope it was defined in (kept alive by Interp::closures)
};

std::string macro_name(const Macro& m) { return m.def->name; }

namespace {

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

Flow run(Interp& in, const Body& body) {
    for (const auto& s : body)
        if (const Flow f = s->exec(in); f != Flow::Normal) return f;
    return Flow::Normal;
}

Value make_macro(Interp& in, std::shared_ptr<const MacroDef> def) {
    auto m = std::make_shared<Macro>();
    m->def = std::move(def);
    m->closure = in.scope;
    in.closures.push_back(in.scope);
    return Value(std::shared_ptr<const Macro>(std::move(m)));
}

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

bool holds(Interp& in, CompareOp op, const Value& a, const Value& b) {
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

}  // namespace

// ---- Expressions ----

Value Expr::eval(Interp& in) const {
    in.line = line;
    in.step();
    return do_eval(in);
}

Args CallArgs::eval(Interp& in) const {
    Args a;
    for (const auto& e : positional) a.positional.push_back(e->eval(in));
    for (const auto& [k, e] : keyword) a.keyword.emplace_back(k, e->eval(in));
    return a;
}

Value Literal::do_eval(Interp&) const { return value; }

Value ListLiteral::do_eval(Interp& in) const {
    in.new_items(items.size());
    std::vector<Value> out;
    out.reserve(items.size());
    for (const auto& e : items) out.push_back(e->eval(in));
    return Value::list(std::move(out), tuple);
}

Value DictLiteral::do_eval(Interp& in) const {
    in.new_items(items.size());
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

Value NameRef::do_eval(Interp& in) const { return in.lookup(name); }

Value AttrRef::do_eval(Interp& in) const { return get_attr(in, obj->eval(in), name); }

Value ItemRef::do_eval(Interp& in) const {
    const Value o = obj->eval(in);
    return get_item(in, o, key->eval(in));
}

Value SliceRef::do_eval(Interp& in) const {
    const Value o = obj->eval(in);
    auto part = [&](const ExprPtr& e) { return e ? e->eval(in) : Value::none(); };
    const Value a = part(start), b = part(stop), c = part(step);
    return get_slice(in, o, a, b, c);
}

Value CallExpr::do_eval(Interp& in) const {
    const Value f = callee->eval(in);
    Args a = args.eval(in);
    return in.call(f, a);
}

Value FilterCall::apply(Interp& in, const Value& input) const {
    Args a = args.eval(in);
    in.line = line;
    if (fn == nullptr) throw Failure("unknown filter '" + name + "'");
    Value out = fn(in, input, a);
    a.finish("filter '" + name + "'");
    return out;
}

Value FilterExpr::do_eval(Interp& in) const { return filter.apply(in, input->eval(in)); }

Value TestExpr::do_eval(Interp& in) const {
    const Value v = input->eval(in);
    Args a = args.eval(in);
    in.line = line;
    if (fn == nullptr) throw Failure("unknown test '" + name + "'");
    const bool result = fn(in, v, a);
    a.finish("test '" + name + "'");
    return Value(result);
}

Value NotExpr::do_eval(Interp& in) const { return Value(!truthy(operand->eval(in))); }

Value UnaryExpr::do_eval(Interp& in) const {
    const Value v = operand->eval(in);
    if (minus) return negate(v);
    if (v.is_undefined()) undefined_error(v);
    if (!v.is_number()) throw Failure("bad operand type for unary +: '" + type_name(v) + "'");
    return v.is(Value::Kind::Bool) ? Value(v.as_int()) : v;
}

Value BinaryExpr::do_eval(Interp& in) const {
    const Value a = left->eval(in);
    const Value b = right->eval(in);
    return binary_op(in, op, a, b);
}

Value LogicExpr::do_eval(Interp& in) const {
    Value a = left->eval(in);
    if (truthy(a) != is_and) return a;
    return right->eval(in);
}

Value CompareExpr::do_eval(Interp& in) const {
    Value left = first->eval(in);
    for (const auto& [op, e] : rest) {
        Value right = e->eval(in);
        if (!holds(in, op, left, right)) return Value(false);
        left = std::move(right);
    }
    return Value(true);
}

Value ConcatExpr::do_eval(Interp& in) const {
    std::string out;
    for (const auto& p : parts) {
        const std::string piece = to_str(in, p->eval(in));
        out += piece;
        in.grew(out, piece.size());
    }
    return Value(std::move(out));
}

Value CondExpr::do_eval(Interp& in) const {
    if (truthy(cond->eval(in))) return then->eval(in);
    if (otherwise) return otherwise->eval(in);
    return Value::undefined("the inline if-expression on line " + std::to_string(line) +
                            " evaluated to false and no else section was defined");
}

// ---- Statements ----

Flow Stmt::exec(Interp& in) const {
    in.line = line;
    in.step();
    return do_exec(in);
}

void Target::assign(Interp& in, Frame& frame, const Value& v) const {
    if (!attr.empty()) {
        const Value ns = in.lookup(names[0]);
        if (!ns.is(Value::Kind::Namespace))
            throw Failure("cannot assign attribute on non-namespace object '" + names[0] + "'");
        set_namespace_attr(in, ns.ns(), attr, v);
    } else if (!unpack) {
        frame.set(in, names[0], v);
    } else {
        const auto items = iterate(in, v);
        if (items->items.size() != names.size())
            throw Failure(std::string(items->items.size() > names.size() ? "too many" : "not enough") +
                          " values to unpack (expected " + std::to_string(names.size()) + ", got " +
                          std::to_string(items->items.size()) + ")");
        for (std::size_t i = 0; i < names.size(); ++i) frame.set(in, names[i], items->items[i]);
    }
}

Flow TextStmt::do_exec(Interp& in) const {
    in.write(text);
    return Flow::Normal;
}

Flow PrintStmt::do_exec(Interp& in) const {
    write_value(in, expr->eval(in));
    return Flow::Normal;
}

Flow IfStmt::do_exec(Interp& in) const {  // no new scope: a set inside an if is seen after it
    for (const auto& [cond, body] : branches)
        if (truthy(cond->eval(in))) return run(in, body);
    return run(in, otherwise);
}

Flow ForStmt::do_exec(Interp& in) const {
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
        frame->set(in, "loop", loop_value);
        Redirect r(in, std::move(frame), in.out);
        if (run(in, body) == Flow::Break) break;
    }
    return Flow::Normal;
}

Flow SetStmt::do_exec(Interp& in) const {
    target.assign(in, *in.scope, value->eval(in));
    return Flow::Normal;
}

Flow SetBlockStmt::do_exec(Interp& in) const {
    target.assign(in, *in.scope, apply_filters(in, filters, Value(capture(in, body))));
    return Flow::Normal;
}

Flow FilterBlockStmt::do_exec(Interp& in) const {
    write_value(in, apply_filters(in, filters, Value(capture(in, body))));
    return Flow::Normal;
}

Flow MacroStmt::do_exec(Interp& in) const {
    in.scope->set(in, def->name, make_macro(in, def));
    return Flow::Normal;
}

Flow CallBlockStmt::do_exec(Interp& in) const {
    const Value f = call->callee->eval(in);
    Args a = call->args.eval(in);
    a.keyword.emplace_back("caller", make_macro(in, caller));
    write_value(in, in.call(f, a));
    return Flow::Normal;
}

Flow GenerationStmt::do_exec(Interp& in) const {
    Redirect r(in, child_frame(in.scope), in.out);
    run(in, body);
    return Flow::Normal;
}

Flow LoopControlStmt::do_exec(Interp&) const { return flow; }

// ---- Calls ----

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
        Value arg = v                    ? *v
                    : i >= first_default ? def.defaults[i - first_default]->eval(*this)
                                         : Value::undefined("'" + def.params[i] + "' is undefined");
        scope->set(*this, def.params[i], std::move(arg));
    }
    if (const Value* c = args.keyword_arg("caller")) scope->set(*this, "caller", *c);
    args.finish("macro '" + def.name + "'");
    run(*this, def.body);
    return Value(std::move(buffer));
}

// ---- Render ----

std::string Template::render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const {
    if (!context.is_object() && !context.is_null())
        throw TemplateError("the chat template context must be a JSON object");
    Interp in(limits, __builtin_frame_address(0));
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

// jinja2's tests (`x is name(args)`, and the names select/reject take), as chat templates use them.
#include "chat/jinja_args.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_strings.h"

namespace wp::jinja {

namespace {

bool t_divisible(Runtime& rt, const Value& v, Args& a) {
    const Value& num = required(a.get(0, "num"), "divisibleby");
    return equals(rt, binary_op(rt, BinaryOp::Mod, v, num), Value(0));
}

bool t_odd_even(Runtime& rt, const Value& v, bool odd) {
    if (!v.is_number()) throw Failure("odd/even need a number, not " + type_name(v));
    return equals(rt, binary_op(rt, BinaryOp::Mod, v, Value(2)), Value(odd ? 1 : 0));
}

// str(v).islower() / .isupper().
bool all_cased_as(Runtime& rt, const Value& v, bool upper) {
    const std::string s = to_str(rt, v);
    rt.chars(s.size());
    return upper ? py_isupper(s) : py_islower(s);
}

int compare_arg(Runtime& rt, const Value& v, Args& a) {
    return compare(rt, v, required(a.get(0, "other"), "comparison test"));
}
bool t_eq(Runtime& rt, const Value& v, Args& a) { return equals(rt, v, required(a.get(0, "other"), "eq")); }
bool t_ne(Runtime& rt, const Value& v, Args& a) { return !t_eq(rt, v, a); }
bool t_lt(Runtime& rt, const Value& v, Args& a) { return compare_arg(rt, v, a) < 0; }
bool t_le(Runtime& rt, const Value& v, Args& a) { return compare_arg(rt, v, a) <= 0; }
bool t_gt(Runtime& rt, const Value& v, Args& a) { return compare_arg(rt, v, a) > 0; }
bool t_ge(Runtime& rt, const Value& v, Args& a) { return compare_arg(rt, v, a) >= 0; }

bool is_kind(const Value& v, Value::Kind k) { return v.is(k); }

struct TestEntry {
    std::string_view name;
    TestFn fn;
};

const TestEntry kTests[] = {
    {"!=", t_ne},
    {"<", t_lt},
    {"<=", t_le},
    {"==", t_eq},
    {">", t_gt},
    {">=", t_ge},
    {"boolean", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Bool); }},
    // jinja2's Undefined has __call__ (which raises), so Python's callable() says yes.
    {"callable",
     [](Runtime&, const Value& v, Args&) {
         return v.is_undefined() || is_kind(v, Value::Kind::Function) || is_kind(v, Value::Kind::Macro);
     }},
    {"defined", [](Runtime&, const Value& v, Args&) { return !v.is_undefined(); }},
    {"divisibleby", t_divisible},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"even", [](Runtime& rt, const Value& v, Args&) { return t_odd_even(rt, v, false); }},
    {"false", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Bool) && !v.as_bool(); }},
    {"float", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Float); }},
    {"ge", t_ge},
    {"greaterthan", t_gt},
    {"gt", t_gt},
    {"in", [](Runtime& rt, const Value& v, Args& a) { return contains(rt, required(a.get(0, "seq"), "in"), v); }},
    {"integer", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Int); }},
    // Undefined iterates (as empty) and has a length in jinja2, so it is iterable and a sequence.
    {"iterable",
     [](Runtime&, const Value& v, Args&) {
         return v.is_string() || v.is_undefined() || is_kind(v, Value::Kind::Array) || is_kind(v, Value::Kind::Map);
     }},
    {"le", t_le},
    {"lessthan", t_lt},
    {"lower", [](Runtime& rt, const Value& v, Args&) { return all_cased_as(rt, v, false); }},
    {"lt", t_lt},
    {"mapping", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Map); }},
    {"ne", t_ne},
    {"none", [](Runtime&, const Value& v, Args&) { return v.is_none(); }},
    {"number", [](Runtime&, const Value& v, Args&) { return v.is_number(); }},
    {"odd", [](Runtime& rt, const Value& v, Args&) { return t_odd_even(rt, v, true); }},
    {"sameas",
     [](Runtime&, const Value& v, Args& a) {
         const Value& other = required(a.get(0, "other"), "sameas");
         if (v.kind() != other.kind()) return false;
         if (v.is_none() || v.is_undefined()) return true;
         if (v.is(Value::Kind::Bool)) return v.as_bool() == other.as_bool();
         if (v.is(Value::Kind::Int)) return v.as_int() == other.as_int();
         return v.identity() != nullptr && v.identity() == other.identity();
     }},
    {"sequence",
     [](Runtime&, const Value& v, Args&) {
         return v.is_string() || v.is_undefined() || is_kind(v, Value::Kind::Array) || is_kind(v, Value::Kind::Map);
     }},
    {"string", [](Runtime&, const Value& v, Args&) { return v.is_string(); }},
    {"true", [](Runtime&, const Value& v, Args&) { return is_kind(v, Value::Kind::Bool) && v.as_bool(); }},
    {"undefined", [](Runtime&, const Value& v, Args&) { return v.is_undefined(); }},
    {"upper", [](Runtime& rt, const Value& v, Args&) { return all_cased_as(rt, v, true); }},
};

}  // namespace

TestFn find_test(std::string_view name) {
    for (const TestEntry& t : kTests)
        if (t.name == name) return t.fn;
    return nullptr;
}

}  // namespace wp::jinja

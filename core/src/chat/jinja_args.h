// What the chat-template built-ins (methods, filters, tests, globals) share: reading their
// arguments, building their results within the render's budget, and the Function object that
// binds a C++ built-in to a name (and, for methods, to its object).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace wp::jinja {

// ---- Arguments ----

inline bool present(const Value* v) { return v != nullptr && !v->is_undefined(); }

inline bool bool_arg(const Value* v, bool def) { return present(v) ? truthy(*v) : def; }

inline std::int64_t int_arg(const Value* v, std::int64_t def, std::string_view what) {
    if (!present(v) || v->is_none()) return def;
    if (!v->is_integer()) throw Failure(std::string(what) + " must be an integer, not " + type_name(*v));
    return v->as_int();
}

inline std::string str_arg(Runtime& rt, const Value* v, std::string def) { return present(v) ? to_str(rt, *v) : def; }

inline const Value& required(const Value* v, std::string_view what) {
    if (v == nullptr) throw Failure(std::string(what) + " is missing a required argument");
    return *v;
}

inline const std::string& string_arg(const Value* v, std::string_view what) {
    if (v == nullptr || !v->is_string()) throw Failure(std::string(what) + " needs a string argument");
    return v->str();
}

// ---- Results ----

inline Value make_list(Runtime& rt, std::vector<Value> items, bool tuple = false) {
    rt.items(items.size());
    rt.new_items(items.size());
    return Value::list(std::move(items), tuple);
}

inline Value pair(Runtime& rt, Value a, Value b) { return make_list(rt, {std::move(a), std::move(b)}, true); }

inline Value make_string(Runtime& rt, std::string s) {
    rt.new_string(s.size());
    return Value(std::move(s));
}

inline Value string_list(Runtime& rt, std::vector<std::string> strings) {
    rt.new_values(strings.size());
    for (const auto& s : strings) rt.allocate(s.size());
    std::vector<Value> out;
    out.reserve(strings.size());
    for (auto& s : strings) out.emplace_back(std::move(s));
    return make_list(rt, std::move(out));
}

// dict.items(): (key, value) tuples in insertion order; also the `items` filter (jinja_methods.cpp).
Value dict_items(Runtime& rt, const Value& dict);

// ---- Bound built-ins ----

using MethodFn = Value (*)(Runtime& rt, const Value& self, Args& args);

struct Method {
    std::string_view name;
    MethodFn fn;
};

// A built-in global, or a method bound to its object.
class Builtin final : public Function {
public:
    Builtin(std::string name, MethodFn fn, Value self = Value())
        : name_(std::move(name)), fn_(fn), self_(std::move(self)) {}
    Value call(Runtime& rt, Args& args) const override { return fn_(rt, self_, args); }
    std::string name() const override { return name_; }

private:
    std::string name_;
    MethodFn fn_;
    Value self_;
};

}  // namespace wp::jinja

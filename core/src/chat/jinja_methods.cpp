// What `.` and `[]` reach in a chat template: the str, list and dict methods templates use, the
// loop object's attributes, and attribute, item and slice access with jinja2's fallbacks (a
// missing attribute or item is undefined, not an error).
#include <algorithm>
#include <memory>
#include <optional>

#include "chat/jinja_args.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_strings.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

// str.split / rsplit (CPython's algorithms). Without a separator: runs of whitespace, and the
// unsplit rest once maxsplit is reached.
Value split(Runtime& rt, const std::string& s, Args& args, bool from_right) {
    const Value* sep = args.get(0, "sep");
    std::int64_t maxsplit = int_arg(args.get(1, "maxsplit"), -1, "maxsplit");  // negative: no limit
    rt.chars(s.size());
    std::vector<std::string> parts;
    if (present(sep) && !sep->is_none()) {
        const std::string& d = string_arg(sep, "split");
        if (d.empty()) throw Failure("empty separator");
        rt.search(s.size(), d.size());
        if (!from_right) {
            std::size_t start = 0;
            for (; maxsplit != 0; --maxsplit) {
                const std::size_t at = s.find(d, start);
                if (at == std::string::npos) break;
                parts.push_back(s.substr(start, at - start));
                start = at + d.size();
            }
            parts.push_back(s.substr(start));
        } else {
            std::size_t end = s.size();
            for (; maxsplit != 0 && end >= d.size(); --maxsplit) {
                const std::size_t at = s.rfind(d, end - d.size());
                if (at == std::string::npos) break;
                parts.push_back(s.substr(at + d.size(), end - at - d.size()));
                end = at;
            }
            parts.push_back(s.substr(0, end));
            std::reverse(parts.begin(), parts.end());
        }
    } else {
        const auto starts = code_point_starts(s);
        const std::size_t n = starts.size() - 1;
        std::vector<bool> space(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t p = starts[i];
            space[i] = is_py_space(text::next_cp(s, p));
        }
        auto piece = [&](std::size_t from, std::size_t to) {
            return s.substr(starts[from], starts[to] - starts[from]);
        };
        if (!from_right) {
            std::size_t i = 0;
            for (; maxsplit != 0; --maxsplit) {
                while (i < n && space[i]) ++i;
                if (i == n) break;
                const std::size_t word = i;
                while (i < n && !space[i]) ++i;
                parts.push_back(piece(word, i));
            }
            while (i < n && space[i]) ++i;
            if (i < n) parts.push_back(piece(i, n));
        } else {
            std::size_t i = n;  // end of the unscanned prefix
            for (; maxsplit != 0; --maxsplit) {
                while (i > 0 && space[i - 1]) --i;
                if (i == 0) break;
                const std::size_t word_end = i;
                while (i > 0 && !space[i - 1]) --i;
                parts.push_back(piece(i, word_end));
            }
            while (i > 0 && space[i - 1]) --i;
            if (i > 0) parts.push_back(piece(0, i));
            std::reverse(parts.begin(), parts.end());
        }
    }
    return string_list(rt, std::move(parts));
}

bool matches_affix(Runtime& rt, const std::string& s, const Value* arg, bool prefix, std::string_view what) {
    auto test = [&](const Value& v) {
        const std::string& a = string_arg(&v, what);
        if (a.size() > s.size()) return false;
        return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
    };
    const Value& a = required(arg, what);
    if (a.is(Value::Kind::Array) && a.array().tuple) {  // startswith(("a", "b"))
        rt.items(a.array().items.size());
        return std::any_of(a.array().items.begin(), a.array().items.end(), test);
    }
    return test(a);
}

// Code point index of a byte offset (str.find returns code point positions).
std::int64_t cp_index(const std::string& s, std::size_t byte_pos) {
    return static_cast<std::int64_t>(code_point_count(std::string_view(s).substr(0, byte_pos)));
}

// ---- Methods ----

const Method kStringMethods[] = {
    {"strip",
     [](Runtime& rt, const Value& s, Args& a) { return Value(strip(rt, s.str(), a.get(0, "chars"), true, true)); }},
    {"lstrip",
     [](Runtime& rt, const Value& s, Args& a) { return Value(strip(rt, s.str(), a.get(0, "chars"), true, false)); }},
    {"rstrip",
     [](Runtime& rt, const Value& s, Args& a) { return Value(strip(rt, s.str(), a.get(0, "chars"), false, true)); }},
    {"split", [](Runtime& rt, const Value& s, Args& a) { return split(rt, s.str(), a, false); }},
    {"rsplit", [](Runtime& rt, const Value& s, Args& a) { return split(rt, s.str(), a, true); }},
    {"splitlines",
     [](Runtime& rt, const Value& s, Args& a) {
         rt.chars(s.str().size());
         return string_list(rt, splitlines(s.str(), bool_arg(a.get(0, "keepends"), false)));
     }},
    {"startswith", [](Runtime& rt, const Value& s,
                      Args& a) { return Value(matches_affix(rt, s.str(), a.get(0, "prefix"), true, "startswith")); }},
    {"endswith", [](Runtime& rt, const Value& s,
                    Args& a) { return Value(matches_affix(rt, s.str(), a.get(0, "suffix"), false, "endswith")); }},
    {"upper",
     [](Runtime& rt, const Value& s, Args&) {
         rt.chars(s.str().size());
         return Value(py_upper(s.str()));
     }},
    {"lower",
     [](Runtime& rt, const Value& s, Args&) {
         rt.chars(s.str().size());
         return Value(py_lower(s.str()));
     }},
    {"title",
     [](Runtime& rt, const Value& s, Args&) {
         rt.chars(s.str().size());
         return Value(py_title(s.str()));
     }},
    {"capitalize",
     [](Runtime& rt, const Value& s, Args&) {
         rt.chars(s.str().size());
         return Value(py_capitalize(s.str()));
     }},
    {"replace",
     [](Runtime& rt, const Value& s, Args& a) {
         const std::string& old = string_arg(a.get(0, "old"), "replace");
         const std::string& repl = string_arg(a.get(1, "new"), "replace");
         return Value(replace(rt, s.str(), old, repl, int_arg(a.get(2, "count"), -1, "count")));
     }},
    {"find",
     [](Runtime& rt, const Value& s, Args& a) {
         const std::string& sub = string_arg(a.get(0, "sub"), "find");
         rt.search(s.str().size(), sub.size());
         const std::size_t at = s.str().find(sub);
         if (at == std::string::npos) return Value(-1);
         rt.chars(at);
         return Value(cp_index(s.str(), at));
     }},
    {"rfind",
     [](Runtime& rt, const Value& s, Args& a) {
         const std::string& sub = string_arg(a.get(0, "sub"), "rfind");
         rt.search(s.str().size(), sub.size());
         const std::size_t at = s.str().rfind(sub);
         if (at == std::string::npos) return Value(-1);
         rt.chars(at);
         return Value(cp_index(s.str(), at));
     }},
    {"count",
     [](Runtime& rt, const Value& s, Args& a) {
         const std::string& sub = string_arg(a.get(0, "sub"), "count");
         rt.search(s.str().size(), sub.size());
         if (sub.empty()) {
             rt.chars(s.str().size());
             return Value(static_cast<std::int64_t>(code_point_count(s.str()) + 1));
         }
         std::int64_t n = 0;
         for (std::size_t at = s.str().find(sub); at != std::string::npos; at = s.str().find(sub, at + sub.size())) ++n;
         return Value(n);
     }},
    {"join",
     [](Runtime& rt, const Value& s, Args& a) {
         std::string out;
         const auto items = iterate(rt, required(a.get(0, "iterable"), "join"));
         for (std::size_t i = 0; i < items->items.size(); ++i) {
             const Value& v = items->items[i];
             if (!v.is_string())
                 throw Failure("sequence item " + std::to_string(i) + ": expected str instance, " + type_name(v) +
                               " found");
             const std::size_t before = out.size();
             if (i) out += s.str();
             out += v.str();
             rt.grew(out, out.size() - before);
         }
         return Value(std::move(out));
     }},
};

const Method kListMethods[] = {
    {"count",
     [](Runtime& rt, const Value& l, Args& a) {
         const Value& x = required(a.get(0, "value"), "count");
         std::int64_t n = 0;
         for (const Value& v : l.array().items) n += equals(rt, v, x) ? 1 : 0;
         return Value(n);
     }},
    {"index",
     [](Runtime& rt, const Value& l, Args& a) {
         const Value& x = required(a.get(0, "value"), "index");
         const auto& items = l.array().items;
         for (std::size_t i = 0; i < items.size(); ++i)
             if (equals(rt, items[i], x)) return Value(static_cast<std::int64_t>(i));
         throw Failure(repr(rt, x) + " is not in list");
     }},
};

const Method kDictMethods[] = {
    {"items", [](Runtime& rt, const Value& d, Args&) { return dict_items(rt, d); }},
    {"keys",
     [](Runtime& rt, const Value& d, Args&) {
         std::vector<Value> out;
         for (const auto& e : d.map().items) out.emplace_back(e.first);
         return make_list(rt, std::move(out));
     }},
    {"values",
     [](Runtime& rt, const Value& d, Args&) {
         std::vector<Value> out;
         for (const auto& e : d.map().items) out.push_back(e.second);
         return make_list(rt, std::move(out));
     }},
    {"get",
     [](Runtime& rt, const Value& d, Args& a) {
         const Value& key = required(a.get(0, "key"), "get");
         rt.items(d.map().items.size());
         const Value* def = a.get(1, "default");
         const Value* v = key.is_string() ? d.map().find(key.str()) : nullptr;
         return v ? *v : def ? *def : Value::none();
     }},
};

template <std::size_t N>
MethodFn find_method(const Method (&table)[N], std::string_view name) {
    for (const Method& m : table)
        if (m.name == name) return m.fn;
    return nullptr;
}

Value bind_method(const Value& self, const std::string& name, MethodFn fn) {
    return Value(std::shared_ptr<const Function>(std::make_shared<Builtin>(type_name(self) + "." + name, fn, self)));
}

// The attributes of `loop` inside a for body.
Value loop_attr(const Value& loop_value, const std::string& name) {
    const LoopState& l = *loop_value.loop();
    const auto& items = l.items->items;
    const auto i = static_cast<std::int64_t>(l.index);
    const auto n = static_cast<std::int64_t>(items.size());
    if (name == "index") return Value(i + 1);
    if (name == "index0") return Value(i);
    if (name == "revindex") return Value(n - i);
    if (name == "revindex0") return Value(n - i - 1);
    if (name == "first") return Value(i == 0);
    if (name == "last") return Value(i == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(1);
    if (name == "depth0") return Value(0);
    if (name == "previtem") return i > 0 ? items[l.index - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem") return i + 1 < n ? items[l.index + 1] : Value::undefined("there is no next item");
    if (name == "cycle")
        return bind_method(loop_value, name, [](Runtime&, const Value& self, Args& a) {
            const std::vector<Value> items = a.rest(0).positional;
            if (items.empty()) throw Failure("no items for cycling given");
            return items[self.loop()->index % items.size()];
        });
    return Value::undefined("'LoopContext' has no attribute '" + name + "'");
}

// "'str object'", as jinja2 names an object in its hints (built by appending, which spares GCC 12 a
// false -Wrestrict on "'" + std::string&&).
std::string object_name(const Value& v) {
    std::string out = "'";
    out += type_name(v);
    out += " object'";
    return out;
}

Value no_attribute(const Value& obj, const std::string& name) {
    return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
}

}  // namespace

Value dict_items(Runtime& rt, const Value& dict) {
    std::vector<Value> out;
    for (const auto& [k, v] : dict.map().items) out.push_back(pair(rt, Value(k), v));
    return make_list(rt, std::move(out));
}

// ---- Access ----

Value get_attr(Runtime& rt, const Value& obj, const std::string& name) {
    rt.step();
    switch (obj.kind()) {
        // jinja2's default Undefined prints as "" but raises when looked into: x.y on an undefined x
        // fails with "'x' is undefined", as transformers renders it.
        case Value::Kind::Undefined: undefined_error(obj);
        case Value::Kind::String:
            if (MethodFn m = find_method(kStringMethods, name)) return bind_method(obj, name, m);
            return no_attribute(obj, name);
        case Value::Kind::Map:
            // Python attributes win over keys for `.`: d.items is the method, d['items'] the key.
            if (MethodFn m = find_method(kDictMethods, name)) return bind_method(obj, name, m);
            rt.items(obj.map().items.size());
            if (const Value* v = obj.map().find(name)) return *v;
            return no_attribute(obj, name);
        case Value::Kind::Namespace:
            rt.items(obj.ns().attrs.size());
            for (const auto& [k, v] : obj.ns().attrs)
                if (k == name) return v;
            return no_attribute(obj, name);
        case Value::Kind::Array:
            if (MethodFn m = find_method(kListMethods, name)) return bind_method(obj, name, m);
            return no_attribute(obj, name);
        case Value::Kind::Loop: return loop_attr(obj, name);
        default: return no_attribute(obj, name);
    }
}

Value get_item(Runtime& rt, const Value& obj, const Value& key) {
    rt.step();
    switch (obj.kind()) {
        case Value::Kind::Undefined: undefined_error(obj);  // as for attributes
        case Value::Kind::Array:
        case Value::Kind::String:
            if (key.is_integer()) {
                const bool is_string = obj.is_string();
                if (is_string) rt.chars(obj.str().size());
                const auto starts = is_string ? code_point_starts(obj.str()) : std::vector<std::size_t>{};
                const auto n = static_cast<std::int64_t>(is_string ? starts.size() - 1 : obj.array().items.size());
                std::int64_t i = key.as_int();
                if (i < 0) i += n;
                if (i < 0 || i >= n)
                    return Value::undefined(object_name(obj) + " has no element " +
                                            std::to_string(key.as_int()));
                const auto u = static_cast<std::size_t>(i);
                if (!is_string) return obj.array().items[u];
                return Value(obj.str().substr(starts[u], starts[u + 1] - starts[u]));
            }
            break;
        case Value::Kind::Map:
            // Keys win over Python attributes for `[]`.
            if (key.is_string()) {
                rt.items(obj.map().items.size());
                if (const Value* v = obj.map().find(key.str())) return *v;
            }
            break;
        default: break;
    }
    if (key.is_string()) return get_attr(rt, obj, key.str());
    return Value::undefined(object_name(obj) + " has no element " + to_str(rt, key));
}

Value get_slice(Runtime& rt, const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
    if (obj.is_undefined()) return obj;
    // jinja2 turns a failed subscript into an undefined value.
    if (!obj.is_string() && !obj.is(Value::Kind::Array))
        return Value::undefined(object_name(obj) + " is not subscriptable");
    auto bound = [](const Value& v, std::string_view what) -> std::optional<std::int64_t> {
        if (v.is_undefined() || v.is_none()) return std::nullopt;
        if (!v.is_integer()) throw Failure("slice " + std::string(what) + " must be an integer or none");
        return v.as_int();
    };
    const std::int64_t step = bound(step_v, "step").value_or(1);
    if (step == 0) throw Failure("slice step cannot be zero");
    const bool is_string = obj.is_string();
    if (is_string) rt.chars(obj.str().size());
    const auto starts = is_string ? code_point_starts(obj.str()) : std::vector<std::size_t>{};
    const auto n = static_cast<std::int64_t>(is_string ? starts.size() - 1 : obj.array().items.size());
    // Python's PySlice_AdjustIndices.
    auto adjust = [&](std::optional<std::int64_t> v, std::int64_t def) {
        if (!v) return def;
        std::int64_t x = *v;
        if (x < 0) {
            x += n;
            if (x < 0) x = step < 0 ? -1 : 0;
        } else if (x >= n) {
            x = step < 0 ? n - 1 : n;
        }
        return x;
    };
    const std::int64_t start = adjust(bound(start_v, "start"), step < 0 ? n - 1 : 0);
    const std::int64_t stop = adjust(bound(stop_v, "stop"), step < 0 ? -1 : n);
    rt.items(static_cast<std::size_t>(n));
    std::vector<Value> items;
    std::string text;
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        const auto u = static_cast<std::size_t>(i);
        if (is_string)
            text.append(obj.str(), starts[u], starts[u + 1] - starts[u]);
        else
            items.push_back(obj.array().items[u]);
    }
    if (is_string) return Value(std::move(text));
    return make_list(rt, std::move(items), obj.array().tuple);
}

}  // namespace wp::jinja
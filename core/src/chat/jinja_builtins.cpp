// What chat templates can call: jinja2's filters and tests, the str and dict methods templates use,
// the loop object, attribute/item/slice access with jinja2's fallbacks, and the globals transformers
// provides (range, namespace, dict, raise_exception, strftime_now). Nothing here touches files,
// the network or the environment; the only outside input is the clock behind strftime_now.
#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <locale>
#include <optional>
#include <sstream>
#include <utility>

#include "wp/chat/jinja.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

// ---- Argument helpers ----

bool present(const Value* v) { return v != nullptr && !v->is_undefined(); }

bool bool_arg(const Value* v, bool def) { return present(v) ? truthy(*v) : def; }

std::int64_t int_arg(const Value* v, std::int64_t def, std::string_view what) {
    if (!present(v) || v->is_none()) return def;
    if (!v->is_integer()) throw Failure(std::string(what) + " must be an integer, not " + type_name(*v));
    return v->as_int();
}

std::string str_arg(Runtime& rt, const Value* v, std::string def) { return present(v) ? to_str(rt, *v) : def; }

const Value& required(const Value* v, std::string_view what) {
    if (v == nullptr) throw Failure(std::string(what) + " is missing a required argument");
    return *v;
}

const std::string& string_arg(const Value* v, std::string_view what) {
    if (v == nullptr || !v->is_string()) throw Failure(std::string(what) + " needs a string argument");
    return v->str();
}

Value make_list(Runtime& rt, std::vector<Value> items, bool tuple = false) {
    rt.items(items.size());
    return Value::list(std::move(items), tuple);
}

Value pair(Runtime& rt, Value a, Value b) { return make_list(rt, {std::move(a), std::move(b)}, true); }

Value make_string(Runtime& rt, std::string s) {
    rt.new_string(s.size());
    return Value(std::move(s));
}

Value string_list(Runtime& rt, std::vector<std::string> strings) {
    rt.new_values(strings.size());
    std::vector<Value> out;
    out.reserve(strings.size());
    for (auto& s : strings) out.emplace_back(std::move(s));
    return make_list(rt, std::move(out));
}

// jinja2's attribute paths ("a.b.0"): each part looked up as an item, digits as list indexes.
Value lookup_path(Runtime& rt, const Value& item, const Value& path) {
    if (path.is_integer()) return get_item(rt, item, path);
    const std::string p = to_str(rt, path);
    Value v = item;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = p.find('.', start);
        const std::string part = p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        const bool digits =
            !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        v = get_item(rt, v,
                     digits ? Value(static_cast<std::int64_t>(std::strtoll(part.c_str(), nullptr, 10))) : Value(part));
        if (dot == std::string::npos) return v;
        start = dot + 1;
    }
}

// The sort/unique/min/max key: the attribute when given, lowercased unless case-sensitive.
Value sort_key(Runtime& rt, const Value& item, const Value* attribute, bool case_sensitive) {
    Value key = present(attribute) ? lookup_path(rt, item, *attribute) : item;
    if (!case_sensitive && key.is_string()) {
        rt.chars(key.str().size());
        return Value(py_lower(key.str()));
    }
    return key;
}

// ---- String helpers ----

// str.strip / lstrip / rstrip: `chars` (when given) lists the code points to remove, else whitespace.
std::string strip(Runtime& rt, const std::string& s, const Value* chars, bool left, bool right) {
    const bool custom = present(chars) && !chars->is_none();
    std::vector<char32_t> set;  // sorted, for a lookup in log time however long `chars` is
    if (custom) {
        const std::string& c = string_arg(chars, "strip");
        rt.chars(c.size());
        for (std::size_t i = 0; i < c.size();) set.push_back(text::next_cp(c, i));
        std::sort(set.begin(), set.end());
    }
    auto removable = [&](char32_t cp) {
        return custom ? std::binary_search(set.begin(), set.end(), cp) : is_py_space(cp);
    };
    rt.chars(s.size());
    std::size_t begin = 0, end = s.size();
    if (left)
        while (begin < end) {
            std::size_t next = begin;
            if (!removable(text::next_cp(s, next))) break;
            begin = next;
        }
    if (right) {
        std::size_t kept_end = begin;
        for (std::size_t i = begin; i < end;)
            if (!removable(text::next_cp(s, i))) kept_end = i;
        end = kept_end;
    }
    return s.substr(begin, end - begin);
}

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

// Python's line boundaries: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029.
bool is_line_break(char32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
           cp == 0x2028 || cp == 0x2029;
}

std::vector<std::string> splitlines(const std::string& s, bool keepends) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t at = i;
        const char32_t cp = text::next_cp(s, i);
        if (!is_line_break(cp)) continue;
        if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
        lines.push_back(s.substr(start, (keepends ? i : at) - start));
        start = i;
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    return lines;
}

std::string replace(Runtime& rt, const std::string& s, const std::string& old, const std::string& repl,
                    std::int64_t count) {
    rt.chars(s.size());
    std::string out;
    if (old.empty()) {  // Python inserts `repl` before every character and at the end
        const auto starts = code_point_starts(s);
        for (std::size_t i = 0; i < starts.size(); ++i) {
            const std::size_t before = out.size();
            if (count < 0 || static_cast<std::int64_t>(i) < count) out += repl;
            if (i + 1 < starts.size()) out.append(s, starts[i], starts[i + 1] - starts[i]);
            rt.grew(out, out.size() - before);
        }
        return out;
    }
    rt.search(s.size(), old.size());
    std::size_t start = 0;
    for (std::int64_t n = 0; count < 0 || n < count; ++n) {
        const std::size_t at = s.find(old, start);
        if (at == std::string::npos) break;
        const std::size_t before = out.size();
        out.append(s, start, at - start);
        out += repl;
        start = at + old.size();
        rt.grew(out, out.size() - before);
    }
    out.append(s, start);
    rt.check_string(out.size());
    return out;
}

bool is_cased(char32_t cp) {
    const auto c = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->category;
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

std::string cp_string(char32_t cp) {
    std::string s;
    text::append_utf8(s, cp);
    return s;
}

char32_t title_cp(char32_t cp) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))); }

// str.title(): a cased character after an uncased one starts a word.
std::string py_title(const std::string& s) {
    std::string out;
    bool prev_cased = false;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        const std::string ch = s.substr(start, i - start);
        if (is_cased(cp)) {
            out += prev_cased ? py_lower(ch) : cp_string(title_cp(cp));
            prev_cased = true;
        } else {
            out += ch;
            prev_cased = false;
        }
    }
    return out;
}

// str.capitalize(): the first character in title case, the rest lowercase.
std::string py_capitalize(const std::string& s) {
    if (s.empty()) return s;
    std::size_t i = 0;
    const char32_t cp = text::next_cp(s, i);
    return cp_string(title_cp(cp)) + py_lower(std::string_view(s).substr(i));
}

// jinja2's title filter (not str.title): uppercase after '-', whitespace or one of "({[<".
std::string jinja_title(const std::string& s) {
    std::string out;
    bool word_start = true;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        const std::string_view ch(s.data() + start, i - start);
        if (cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || is_py_space(cp)) {
            out += ch;
            word_start = true;
        } else {
            out += word_start ? py_upper(ch) : py_lower(ch);
            word_start = false;
        }
    }
    return out;
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
    {"items",
     [](Runtime& rt, const Value& d, Args&) {
         std::vector<Value> out;
         for (const auto& [k, v] : d.map().items) out.push_back(pair(rt, Value(k), v));
         return make_list(rt, std::move(out));
     }},
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

Value no_attribute(const Value& obj, const std::string& name) {
    return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
}

// ---- Filters ----

Value length_of(Runtime& rt, const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return Value(0);
        case Value::Kind::String:
            rt.chars(v.str().size());
            return Value(static_cast<std::int64_t>(code_point_count(v.str())));
        case Value::Kind::Array: return Value(static_cast<std::int64_t>(v.array().items.size()));
        case Value::Kind::Map: return Value(static_cast<std::int64_t>(v.map().items.size()));
        default: throw Failure("object of type '" + type_name(v) + "' has no len()");
    }
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

// Python's int(str) and float(str) accept surrounding whitespace and '_' between digits.
std::string numeric_text(const std::string& s) {
    const std::size_t b = skip_py_space(s, 0);
    const std::size_t e = std::max(b, rstrip_py_space(s));
    std::string t;
    for (std::size_t i = b; i < e; ++i)
        if (s[i] != '_') t += s[i];
    return t;
}

// float(str), with from_chars: locale-independent (the app may set a locale with decimal commas).
bool parse_float(const std::string& s, double& out) {
    const std::string t = numeric_text(s);
    const std::size_t start = t.size() > 1 && t[0] == '+' && t[1] != '-' ? 1 : 0;  // from_chars takes no '+'
    const auto res = std::from_chars(t.data() + start, t.data() + t.size(), out);
    return !t.empty() && res.ec == std::errc() && res.ptr == t.data() + t.size();
}

Value f_int(Runtime& rt, const Value& v, Args& a) {
    const Value* def = a.get(0, "default");
    const std::int64_t base = int_arg(a.get(1, "base"), 10, "base");
    const Value fallback = present(def) ? *def : Value(0);
    if (v.is_integer()) return Value(v.as_int());
    if (v.is(Value::Kind::Float)) {
        const double d = v.as_float();
        return std::isfinite(d) && std::fabs(d) < 9.2e18 ? Value(static_cast<std::int64_t>(d)) : fallback;
    }
    if (!v.is_string()) return fallback;
    rt.chars(v.str().size());
    // int(s, base): optional sign, then a 0x/0o/0b prefix when it matches the base.
    std::string t = numeric_text(v.str());
    const bool negative = !t.empty() && t[0] == '-';
    std::size_t digits = !t.empty() && (t[0] == '-' || t[0] == '+') ? 1 : 0;
    if (t.size() > digits + 2 && t[digits] == '0') {
        const char p = static_cast<char>(t[digits + 1] | 0x20);
        if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) digits += 2;
    }
    std::int64_t r = 0;
    const auto res = base >= 2 && base <= 36
                         ? std::from_chars(t.data() + digits, t.data() + t.size(), r, static_cast<int>(base))
                         : std::from_chars_result{t.data(), std::errc::invalid_argument};
    if (res.ec == std::errc() && res.ptr == t.data() + t.size() && digits < t.size() && t[digits] != '-')
        return Value(negative ? -r : r);
    double d = 0;
    if (base == 10 && parse_float(v.str(), d) && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value(static_cast<std::int64_t>(d));
    return fallback;
}

Value f_float(Runtime& rt, const Value& v, Args& a) {
    const Value* def = a.get(0, "default");
    const Value fallback = present(def) ? *def : Value(0.0);
    if (v.is_number()) return Value(v.as_float());
    if (v.is_string()) rt.chars(v.str().size());
    double d = 0;
    if (v.is_string() && parse_float(v.str(), d)) return Value(d);
    return fallback;
}

Value f_round(Runtime&, const Value& v, Args& a) {
    const std::int64_t precision = int_arg(a.get(0, "precision"), 0, "precision");
    const std::string method = present(a.get(1, "method")) ? string_arg(a.get(1, "method"), "round") : "common";
    if (!v.is_number()) throw Failure("round needs a number, not " + type_name(v));
    if (method != "common" && method != "ceil" && method != "floor")
        throw Failure("round's method must be common, ceil or floor");
    const double x = v.as_float();
    const double scale = std::pow(10.0, static_cast<double>(precision));
    if (method == "ceil") return Value(std::ceil(x * scale) / scale);
    if (method == "floor") return Value(std::floor(x * scale) / scale);
    if (v.is_integer() && precision >= 0) return Value(v.as_int());  // Python: round(int, n) is the int
    if (!std::isfinite(x) || precision > 300) return v;
    if (precision < 0) {  // half to even, as Python
        const double r = std::nearbyint(x / std::pow(10.0, static_cast<double>(-precision))) *
                         std::pow(10.0, static_cast<double>(-precision));
        return v.is_integer() ? Value(static_cast<std::int64_t>(r)) : Value(r);
    }
    // Python rounds the exact binary value, half to even: what a correctly rounded fixed-point
    // conversion does.
    std::vector<char> buf(static_cast<std::size_t>(precision) + 400);
    const auto end =
        std::to_chars(buf.data(), buf.data() + buf.size(), x, std::chars_format::fixed, static_cast<int>(precision))
            .ptr;
    double r = 0;
    std::from_chars(buf.data(), end, r);
    return Value(r);
}

Value f_abs(Runtime&, const Value& v, Args&) {
    if (v.is_integer()) return v.as_int() < 0 ? negate(Value(v.as_int())) : Value(v.as_int());
    if (v.is(Value::Kind::Float)) return Value(std::fabs(v.as_float()));
    throw Failure("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_default(Runtime&, const Value& v, Args& a) {
    const Value* def = a.get(0, "default_value");
    const bool boolean = bool_arg(a.get(1, "boolean"), false);
    if (v.is_undefined() || (boolean && !truthy(v))) return def ? *def : Value("");
    return v;
}

Value f_join(Runtime& rt, const Value& v, Args& a) {
    const std::string sep = str_arg(rt, a.get(0, "d"), "");
    const Value* attribute = a.get(1, "attribute");
    std::string out;
    const auto items = iterate(rt, v);
    for (std::size_t i = 0; i < items->items.size(); ++i) {
        const std::size_t before = out.size();
        if (i) out += sep;
        out += to_str(rt, present(attribute) ? lookup_path(rt, items->items[i], *attribute) : items->items[i]);
        rt.grew(out, out.size() - before);
    }
    return Value(std::move(out));
}

Value f_first(Runtime& rt, const Value& v, Args&) {
    const auto items = iterate(rt, v);
    return items->items.empty() ? Value::undefined("No first item, sequence was empty.") : items->items.front();
}

Value f_last(Runtime& rt, const Value& v, Args&) {
    const auto items = iterate(rt, v);
    return items->items.empty() ? Value::undefined("No last item, sequence was empty.") : items->items.back();
}

Value f_list(Runtime& rt, const Value& v, Args&) { return make_list(rt, iterate(rt, v)->items); }

Value f_tojson(Runtime& rt, const Value& v, Args& a) {
    // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    JsonStyle style;
    style.ensure_ascii = bool_arg(a.get(0, "ensure_ascii"), false);
    const Value* indent = a.get(1, "indent");
    if (present(indent) && !indent->is_none()) {
        style.indented = true;
        style.item_separator = ",";
        if (indent->is_string())
            style.indent = indent->str();
        else
            style.indent = std::string(
                static_cast<std::size_t>(std::clamp<std::int64_t>(int_arg(indent, 0, "indent"), 0, 64)), ' ');
    }
    const Value* separators = a.get(2, "separators");
    if (present(separators) && !separators->is_none()) {
        if (!separators->is(Value::Kind::Array) || separators->array().items.size() != 2)
            throw Failure("tojson separators must be an (item_separator, key_separator) pair");
        style.item_separator = string_arg(&separators->array().items[0], "tojson separators");
        style.key_separator = string_arg(&separators->array().items[1], "tojson separators");
    }
    style.sort_keys = bool_arg(a.get(3, "sort_keys"), false);
    return Value(to_json(rt, v, style));
}

Value f_indent(Runtime& rt, const Value& v, Args& a) {
    const Value* width = a.get(0, "width");
    const bool first = bool_arg(a.get(1, "first"), false);
    const bool blank = bool_arg(a.get(2, "blank"), false);
    const std::string pad =
        present(width) && width->is_string()
            ? width->str()
            : std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(int_arg(width, 4, "width"), 0, 1024)), ' ');
    const std::string s = to_str(rt, v);
    rt.chars(s.size());
    // jinja2 appends a newline before splitting, so a trailing newline does not add a line.
    const std::vector<std::string> lines = splitlines(s + "\n", false);
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::size_t before = out.size();
        if (i) out += '\n';
        if ((i > 0 && (blank || !lines[i].empty())) || (i == 0 && first)) out += pad;
        out += lines[i];
        rt.grew(out, out.size() - before);
    }
    return Value(std::move(out));
}

Value f_items(Runtime& rt, const Value& v, Args& a) {
    if (v.is_undefined()) return make_list(rt, {});
    if (!v.is(Value::Kind::Map)) throw Failure("Can only get item pairs from a mapping.");
    return find_method(kDictMethods, "items")(rt, v, a);
}

Value f_dictsort(Runtime& rt, const Value& v, Args& a) {
    const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
    const std::string by = str_arg(rt, a.get(1, "by"), "key");
    const bool reverse = bool_arg(a.get(2, "reverse"), false);
    if (!v.is(Value::Kind::Map)) throw Failure("dictsort needs a mapping, not " + type_name(v));
    if (by != "key" && by != "value") throw Failure("You can only sort by either 'key' or 'value'");
    const int pos = by == "key" ? 0 : 1;
    std::vector<std::pair<Value, Value>> keyed;  // (key, item)
    for (const auto& [k, val] : v.map().items) {
        Value item = pair(rt, Value(k), val);
        keyed.emplace_back(sort_key(rt, item.array().items[static_cast<std::size_t>(pos)], nullptr, case_sensitive),
                           item);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return reverse ? compare(rt, y.first, x.first) < 0 : compare(rt, x.first, y.first) < 0;
    });
    std::vector<Value> out;
    for (auto& k : keyed) out.push_back(std::move(k.second));
    return make_list(rt, std::move(out));
}

Value f_sort(Runtime& rt, const Value& v, Args& a) {
    const bool reverse = bool_arg(a.get(0, "reverse"), false);
    const bool case_sensitive = bool_arg(a.get(1, "case_sensitive"), false);
    const Value* attribute = a.get(2, "attribute");
    // "a,b" sorts by a, then b (jinja2's multi-attribute getter).
    std::vector<Value> attributes;
    if (present(attribute) && attribute->is_string()) {
        std::stringstream ss(attribute->str());
        for (std::string part; std::getline(ss, part, ',');) attributes.emplace_back(part);
    } else if (present(attribute)) {
        attributes.push_back(*attribute);
    }
    std::vector<std::pair<std::vector<Value>, Value>> keyed;
    const auto items = iterate(rt, v);
    for (const Value& item : items->items) {
        std::vector<Value> keys;
        if (attributes.empty()) keys.push_back(sort_key(rt, item, nullptr, case_sensitive));
        for (const Value& attr : attributes) keys.push_back(sort_key(rt, item, &attr, case_sensitive));
        keyed.emplace_back(std::move(keys), item);
    }
    auto less = [&](const auto& x, const auto& y) {
        for (std::size_t i = 0; i < x.first.size(); ++i) {
            const int c = compare(rt, x.first[i], y.first[i]);
            if (c != 0) return reverse ? c > 0 : c < 0;
        }
        return false;
    };
    std::stable_sort(keyed.begin(), keyed.end(), less);
    std::vector<Value> out;
    for (auto& k : keyed) out.push_back(std::move(k.second));
    return make_list(rt, std::move(out));
}

Value f_unique(Runtime& rt, const Value& v, Args& a) {
    const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
    const Value* attribute = a.get(1, "attribute");
    std::vector<Value> seen, out;
    const auto items = iterate(rt, v);
    for (const Value& item : items->items) {
        Value key = sort_key(rt, item, attribute, case_sensitive);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(rt, s, key); })) {
            seen.push_back(std::move(key));
            out.push_back(item);
        }
    }
    return make_list(rt, std::move(out));
}

Value extreme(Runtime& rt, const Value& v, Args& a, int sign) {
    const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
    const Value* attribute = a.get(1, "attribute");
    const auto items = iterate(rt, v);
    if (items->items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    std::size_t best = 0;
    Value best_key = sort_key(rt, items->items[0], attribute, case_sensitive);
    for (std::size_t i = 1; i < items->items.size(); ++i) {
        Value key = sort_key(rt, items->items[i], attribute, case_sensitive);
        if (compare(rt, key, best_key) * sign > 0) {
            best = i;
            best_key = std::move(key);
        }
    }
    return items->items[best];
}

Value f_sum(Runtime& rt, const Value& v, Args& a) {
    const Value* attribute = a.get(0, "attribute");
    const Value* start = a.get(1, "start");
    Value total = start ? *start : Value(0);
    const auto items = iterate(rt, v);
    for (const Value& item : items->items)
        total = binary_op(rt, BinaryOp::Add, total, present(attribute) ? lookup_path(rt, item, *attribute) : item);
    return total;
}

Value f_reverse(Runtime& rt, const Value& v, Args&) {
    if (v.is_string()) {
        rt.chars(v.str().size());
        const auto starts = code_point_starts(v.str());
        std::string out;
        for (std::size_t i = starts.size() - 1; i > 0; --i)
            out.append(v.str(), starts[i - 1], starts[i] - starts[i - 1]);
        return make_string(rt, std::move(out));
    }
    std::vector<Value> items = iterate(rt, v)->items;
    std::reverse(items.begin(), items.end());
    return make_list(rt, std::move(items));
}

Value f_batch(Runtime& rt, const Value& v, Args& a) {
    const std::int64_t count = int_arg(a.get(0, "linecount"), 0, "linecount");
    const Value* fill = a.get(1, "fill_with");
    if (count <= 0) throw Failure("batch needs a positive linecount");
    const auto n = static_cast<std::size_t>(count);
    std::vector<Value> out, row;
    const auto items = iterate(rt, v);
    for (const Value& item : items->items) {
        row.push_back(item);
        if (row.size() == n) out.push_back(make_list(rt, std::exchange(row, {})));
    }
    if (!row.empty()) {
        if (present(fill))
            while (row.size() < n) row.push_back(*fill);
        out.push_back(make_list(rt, std::move(row)));
    }
    return make_list(rt, std::move(out));
}

// select / reject / selectattr / rejectattr: keep the items whose (attribute's) test result is `keep`.
Value filter_items(Runtime& rt, const Value& v, Args& a, bool by_attribute, bool keep) {
    std::size_t next = 0;
    Value attribute;
    if (by_attribute) attribute = required(a.get(next++, "attribute"), "selectattr");
    TestFn test = nullptr;
    std::string test_name;
    if (next < a.positional.size()) {
        test_name = string_arg(a.get(next++, "test"), "select");
        test = find_test(test_name);
        if (!test) throw Failure("no test named '" + test_name + "'");
    }
    Args test_args = a.rest(next);
    std::vector<Value> out;
    const auto items = iterate(rt, v);
    for (const Value& item : items->items) {
        const Value x = by_attribute ? lookup_path(rt, item, attribute) : item;
        if ((test ? test(rt, x, test_args) : truthy(x)) == keep) out.push_back(item);
    }
    if (test) test_args.finish("test '" + test_name + "'");
    return make_list(rt, std::move(out));
}

Value f_map(Runtime& rt, const Value& v, Args& a) {
    std::vector<Value> out;
    if (const Value* attribute = a.keyword_arg("attribute")) {
        const Value* def = a.keyword_arg("default");
        const auto items = iterate(rt, v);
        for (const Value& item : items->items) {
            Value x = lookup_path(rt, item, *attribute);
            out.push_back(x.is_undefined() && def ? *def : std::move(x));
        }
        return make_list(rt, std::move(out));
    }
    const std::string name = string_arg(a.get(0, "filter"), "map");
    const FilterFn filter = find_filter(name);
    if (!filter) throw Failure("no filter named '" + name + "'");
    Args filter_args = a.rest(1);
    const auto items = iterate(rt, v);
    for (const Value& item : items->items) out.push_back(filter(rt, item, filter_args));
    filter_args.finish("filter '" + name + "'");
    return make_list(rt, std::move(out));
}

Value string_filter(Runtime& rt, const Value& v, std::string (*fn)(const std::string&)) {
    const std::string s = to_str(rt, v);
    rt.chars(s.size());
    return Value(fn(s));
}

struct FilterEntry {
    std::string_view name;
    FilterFn fn;
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"batch", f_batch},
    {"capitalize", [](Runtime& rt, const Value& v, Args&) { return string_filter(rt, v, py_capitalize); }},
    {"count", [](Runtime& rt, const Value& v, Args&) { return length_of(rt, v); }},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", [](Runtime& rt, const Value& v, Args&) { return string_filter(rt, v, html_escape); }},
    {"escape", [](Runtime& rt, const Value& v, Args&) { return string_filter(rt, v, html_escape); }},
    {"first", f_first},
    {"float", f_float},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", [](Runtime& rt, const Value& v, Args&) { return length_of(rt, v); }},
    {"list", f_list},
    {"lower", [](Runtime& rt, const Value& v,
                 Args&) { return string_filter(rt, v, [](const std::string& s) { return py_lower(s); }); }},
    {"map", f_map},
    {"max", [](Runtime& rt, const Value& v, Args& a) { return extreme(rt, v, a, 1); }},
    {"min", [](Runtime& rt, const Value& v, Args& a) { return extreme(rt, v, a, -1); }},
    {"reject", [](Runtime& rt, const Value& v, Args& a) { return filter_items(rt, v, a, false, false); }},
    {"rejectattr", [](Runtime& rt, const Value& v, Args& a) { return filter_items(rt, v, a, true, false); }},
    {"replace",
     [](Runtime& rt, const Value& v, Args& a) {
         const std::string old = to_str(rt, required(a.get(0, "old"), "replace"));
         const std::string repl = to_str(rt, required(a.get(1, "new"), "replace"));
         return Value(replace(rt, to_str(rt, v), old, repl, int_arg(a.get(2, "count"), -1, "count")));
     }},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", [](Runtime& rt, const Value& v, Args&) { return Value(to_str(rt, v)); }},  // no autoescaping: a no-op
    {"select", [](Runtime& rt, const Value& v, Args& a) { return filter_items(rt, v, a, false, true); }},
    {"selectattr", [](Runtime& rt, const Value& v, Args& a) { return filter_items(rt, v, a, true, true); }},
    {"sort", f_sort},
    {"string", [](Runtime& rt, const Value& v, Args&) { return Value(to_str(rt, v)); }},
    {"sum", f_sum},
    {"title", [](Runtime& rt, const Value& v, Args&) { return string_filter(rt, v, jinja_title); }},
    {"tojson", f_tojson},
    {"trim", [](Runtime& rt, const Value& v,
                Args& a) { return Value(strip(rt, to_str(rt, v), a.get(0, "chars"), true, true)); }},
    {"unique", f_unique},
    {"upper", [](Runtime& rt, const Value& v,
                 Args&) { return string_filter(rt, v, [](const std::string& s) { return py_upper(s); }); }},
};

// ---- Tests ----

bool t_divisible(Runtime& rt, const Value& v, Args& a) {
    const Value& num = required(a.get(0, "num"), "divisibleby");
    return equals(rt, binary_op(rt, BinaryOp::Mod, v, num), Value(0));
}

bool t_odd_even(Runtime& rt, const Value& v, bool odd) {
    if (!v.is_number()) throw Failure("odd/even need a number, not " + type_name(v));
    return equals(rt, binary_op(rt, BinaryOp::Mod, v, Value(2)), Value(odd ? 1 : 0));
}

// str(v).islower() / .isupper(): cased characters, all of one case.
bool all_cased_as(Runtime& rt, const Value& v, bool upper) {
    const std::string s = to_str(rt, v);
    rt.chars(s.size());
    bool any = false;
    for (std::size_t i = 0; i < s.size();) {
        const char32_t cp = text::next_cp(s, i);
        if (!is_cased(cp)) continue;
        const auto c = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->category;
        if ((upper && c == UTF8PROC_CATEGORY_LL) ||
            (!upper && (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT)))
            return false;
        any = true;
    }
    return any;
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

// ---- Globals ----

void check_namespace_value(const Value& v) {
    if (v.holds_reference())
        throw Failure("a namespace attribute cannot hold a namespace, loop or function (sandbox rule)");
    if (v.depth() + 1 > kMaxNesting)
        throw Failure("a value is nested more than " + std::to_string(kMaxNesting) + " levels deep");
}

Value g_range(Runtime& rt, const Value&, Args& a) {
    std::int64_t start = 0, stop = 0, step = 1;
    const std::int64_t first = int_arg(&required(a.get(0, "start"), "range"), 0, "range");
    if (a.positional.size() >= 2) {
        start = first;
        stop = int_arg(a.get(1, "stop"), 0, "range");
        step = int_arg(a.get(2, "step"), 1, "range");
    } else {
        stop = first;
    }
    if (step == 0) throw Failure("range() arg 3 must not be zero");
    // len(range(...)) in unsigned arithmetic, which cannot overflow near the int64 limits.
    using U = std::uint64_t;
    U count = 0;
    if (step > 0 && start < stop) count = (U(stop) - U(start) - 1) / U(step) + 1;
    if (step < 0 && start > stop) count = (U(start) - U(stop) - 1) / (U(0) - U(step)) + 1;
    if (count > 100000) throw Failure("range too big: the sandbox allows at most 100000 items");  // jinja2's MAX_RANGE
    std::vector<Value> out;
    out.reserve(count);
    for (U k = 0; k < count; ++k) out.emplace_back(static_cast<std::int64_t>(U(start) + k * U(step)));
    return make_list(rt, std::move(out));
}

// dict(**kw) and namespace(**kw) also take one mapping positionally, as Python's dict() does.
Entries entries_of(Runtime& rt, Args& a, std::string_view what) {
    Entries out;
    if (const Value* m = a.get(0, "")) {
        if (!m->is(Value::Kind::Map)) throw Failure(std::string(what) + "() takes a mapping and keyword arguments");
        out = m->map().items;
    }
    for (auto& [k, v] : a.rest(1).keyword) {
        rt.items(out.size());
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == k; });
        if (it != out.end())
            it->second = v;
        else
            out.emplace_back(k, v);
    }
    return out;
}

Value g_dict(Runtime& rt, const Value&, Args& a) {
    Entries e = entries_of(rt, a, "dict");
    rt.items(e.size());
    return Value::dict(std::move(e));
}

Value g_namespace(Runtime& rt, const Value&, Args& a) {
    auto ns = std::make_shared<Namespace>();
    ns->attrs = entries_of(rt, a, "namespace");
    for (const auto& e : ns->attrs) check_namespace_value(e.second);
    rt.items(ns->attrs.size());
    return Value(std::move(ns));
}

Value g_raise_exception(Runtime& rt, const Value&, Args& a) {
    // transformers raises jinja2's TemplateError with exactly this message.
    throw TemplateError(to_str(rt, required(a.get(0, "message"), "raise_exception")));
}

Value g_strftime_now(Runtime&, const Value&, Args& a) {
    const std::string& format = string_arg(a.get(0, "format"), "strftime_now");
    if (format.size() > 256) throw Failure("strftime_now's format is longer than 256 bytes");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    // The classic locale: English names whatever locale the app runs in, as Python's default.
    std::ostringstream out;
    out.imbue(std::locale::classic());
    out << std::put_time(&local, format.c_str());
    return Value(out.str());
}

const Method kGlobals[] = {
    {"dict", g_dict},   {"namespace", g_namespace},       {"raise_exception", g_raise_exception},
    {"range", g_range}, {"strftime_now", g_strftime_now},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
    for (const FilterEntry& f : kFilters)
        if (f.name == name) return f.fn;
    return nullptr;
}

TestFn find_test(std::string_view name) {
    for (const TestEntry& t : kTests)
        if (t.name == name) return t.fn;
    return nullptr;
}

Value find_global(std::string_view name) {
    for (const Method& g : kGlobals)
        if (g.name == name)
            return Value(std::shared_ptr<const Function>(std::make_shared<Builtin>(std::string(name), g.fn)));
    return Value();
}

void set_namespace_attr(Runtime& rt, Namespace& ns, const std::string& name, Value v) {
    check_namespace_value(v);
    rt.items(ns.attrs.size());
    for (auto& [k, old] : ns.attrs)
        if (k == name) {
            old = std::move(v);
            return;
        }
    ns.attrs.emplace_back(name, std::move(v));
}

Value get_attr(Runtime& rt, const Value& obj, const std::string& name) {
    rt.step();
    switch (obj.kind()) {
        case Value::Kind::Undefined: return obj;  // lenient: x.y.z on an undefined x stays undefined
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
        case Value::Kind::Undefined: return obj;
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
                    return Value::undefined("'" + type_name(obj) + " object' has no element " +
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
    return Value::undefined("'" + type_name(obj) + " object' has no element " + to_str(rt, key));
}

Value get_slice(Runtime& rt, const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
    if (obj.is_undefined()) return obj;
    // jinja2 turns a failed subscript into an undefined value.
    if (!obj.is_string() && !obj.is(Value::Kind::Array))
        return Value::undefined("'" + type_name(obj) + " object' is not subscriptable");
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

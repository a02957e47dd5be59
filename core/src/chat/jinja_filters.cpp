// jinja2's filters (`x | name(args)`), as chat templates use them, with jinja2 3.1's arguments and
// results; `tojson` is transformers' (json.dumps with ensure_ascii off).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "chat/jinja_args.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_json.h"
#include "chat/jinja_strings.h"

namespace wp::jinja {

namespace {


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

Value f_items(Runtime& rt, const Value& v, Args&) {
    if (v.is_undefined()) return make_list(rt, {});
    if (!v.is(Value::Kind::Map)) throw Failure("Can only get item pairs from a mapping.");
    return dict_items(rt, v);
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

}  // namespace

FilterFn find_filter(std::string_view name) {
    for (const FilterEntry& f : kFilters)
        if (f.name == name) return f.fn;
    return nullptr;
}

}  // namespace wp::jinja

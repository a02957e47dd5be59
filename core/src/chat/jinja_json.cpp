// JSON in and out of chat templates: the render context becomes values (from_json), and the
// tojson filter writes them as Python's json.dumps does (to_json).
#include "chat/jinja_json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "chat/jinja_strings.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
    if (depth > kMaxNesting)
        throw Failure("the context is nested more than " + std::to_string(kMaxNesting) + " levels deep");
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return Value::none();
        case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<std::int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            const auto u = j.get<std::uint64_t>();
            if (u <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(u));
            return Value(static_cast<double>(u));
        }
        case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto& e : j) items.push_back(from_json_at(e, depth + 1));
            return Value::list(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
            Entries items;
            items.reserve(j.size());
            for (const auto& [k, e] : j.items()) items.emplace_back(k, from_json_at(e, depth + 1));
            return Value::dict(std::move(items));
        }
        default: throw Failure("the context holds binary data, which templates cannot use");
    }
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t start = i;
            const char32_t cp = text::next_cp(s, i);
            if (!ensure_ascii) {
                out.append(s, start, i - start);
            } else if (cp < 0x10000) {
                append_hex(out, "\\u", cp, 4);
            } else {
                const char32_t x = cp - 0x10000;
                append_hex(out, "\\u", 0xD800 + (x >> 10), 4);
                append_hex(out, "\\u", 0xDC00 + (x & 0x3FF), 4);
            }
            continue;
        }
        ++i;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20)
                    append_hex(out, "\\u", c, 4);
                else
                    out += static_cast<char>(c);
        }
    }
    out += '"';
}

void append_json(Runtime& rt, std::string& out, const Value& v, const JsonStyle& style, int level);

// Python's layout: with an indent every item goes on its own line, indented one level deeper
// than its bracket; empty containers stay "[]" and "{}".
void json_newline(std::string& out, const JsonStyle& style, int level) {
    if (!style.indented) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += style.indent;
}

void append_json(Runtime& rt, std::string& out, const Value& v, const JsonStyle& style, int level) {
    rt.step();
    const std::size_t before = out.size();
    switch (v.kind()) {
        case Value::Kind::None: out += "null"; break;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
        case Value::Kind::Int: out += std::to_string(v.as_int()); break;
        case Value::Kind::Float: {
            const double d = v.as_float();
            if (std::isnan(d))
                out += "NaN";
            else if (std::isinf(d))
                out += d > 0 ? "Infinity" : "-Infinity";
            else
                out += py_float_repr(d);
            break;
        }
        case Value::Kind::String: append_json_string(out, v.str(), style.ensure_ascii); break;
        case Value::Kind::Array: {
            const auto& items = v.array().items;
            if (items.empty()) {
                out += "[]";
                break;
            }
            out += '[';
            for (std::size_t i = 0; i < items.size(); ++i) {
                if (i) out += style.item_separator;
                json_newline(out, style, level + 1);
                append_json(rt, out, items[i], style, level + 1);
            }
            json_newline(out, style, level);
            out += ']';
            break;
        }
        case Value::Kind::Map: {
            std::vector<const std::pair<std::string, Value>*> entries;
            for (const auto& e : v.map().items) entries.push_back(&e);
            if (entries.empty()) {
                out += "{}";
                break;
            }
            if (style.sort_keys)
                std::sort(entries.begin(), entries.end(), [](auto* x, auto* y) { return x->first < y->first; });
            out += '{';
            for (std::size_t i = 0; i < entries.size(); ++i) {
                if (i) out += style.item_separator;
                json_newline(out, style, level + 1);
                append_json_string(out, entries[i]->first, style.ensure_ascii);
                out += style.key_separator;
                append_json(rt, out, entries[i]->second, style, level + 1);
            }
            json_newline(out, style, level);
            out += '}';
            break;
        }
        default: throw Failure("Object of type " + type_name(v) + " is not JSON serializable");
    }
    rt.chars(out.size() - before);
    rt.check_text(out);
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

std::string to_json(Runtime& rt, const Value& v, const JsonStyle& style) {
    std::string out;
    append_json(rt, out, v, style, 0);
    return out;
}

}  // namespace wp::jinja

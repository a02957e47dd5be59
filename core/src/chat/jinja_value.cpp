// The chat-template value model with Python's semantics, as jinja2 templates see them: truthiness,
// str()/repr(), comparisons, arithmetic.
#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>

#include "chat/jinja_strings.h"
#include "tokenizer/text_util.h"

namespace wp::jinja {

namespace {

[[noreturn]] void type_error(const std::string& op, const Value& a, const Value& b) {
    throw Failure("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

// Python integers are unbounded; ours are 64-bit, which no chat template comes near.
[[noreturn]] void overflow() { throw Failure("integer overflow"); }
std::int64_t add_int(std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r)) overflow();
    return r;
}
std::int64_t sub_int(std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) overflow();
    return r;
}
std::int64_t mul_int(std::int64_t a, std::int64_t b) {
    std::int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) overflow();
    return r;
}

void append_str_repr(std::string& out, const std::string& s) {
    const bool has_single = s.find('\'') != std::string::npos;
    const char quote = has_single && s.find('"') == std::string::npos ? '"' : '\'';
    out += quote;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const char32_t cp = text::next_cp(s, i);
        if (cp == static_cast<char32_t>(quote) || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (text::is_printable(static_cast<char32_t>(cp))) {
            out.append(s, start, i - start);
        } else if (cp < 0x100) {
            append_hex(out, "\\x", cp, 2);
        } else if (cp < 0x10000) {
            append_hex(out, "\\u", cp, 4);
        } else {
            append_hex(out, "\\U", cp, 8);
        }
    }
    out += quote;
}

void append_repr(Runtime& rt, std::string& out, const Value& v);

void append_entries_repr(Runtime& rt, std::string& out, const Entries& entries) {
    out += '{';
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i) out += ", ";
        append_str_repr(out, entries[i].first);
        out += ": ";
        append_repr(rt, out, entries[i].second);
    }
    out += '}';
}

void append_repr(Runtime& rt, std::string& out, const Value& v) {
    rt.step();
    const std::size_t before = out.size();
    switch (v.kind()) {
        case Value::Kind::String: append_str_repr(out, v.str()); break;
        case Value::Kind::Array: {
            const Array& a = v.array();
            out += a.tuple ? '(' : '[';
            for (std::size_t i = 0; i < a.items.size(); ++i) {
                if (i) out += ", ";
                append_repr(rt, out, a.items[i]);
            }
            if (a.tuple && a.items.size() == 1) out += ',';
            out += a.tuple ? ')' : ']';
            break;
        }
        case Value::Kind::Map: append_entries_repr(rt, out, v.map().items); break;
        case Value::Kind::Namespace:
            out += "<Namespace ";
            append_entries_repr(rt, out, v.ns().attrs);
            out += '>';
            break;
        default: out += to_str(rt, v); break;
    }
    rt.chars(out.size() - before);
    rt.check_text(out);
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    if (a == INT64_MIN && b == -1) overflow();
    std::int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) --q;
    return q;
}

std::int64_t int_pow(std::int64_t base, std::int64_t exp) {
    std::int64_t result = 1;
    while (exp > 0) {
        if (exp & 1) result = mul_int(result, base);
        exp >>= 1;
        if (exp > 0) base = mul_int(base, base);
    }
    return result;
}

Value repeat(Runtime& rt, const Value& seq, std::int64_t count) {
    const std::size_t unit = seq.is_string() ? seq.str().size() : seq.array().items.size();
    if (unit == 0 || count <= 0) count = 0;  // '' * 10**18 must not loop
    const auto n = static_cast<std::size_t>(count);
    std::size_t total = 0;
    if (__builtin_mul_overflow(unit, n, &total)) total = SIZE_MAX;  // refused by the checks below
    if (seq.is_string()) {
        rt.new_string(total);
        std::string out;
        out.reserve(total);
        for (std::size_t i = 0; i < n; ++i) out += seq.str();
        return Value(std::move(out));
    }
    const Array& a = seq.array();
    rt.items(total);
    rt.new_items(total);
    std::vector<Value> out;
    out.reserve(total);
    for (std::size_t i = 0; i < n; ++i) out.insert(out.end(), a.items.begin(), a.items.end());
    return Value::list(std::move(out), a.tuple);
}

}  // namespace

// ---- Value ----

const Value* Map::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k == key) return &v;
    return nullptr;
}

Value Value::list(std::vector<Value> items, bool tuple) {
    auto a = std::make_shared<Array>();
    for (const Value& v : items) {
        a->depth = std::max(a->depth, v.depth() + 1);
        a->holds_reference = a->holds_reference || v.holds_reference();
    }
    if (a->depth > kMaxNesting)
        throw Failure("a value is nested more than " + std::to_string(kMaxNesting) + " levels deep");
    a->items = std::move(items);
    a->tuple = tuple;
    return Value(ArrayPtr(std::move(a)));
}

Value Value::dict(Entries items) {
    auto m = std::make_shared<Map>();
    for (const auto& e : items) {
        m->depth = std::max(m->depth, e.second.depth() + 1);
        m->holds_reference = m->holds_reference || e.second.holds_reference();
    }
    if (m->depth > kMaxNesting)
        throw Failure("a value is nested more than " + std::to_string(kMaxNesting) + " levels deep");
    m->items = std::move(items);
    return Value(MapPtr(std::move(m)));
}

std::int64_t Value::as_int() const { return is(Kind::Bool) ? (as_bool() ? 1 : 0) : std::get<std::int64_t>(v_); }

double Value::as_float() const { return is(Kind::Float) ? std::get<double>(v_) : static_cast<double>(as_int()); }

int Value::depth() const {
    switch (kind()) {
        case Kind::Array: return array().depth;
        case Kind::Map: return map().depth;
        case Kind::Namespace: {
            int d = 1;
            for (const auto& e : ns().attrs) d = std::max(d, e.second.depth() + 1);
            return d;
        }
        default: return 0;
    }
}

bool Value::holds_reference() const {
    switch (kind()) {
        case Kind::Namespace:
        case Kind::Loop:
        case Kind::Function: return true;
        case Kind::Array: return array().holds_reference;
        case Kind::Map: return map().holds_reference;
        default: return false;
    }
}

const void* Value::identity() const {
    switch (kind()) {
        case Kind::String: return std::get<StringPtr>(v_).get();
        case Kind::Array: return &array();
        case Kind::Map: return &map();
        case Kind::Namespace: return &ns();
        case Kind::Function: return &function();
        case Kind::Macro: return macro().get();
        case Kind::Loop: return loop().get();
        default: return nullptr;
    }
}

// ---- Runtime ----

void Runtime::check_string(std::size_t n) const {
    if (n > limits_.max_output_bytes)
        throw Failure("a string would exceed the output limit of " + std::to_string(limits_.max_output_bytes) +
                      " bytes");
}

void Runtime::check_text(const std::string& text) const {
    if (text.size() > limits_.max_output_bytes)
        throw Failure("a value's text exceeds the output limit of " + std::to_string(limits_.max_output_bytes) +
                      " bytes");
}

void Runtime::iteration() {
    if (++iterations_ > limits_.max_loop_iterations)
        throw Failure("the template ran more than " + std::to_string(limits_.max_loop_iterations) +
                      " loop iterations and macro calls");
    step();
}

void Runtime::over_memory() const {
    throw Failure("the template created more than " + std::to_string(limits_.max_value_bytes >> 20) +
                  " MB of lists, dicts and strings (the sandbox's memory limit)");
}

void Runtime::over_steps() const {
    throw Failure("the template took more than " + std::to_string(limits_.max_steps) + " evaluation steps");
}

// ---- Args ----

const Value* Args::get(std::size_t index, std::string_view name) {
    if (index < positional.size()) {
        positional_used_ = std::max(positional_used_, index + 1);
        return &positional[index];
    }
    keyword_used_.resize(keyword.size());
    for (std::size_t i = 0; i < keyword.size(); ++i)
        if (keyword[i].first == name) {
            keyword_used_[i] = true;
            return &keyword[i].second;
        }
    return nullptr;
}

Args Args::rest(std::size_t index) {
    Args out;
    if (index < positional.size())
        out.positional.assign(positional.begin() + static_cast<std::ptrdiff_t>(index), positional.end());
    out.keyword = keyword;
    positional_used_ = positional.size();
    keyword_used_.assign(keyword.size(), true);
    return out;
}

void Args::finish(std::string_view what) const {
    if (positional_used_ < positional.size())
        throw Failure(std::string(what) + " takes at most " + std::to_string(positional_used_) +
                      " positional argument(s)");
    for (std::size_t i = 0; i < keyword.size(); ++i)
        if (i >= keyword_used_.size() || !keyword_used_[i])
            throw Failure(std::string(what) + " got an unexpected keyword argument '" + keyword[i].first + "'");
}

// ---- Python semantics ----

bool truthy(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined:
        case Value::Kind::None: return false;
        case Value::Kind::Bool: return v.as_bool();
        case Value::Kind::Int: return v.as_int() != 0;
        case Value::Kind::Float: return v.as_float() != 0.0;
        case Value::Kind::String: return !v.str().empty();
        case Value::Kind::Array: return !v.array().items.empty();
        case Value::Kind::Map: return !v.map().items.empty();
        default: return true;
    }
}

std::string type_name(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return "Undefined";
        case Value::Kind::None: return "NoneType";
        case Value::Kind::Bool: return "bool";
        case Value::Kind::Int: return "int";
        case Value::Kind::Float: return "float";
        case Value::Kind::String: return "str";
        case Value::Kind::Array: return v.array().tuple ? "tuple" : "list";
        case Value::Kind::Map: return "dict";
        case Value::Kind::Namespace: return "Namespace";
        case Value::Kind::Function: return "builtin_function_or_method";
        case Value::Kind::Macro: return "Macro";
        case Value::Kind::Loop: return "LoopContext";
    }
    return "object";
}

std::string py_float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    // Shortest round-trip digits, laid out as Python's repr: positional for exponents -4..15,
    // scientific (at least two exponent digits) otherwise; integral values keep ".0".
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    const std::string sci(buf, res.ptr);
    const std::size_t e = sci.find('e');
    const bool negative = sci[0] == '-';
    std::string digits;
    for (std::size_t i = negative ? 1 : 0; i < e; ++i)
        if (sci[i] != '.') digits += sci[i];
    const int exp = std::stoi(sci.substr(e + 1));
    std::string out = negative ? "-" : "";
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
        } else {
            const auto int_len = static_cast<std::size_t>(exp + 1);
            if (digits.size() <= int_len) {
                out += digits + std::string(int_len - digits.size(), '0') + ".0";
            } else {
                out += digits.substr(0, int_len) + "." + digits.substr(int_len);
            }
        }
    } else {
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char exp_buf[16];
        std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        out += exp_buf;
    }
    return out;
}

std::string to_str(Runtime& rt, const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return {};
        case Value::Kind::None: return "None";
        case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
        case Value::Kind::Int: return std::to_string(v.as_int());
        case Value::Kind::Float: return py_float_repr(v.as_float());
        case Value::Kind::String: rt.bytes(v.str().size()); return v.str();
        case Value::Kind::Function: return "<built-in function " + v.function().name() + ">";
        case Value::Kind::Macro: return "<Macro '" + macro_name(*v.macro()) + "'>";
        case Value::Kind::Loop: {
            const LoopState& l = *v.loop();
            return "<LoopContext " + std::to_string(l.index + 1) + "/" + std::to_string(l.items->items.size()) + ">";
        }
        default: return repr(rt, v);
    }
}

std::string repr(Runtime& rt, const Value& v) {
    std::string out;
    append_repr(rt, out, v);
    return out;
}

void undefined_error(const Value& v) { throw Failure(v.undefined_hint()); }

bool equals(Runtime& rt, const Value& a, const Value& b) {
    rt.step();
    if (a.is_number() && b.is_number()) {
        if (a.is_integer() && b.is_integer()) return a.as_int() == b.as_int();
        return a.as_float() == b.as_float();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::Undefined:
        case Value::Kind::None: return true;
        case Value::Kind::String: rt.bytes(std::min(a.str().size(), b.str().size())); return a.str() == b.str();
        case Value::Kind::Array: {
            const Array &x = a.array(), &y = b.array();
            if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
            for (std::size_t i = 0; i < x.items.size(); ++i)
                if (!equals(rt, x.items[i], y.items[i])) return false;
            return true;
        }
        case Value::Kind::Map: {
            const Map &x = a.map(), &y = b.map();
            if (x.items.size() != y.items.size()) return false;
            for (const auto& [k, v] : x.items) {
                const Value* other = y.find(k);
                if (other == nullptr || !equals(rt, v, *other)) return false;
            }
            return true;
        }
        default: return a.identity() == b.identity();
    }
}

int compare(Runtime& rt, const Value& a, const Value& b) {
    rt.step();
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    if (a.is_number() && b.is_number()) {
        if (a.is_integer() && b.is_integer()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
        const double x = a.as_float(), y = b.as_float();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) {
        rt.bytes(std::min(a.str().size(), b.str().size()));
        const int c = a.str().compare(b.str());  // byte order is code point order in UTF-8
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (a.is(Value::Kind::Array) && b.is(Value::Kind::Array) && a.array().tuple == b.array().tuple) {
        const auto &x = a.array().items, &y = b.array().items;
        for (std::size_t i = 0; i < x.size() && i < y.size(); ++i)
            if (!equals(rt, x[i], y[i])) return compare(rt, x[i], y[i]);
        return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
    throw Failure("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool contains(Runtime& rt, const Value& container, const Value& item) {
    switch (container.kind()) {
        case Value::Kind::Undefined: return false;
        case Value::Kind::String:
            if (!item.is_string())
                throw Failure("'in <string>' requires string as left operand, not " + type_name(item));
            rt.search(container.str().size(), item.str().size());
            return container.str().find(item.str()) != std::string::npos;
        case Value::Kind::Array:
            for (const Value& v : container.array().items)
                if (equals(rt, v, item)) return true;
            return false;
        case Value::Kind::Map:
            if (item.is_string()) return container.map().find(item.str()) != nullptr;
            if (item.is(Value::Kind::Map) || (item.is(Value::Kind::Array) && !item.array().tuple))
                throw Failure("unhashable type: '" + type_name(item) + "'");
            return false;
        default: throw Failure("argument of type '" + type_name(container) + "' is not iterable");
    }
}

std::shared_ptr<const Array> iterate(Runtime& rt, const Value& v) {
    std::vector<Value> items;
    switch (v.kind()) {
        case Value::Kind::Array: return v.array_ptr();
        case Value::Kind::Undefined: break;
        case Value::Kind::Map:
            rt.items(v.map().items.size());
            rt.new_items(v.map().items.size());
            for (const auto& e : v.map().items) items.emplace_back(e.first);
            break;
        case Value::Kind::String: {
            const std::string& s = v.str();
            rt.chars(s.size());
            const auto starts = code_point_starts(s);
            rt.new_values(starts.size());
            rt.new_items(starts.size());
            rt.allocate(s.size());
            for (std::size_t i = 0; i + 1 < starts.size(); ++i)
                items.emplace_back(s.substr(starts[i], starts[i + 1] - starts[i]));
            break;
        }
        default: throw Failure("'" + type_name(v) + "' object is not iterable");
    }
    return Value::list(std::move(items)).array_ptr();
}

Value binary_op(Runtime& rt, BinaryOp op, const Value& a, const Value& b) {
    static const char* const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    const std::string name = names[static_cast<int>(op)];
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    const bool ints = a.is_integer() && b.is_integer();
    const bool numbers = a.is_number() && b.is_number();
    switch (op) {
        case BinaryOp::Add:
            if (ints) return Value(add_int(a.as_int(), b.as_int()));
            if (numbers) return Value(a.as_float() + b.as_float());
            if (a.is_string() && b.is_string()) {
                rt.new_string(a.str().size() + b.str().size());
                return Value(a.str() + b.str());
            }
            if (a.is(Value::Kind::Array) && b.is(Value::Kind::Array) && a.array().tuple == b.array().tuple) {
                const auto &x = a.array().items, &y = b.array().items;
                rt.items(x.size() + y.size());
                rt.new_items(x.size() + y.size());
                std::vector<Value> items(x);
                items.insert(items.end(), y.begin(), y.end());
                return Value::list(std::move(items), a.array().tuple);
            }
            break;
        case BinaryOp::Sub:
            if (ints) return Value(sub_int(a.as_int(), b.as_int()));
            if (numbers) return Value(a.as_float() - b.as_float());
            break;
        case BinaryOp::Mul:
            if (ints) return Value(mul_int(a.as_int(), b.as_int()));
            if (numbers) return Value(a.as_float() * b.as_float());
            if ((a.is_string() || a.is(Value::Kind::Array)) && b.is_integer()) return repeat(rt, a, b.as_int());
            if ((b.is_string() || b.is(Value::Kind::Array)) && a.is_integer()) return repeat(rt, b, a.as_int());
            break;
        case BinaryOp::Div:
            if (numbers) {
                if (b.as_float() == 0.0) throw Failure("division by zero");
                return Value(a.as_float() / b.as_float());
            }
            break;
        case BinaryOp::FloorDiv:
        case BinaryOp::Mod:
            if (numbers) {
                if (b.as_float() == 0.0) throw Failure("integer division or modulo by zero");
                if (ints) {
                    const std::int64_t q = floor_div(a.as_int(), b.as_int());
                    return op == BinaryOp::FloorDiv ? Value(q) : Value(a.as_int() - q * b.as_int());
                }
                const double x = a.as_float(), y = b.as_float();
                if (op == BinaryOp::FloorDiv) return Value(std::floor(x / y));
                double m = std::fmod(x, y);
                if (m != 0.0 && ((m < 0) != (y < 0))) m += y;  // Python: the result takes the divisor's sign
                return Value(m);
            }
            if (a.is_string() && op == BinaryOp::Mod)
                throw Failure("printf-style string formatting (%) is not supported");
            break;
        case BinaryOp::Pow:
            if (ints && b.as_int() >= 0) return Value(int_pow(a.as_int(), b.as_int()));
            if (numbers) {
                if (a.as_float() == 0.0 && b.as_float() < 0) throw Failure("0.0 cannot be raised to a negative power");
                return Value(std::pow(a.as_float(), b.as_float()));
            }
            break;
    }
    type_error(name, a, b);
}

Value negate(const Value& v) {
    if (v.is_undefined()) undefined_error(v);
    if (v.is_integer()) {
        return Value(sub_int(0, v.as_int()));
    }
    if (v.is(Value::Kind::Float)) return Value(-v.as_float());
    throw Failure("bad operand type for unary -: '" + type_name(v) + "'");
}

}  // namespace wp::jinja

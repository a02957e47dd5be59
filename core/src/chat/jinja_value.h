// The chat-template interpreter's values: Python's value model as jinja2 templates see it (with
// jinja2's Undefined), the budget of one render (Runtime), call arguments, and Python's semantics
// of values (truthiness, str/repr, comparison, arithmetic). Used by the evaluator
// and the built-ins; code outside core/src/chat uses ChatTemplate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "wp/chat/chat_template.h"

namespace wp::jinja {

// A runtime error without a position; the renderer adds the line it was evaluating.
class Failure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Value;
class Function;
class Runtime;
struct Macro;  // defined by the evaluator
std::string macro_name(const Macro& m);

using Entries = std::vector<std::pair<std::string, Value>>;

// jinja2's Undefined: falsy, prints as "", iterates as empty; `hint` says why ("'x' is undefined")
// for the error raised when it is used where a value is required.
struct Undefined {
    std::string hint;
};
struct None {};

// Containers are immutable once built (the sandbox forbids mutating lists and dicts), so values
// share them. Only namespaces are mutable.
struct Array {
    std::vector<Value> items;
    bool tuple = false;
    int depth = 1;                 // nesting depth, bounded so recursive helpers cannot overflow the stack
    bool holds_reference = false;  // contains a namespace, loop or function (see Namespace)
};

struct Map {
    Entries items;  // insertion order, as Python dicts and the input JSON
    int depth = 1;
    bool holds_reference = false;
    const Value* find(std::string_view key) const;
};

// `namespace(...)`: the one mutable object. Its attributes may not hold namespaces, loops or
// functions (directly or inside containers), which rules out reference cycles and keeps nesting bounded.
struct Namespace {
    Entries attrs;
};

// The `loop` variable; the evaluator advances `index` in place, as jinja2's LoopContext does.
struct LoopState {
    std::shared_ptr<const Array> items;
    std::size_t index = 0;
};

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Map, Namespace, Function, Macro, Loop };

    Value() : v_(Undefined{}) {}
    static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
    static Value none() { return Value(None{}); }
    Value(bool b) : v_(b) {}
    Value(int i) : v_(std::int64_t{i}) {}
    Value(std::int64_t i) : v_(i) {}
    Value(double d) : v_(d) {}
    Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
    Value(const char* s) : Value(std::string(s)) {}
    // Checks the nesting bound and notes references; throws Failure when nested too deeply.
    static Value list(std::vector<Value> items, bool tuple = false);
    static Value dict(Entries items);
    Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}
    Value(std::shared_ptr<const Function> f) : v_(std::move(f)) {}
    Value(std::shared_ptr<const Macro> m) : v_(std::move(m)) {}
    Value(std::shared_ptr<LoopState> l) : v_(std::move(l)) {}

    Kind kind() const { return static_cast<Kind>(v_.index()); }
    bool is(Kind k) const { return kind() == k; }
    bool is_undefined() const { return is(Kind::Undefined); }
    bool is_none() const { return is(Kind::None); }
    bool is_string() const { return is(Kind::String); }
    bool is_number() const { return is(Kind::Bool) || is(Kind::Int) || is(Kind::Float); }  // Python: bool is an int
    bool is_integer() const { return is(Kind::Bool) || is(Kind::Int); }                    // int or bool

    bool as_bool() const { return std::get<bool>(v_); }
    std::int64_t as_int() const;  // Bool or Int
    double as_float() const;      // any number
    const std::string& str() const { return *std::get<StringPtr>(v_); }
    const Array& array() const { return *std::get<ArrayPtr>(v_); }
    const std::shared_ptr<const Array>& array_ptr() const { return std::get<ArrayPtr>(v_); }
    const Map& map() const { return *std::get<MapPtr>(v_); }
    Namespace& ns() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
    const Function& function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
    const std::shared_ptr<const Macro>& macro() const { return std::get<std::shared_ptr<const Macro>>(v_); }
    const std::shared_ptr<LoopState>& loop() const { return std::get<std::shared_ptr<LoopState>>(v_); }
    const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

    int depth() const;             // containers: nesting depth; others 0
    bool holds_reference() const;  // a namespace, loop or function, or a container holding one
    const void* identity() const;  // the shared object, for `is sameas`; nullptr for scalars

private:
    using StringPtr = std::shared_ptr<const std::string>;
    using ArrayPtr = std::shared_ptr<const Array>;
    using MapPtr = std::shared_ptr<const Map>;
    explicit Value(Undefined u) : v_(std::move(u)) {}
    explicit Value(None n) : v_(n) {}
    explicit Value(ArrayPtr a) : v_(std::move(a)) {}
    explicit Value(MapPtr m) : v_(std::move(m)) {}

    std::variant<Undefined, None, bool, std::int64_t, double, StringPtr, ArrayPtr, MapPtr, std::shared_ptr<Namespace>,
                 std::shared_ptr<const Function>, std::shared_ptr<const Macro>, std::shared_ptr<LoopState>>
        v_;
};

// Deepest container nesting a value may have (JSON input included). Values built from namespaces
// can be at most twice as deep, still far from the stack's limit.
constexpr int kMaxNesting = 200;

// The budget of one render (see TemplateLimits) and the line being evaluated, for error messages.
class Runtime {
public:
    explicit Runtime(const TemplateLimits& limits) : limits_(limits) {}
    const TemplateLimits& limits() const { return limits_; }

    void step(std::size_t n = 1) {
        if (n > limits_.max_steps - steps_) over_steps();  // steps_ never exceeds max_steps
        steps_ += n;
    }
    void items(std::size_t n) { step(n); }           // an operation touching n items
    void bytes(std::size_t n) { step(n / 16 + 1); }  // copying or comparing n bytes
    void chars(std::size_t n) { step(n + 1); }       // decoding, classifying or case-mapping n bytes of text
    void new_values(std::size_t n) { step(4 * n); }  // n values that each take an allocation (strings, lists)
    // Substring searches (std::string::find) may compare the whole needle at every position.
    void search(std::size_t haystack, std::size_t needle) {
        std::size_t work = 0;
        if (__builtin_mul_overflow(haystack, needle + 1, &work)) work = SIZE_MAX;
        step(work / 64 + 1);
    }
    // A string of `n` bytes is about to exist: larger than the output bound it could never be
    // printed, so it is refused (callers check before taking the memory where they can).
    void check_string(std::size_t n) const;
    // The text of a value built so far (repr, JSON) may not outgrow the output bound either.
    void check_text(const std::string& text) const;
    void new_string(std::size_t n) {  // a string built at once
        check_string(n);
        bytes(n);
        allocate(n);
    }
    // Strings built piece by piece: call after appending `added` bytes to `out`.
    void grew(const std::string& out, std::size_t added) {
        bytes(added);
        check_string(out.size());
        allocate(added);
    }
    // A list or dict of `n` items is about to be built (call before taking the memory).
    void new_items(std::size_t n) {
        std::size_t size = 0;
        allocate(__builtin_mul_overflow(n, sizeof(Value), &size) ? SIZE_MAX : size);
    }
    // Counts `n` bytes of created values against TemplateLimits::max_value_bytes.
    void allocate(std::size_t n) {
        if (n > limits_.max_value_bytes - allocated_) over_memory();  // allocated_ never exceeds the limit
        allocated_ += n;
    }
    void iteration();

    int line = 0;

private:
    [[noreturn]] void over_steps() const;
    [[noreturn]] void over_memory() const;
    const TemplateLimits& limits_;
    std::size_t steps_ = 0;
    std::size_t iterations_ = 0;
    std::size_t allocated_ = 0;
};

// Arguments of a call: positional and keyword, consumed by the callee by position or name.
class Args {
public:
    std::vector<Value> positional;
    Entries keyword;

    // The argument at `index` or named `name`; nullptr when the call gave neither.
    const Value* get(std::size_t index, std::string_view name);
    const Value* keyword_arg(std::string_view name) { return get(SIZE_MAX, name); }
    // Everything from position `index` on, as arguments of another callable (map, select).
    Args rest(std::size_t index);
    // Rejects arguments the callee did not take, naming `what`: a typo must not pass silently.
    void finish(std::string_view what) const;

private:
    std::size_t positional_used_ = 0;
    std::vector<bool> keyword_used_;
};

// Built-in functions and bound methods (range, "a b".split, loop.cycle, ...).
class Function {
public:
    virtual ~Function() = default;
    virtual Value call(Runtime& rt, Args& args) const = 0;
    virtual std::string name() const = 0;
};

// ---- Python semantics of values ----

bool truthy(const Value& v);
std::string type_name(const Value& v);            // Python's: "str", "int", "NoneType", ...
std::string to_str(Runtime& rt, const Value& v);  // str(v); Undefined prints as ""
std::string repr(Runtime& rt, const Value& v);
std::string py_float_repr(double d);
bool equals(Runtime& rt, const Value& a, const Value& b);
// a < b as -1, a == b as 0, a > b as 1; throws Failure for unorderable types.
int compare(Runtime& rt, const Value& a, const Value& b);
bool contains(Runtime& rt, const Value& container, const Value& item);  // item in container
// The items a for loop visits: lists, tuples, dict keys, string characters; Undefined gives none.
std::shared_ptr<const Array> iterate(Runtime& rt, const Value& v);
// Throws the Failure jinja2 raises when an undefined value is used as a real one.
[[noreturn]] void undefined_error(const Value& v);

enum class BinaryOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
Value binary_op(Runtime& rt, BinaryOp op, const Value& a, const Value& b);
Value negate(const Value& v);

}  // namespace wp::jinja

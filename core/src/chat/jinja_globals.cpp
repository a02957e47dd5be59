// The globals transformers gives chat templates: range, dict, namespace, raise_exception and
// strftime_now; and the sandbox's rule for what a namespace may hold.
#include <algorithm>
#include <ctime>
#include <iomanip>
#include <locale>
#include <memory>
#include <sstream>

#include "chat/jinja_args.h"
#include "chat/jinja_builtins.h"

namespace wp::jinja {

namespace {

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
        // A named copy of the binding: clang before 16 cannot capture structured bindings.
        auto it = std::find_if(out.begin(), out.end(), [&key = k](const auto& e) { return e.first == key; });
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

}  // namespace wp::jinja

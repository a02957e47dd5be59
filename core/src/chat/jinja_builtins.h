// The chat-template built-ins as the evaluator reaches them: filters (jinja_filters.cpp), tests
// (jinja_tests.cpp), globals (jinja_globals.cpp), and attribute, item and slice access, which is
// where str, list and dict methods and the loop object's attributes come from (jinja_methods.cpp).
// Nothing here touches files, the network or the environment; the only outside input is the clock
// behind strftime_now.
#pragma once

#include <string>
#include <string_view>

#include "chat/jinja_value.h"

namespace wp::jinja {

using FilterFn = Value (*)(Runtime& rt, const Value& input, Args& args);
using TestFn = bool (*)(Runtime& rt, const Value& input, Args& args);
FilterFn find_filter(std::string_view name);  // nullptr when unknown
TestFn find_test(std::string_view name);
Value find_global(std::string_view name);  // range, namespace, dict, raise_exception, strftime_now

// `{% set ns.name = v %}` and namespace(name=v); refuses the values Namespace rules out.
void set_namespace_attr(Runtime& rt, Namespace& ns, const std::string& name, Value v);

Value get_attr(Runtime& rt, const Value& obj, const std::string& name);  // obj.name
Value get_item(Runtime& rt, const Value& obj, const Value& key);         // obj[key]
Value get_slice(Runtime& rt, const Value& obj, const Value& start, const Value& stop, const Value& step);

}  // namespace wp::jinja

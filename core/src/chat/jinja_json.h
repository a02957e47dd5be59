// JSON in and out of chat templates: the context a template renders with, and Python's json.dumps
// for the tojson filter.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "chat/jinja_value.h"

namespace wp::jinja {

// The context's JSON as template values; throws Failure when nested more than kMaxNesting deep.
Value from_json(const nlohmann::ordered_json& j);

struct JsonStyle {
    bool indented = false;
    std::string indent;
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
    bool ensure_ascii = false;
};
std::string to_json(Runtime& rt, const Value& v, const JsonStyle& style);  // Python's json.dumps

}  // namespace wp::jinja

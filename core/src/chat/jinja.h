// The chat-template interpreter's entry point: a parsed template and its render, following jinja2
// 3.1 as transformers configures it (sandboxed, trim_blocks, lstrip_blocks, loop controls, the
// {% generation %} tag). ChatTemplate (wp/chat/chat_template.h) wraps it for the rest of the code.
// Parsing and evaluation: jinja.cpp; values with Python's semantics: jinja_value.h; Python's str on
// UTF-8: jinja_strings.h; methods, filters, tests and globals: jinja_builtins.h.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "wp/chat/chat_template.h"

namespace wp::jinja {

struct Stmt;

// A parsed template. Rendering does not modify it, so one Template may render on several threads.
class Template {
public:
    explicit Template(std::string_view source);  // throws TemplateError on a syntax error
    ~Template();
    Template(const Template&) = delete;
    Template& operator=(const Template&) = delete;

    // Throws TemplateError: raise_exception's message as is, other errors with their line.
    std::string render(const nlohmann::ordered_json& context, const TemplateLimits& limits) const;

private:
    std::vector<std::unique_ptr<Stmt>> body_;
};

}  // namespace wp::jinja

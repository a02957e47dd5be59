// The chat-template interpreter's entry point: a parsed template and its render, following jinja2
// 3.1 as transformers configures it (sandboxed, trim_blocks, lstrip_blocks, loop controls, the
// {% generation %} tag). ChatTemplate (wp/chat/chat_template.h) wraps it for the rest of the code.
// The parts, in the order a template meets them:
//   jinja_lexer.h     source text to tokens
//   jinja_ast.h       the parsed tree, built by jinja_parser.cpp (Template's constructor)
//   jinja_eval.cpp    what each node does (render)
//   jinja_value.h     values with Python's semantics; jinja_strings.h: Python's str on UTF-8;
//                     jinja_json.h: the context in, json.dumps out
//   jinja_builtins.h  methods (jinja_methods.cpp), filters, tests and globals (jinja_<kind>.cpp)
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

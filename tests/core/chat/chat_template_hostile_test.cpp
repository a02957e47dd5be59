// Chat templates written to break the sandbox: each must end, quickly, in a one-line TemplateError
// in the project's own words (never a crash, a hang or a runaway allocation).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "test_support.h"
#include "wp/chat/chat_template.h"

namespace wp::test {
namespace {

using nlohmann::ordered_json;
using testing::HasSubstr;
using testing::Not;

// The message of the TemplateError that parsing or rendering `tmpl` throws, checked to come within
// a few seconds and on one line.
std::string hostile_error(const std::string& tmpl, const ordered_json& ctx = ordered_json::object()) {
    const auto start = std::chrono::steady_clock::now();
    std::string message = "no error";
    try {
        ChatTemplate(tmpl).render(ctx);
    } catch (const TemplateError& e) {
        message = e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, time_bound(std::chrono::seconds(3))) << message;
    EXPECT_THAT(message, Not(HasSubstr("\n")));
    return message;
}

std::string repeated(const std::string& piece, int n) {
    std::string out;
    out.reserve(piece.size() * static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out += piece;
    return out;
}

// ---- Depth: every shape of nesting is bounded before the tree is built ----

TEST(ChatTemplateHostile, LongOperatorChainsAreRefused) {
    const std::string too_deep = "nested more than 256 levels deep";
    EXPECT_THAT(hostile_error("{{ 1" + repeated(" + 1", 60'000) + " }}"), HasSubstr(too_deep));
    for (const char* op : {" - 1", " * 1", " / 1", " // 1", " % 1", " ** 1", " and 1", " or 1", " if 1"})
        EXPECT_THAT(hostile_error("{{ 1" + repeated(op, 60'000) + " }}"), HasSubstr(too_deep)) << op;
    // `a if b else c if ...` nests to the right, through the parser's own depth bound.
    EXPECT_THAT(hostile_error("{{ 1" + repeated(" if 1 else 1", 60'000) + " }}"), HasSubstr("levels deep"));
    EXPECT_THAT(hostile_error("{{ x" + repeated("|upper", 100'000) + " }}"), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ x" + repeated(" is defined", 100'000) + " }}"), HasSubstr("syntax error"));
    EXPECT_THAT(hostile_error("{{ x" + repeated(".a", 100'000) + " }}"), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ x" + repeated("[0]", 100'000) + " }}"), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ f" + repeated("()", 100'000) + " }}"), HasSubstr(too_deep));
    // Chains nested in brackets add up: (((1 + 1 ...) + 1 ...) + 1 ...), 30 levels of 50 operators each.
    EXPECT_THAT(hostile_error("{{ " + std::string(30, '(') + "1" + repeated(repeated(" + 1", 50) + ")", 30) + " }}"),
                HasSubstr(too_deep));
}

TEST(ChatTemplateHostile, DeepBracketsAndBlocksAreRefused) {
    const std::string too_deep = "nested more than 100 levels deep";
    EXPECT_THAT(hostile_error("{{ " + std::string(100'000, '(') + "1" + std::string(100'000, ')') + " }}"),
                HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ " + std::string(100'000, '[') + "1" + std::string(100'000, ']') + " }}"),
                HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ " + repeated("{'a': ", 100'000) + "1" + std::string(100'000, '}') + " }}"),
                HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ " + repeated("f(", 100'000) + std::string(100'000, ')') + " }}"),
                HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ " + repeated("x[", 100'000) + "0" + std::string(100'000, ']') + " }}"),
                HasSubstr(too_deep));
    // Unclosed brackets are a syntax error found by the lexer.
    for (const char* open : {"(", "[", "{", "x[", "f("})
        EXPECT_THAT(hostile_error("{{ " + repeated(open, 100'000) + " }}"), HasSubstr("syntax error")) << open;
    EXPECT_THAT(hostile_error("{{ " + repeated("-", 100'000) + "1 }}"), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error("{{ " + repeated("not ", 100'000) + "1 }}"), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error(repeated("{% if 1 %}", 100'000)), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error(repeated("{% for x in y %}", 100'000)), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error(repeated("{% macro m() %}", 100'000)), HasSubstr(too_deep));
    EXPECT_THAT(hostile_error(repeated("{% filter upper %}", 100'000)), HasSubstr(too_deep));
}

TEST(ChatTemplateHostile, DeepButAllowedExpressionsRender) {
    // Just under the bounds, evaluation recurses without trouble.
    EXPECT_EQ(ChatTemplate("{{ 0" + repeated(" + 1", 255) + " }}").render({}), "255");
    EXPECT_EQ(ChatTemplate("{{ 'a'" + repeated("|upper", 255) + " }}").render({}), "A");
    EXPECT_EQ(ChatTemplate("{{ " + std::string(45, '(') + "7" + std::string(45, ')') + " }}").render({}), "7");
}

// ---- Memory: lists, dicts and strings share one budget ----

TEST(ChatTemplateHostile, ListDoublingStopsAtTheMemoryLimit) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THAT(hostile_error("{% set ns = namespace(l=[0]) %}{% for i in range(26) %}{% set ns.l = ns.l + ns.l %}"
                              "{% endfor %}{{ ns.l|length }}"),
                HasSubstr("more than 64 MB of lists, dicts and strings"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, time_bound(std::chrono::seconds(1)));
    EXPECT_THAT(hostile_error("{% set l = [0] * 2 ** 20 %}{% set m = l * 16 %}"), HasSubstr("64 MB"));
    EXPECT_THAT(hostile_error("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
                              "{% set ns.l = ns.l + ['x' * 4000000] %}{% endfor %}"),
                HasSubstr("64 MB"));
    EXPECT_THAT(hostile_error("{% set l = [0] * 1000000 %}{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
                              "{% set ns.l = ns.l + [l[1:]] %}{% endfor %}"),
                HasSubstr("64 MB"));
}

TEST(ChatTemplateHostile, MemoryLimitIsAdjustable) {
    TemplateLimits small;
    small.max_value_bytes = 1 << 20;
    EXPECT_EQ(ChatTemplate("{{ ('x' * 1000000)|length }}").render({}, small), "1000000");
    try {
        ChatTemplate("{{ ('x' * 600000 ~ 'y' * 600000)|length }}").render({}, small);
        ADD_FAILURE() << "no error";
    } catch (const TemplateError& e) {
        EXPECT_THAT(e.what(), HasSubstr("more than 1 MB of lists, dicts and strings"));
    }
}

// ---- Time: the step budget covers the statements and the variable lookups ----

TEST(ChatTemplateHostile, ManySetStatementsEndQuickly) {
    std::string distinct;
    for (int i = 0; i < 100'000; ++i) distinct += "{% set v" + std::to_string(i) + " = " + std::to_string(i) + " %}";
    EXPECT_THAT(hostile_error(distinct), HasSubstr("more than 50000000 evaluation steps"));
    // The same name over and over is cheap and renders.
    EXPECT_EQ(ChatTemplate(repeated("{% set x = 1 %}", 100'000) + "{{ x }}").render({}), "1");
    std::string lookups = "{% set a = 1 %}";
    for (int i = 0; i < 2'000; ++i) lookups += "{% set w" + std::to_string(i) + " = 0 %}";
    EXPECT_THAT(hostile_error(lookups + "{% for i in range(100000) %}{{ a }}{% endfor %}"),
                HasSubstr("evaluation steps"));
}

}  // namespace
}  // namespace wp::test

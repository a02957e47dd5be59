// parse_json / parse_json_file on hostile input: nesting far past the limit (refused while parsing,
// without deep recursion), malformed text (a position, not the parser's internals), oversized text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "test_support.h"
#include "wp/error.h"
#include "wp/io/json_file.h"

namespace wp::test {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(ParseJson, KeepsKeyOrder) {
    const auto j = parse_json(R"({"b": 1, "a": [true, null, "x"]})", "t.json");
    EXPECT_EQ(j.dump(), R"({"b":1,"a":[true,null,"x"]})");
}

TEST(ParseJson, DeepNestingIsRefusedWhileParsing) {
    for (const char* open : {"[", "{\"a\":"}) {
        std::string deep;
        for (int i = 0; i < 100000; ++i) deep += open;
        EXPECT_EQ(error_of([&] { parse_json(deep, "deep.json"); }), "deep.json: nested more than 200 levels deep");
    }
    // At the limit it parses.
    const std::string ok = std::string(200, '[') + std::string(200, ']');
    EXPECT_NO_THROW(parse_json(ok, "ok.json"));
    EXPECT_THAT(error_of([] { parse_json("[[[]]]", "x.json", {.max_depth = 2}); }), HasSubstr("nested more than 2"));
}

TEST(ParseJson, ManySiblingObjectsParseInLinearTime) {
    // A messages file of 200,000 small objects: nlohmann's callback parser would rescan the list
    // as each one closes.
    std::string text = "[";
    for (int i = 0; i < 200000; ++i) text += (i ? "," : "") + std::string(R"({"role":"user","content":"x"})");
    text += "]";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(parse_json(text, "many.json").size(), 200000u);
    EXPECT_EQ((parse_json<nlohmann::json>(text, "many.json").size()), 200000u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(10)));
}

TEST(ParseJson, OrderedObjectsHaveBoundedKeys) {
    // Keys in file order cost a scan per insert: an object of 200,000 keys is refused as it parses.
    std::string text = "{";
    for (int i = 0; i < 200000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
    text += "}";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(error_of([&] { parse_json(text, "keys.json"); }), "keys.json: an object with more than 20000 keys");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, time_bound(std::chrono::seconds(5)));
    // Unordered objects take any number (tokenizer.json's vocabulary has hundreds of thousands).
    EXPECT_EQ((parse_json<nlohmann::json>(text, "keys.json").size()), 200000u);
}

TEST(ParseJson, MalformedTextGivesAPositionNotInternals) {
    const std::string e = error_of([] { parse_json("{\n  \"a\": nope\n}", "m.json"); });
    EXPECT_THAT(e, HasSubstr("m.json: not valid JSON at line 2, column"));
    EXPECT_THAT(e, Not(HasSubstr("json.exception")));
    EXPECT_THAT(error_of([] { parse_json("", "empty.json"); }), HasSubstr("empty.json: not valid JSON at line 1"));
    EXPECT_THAT(error_of([] { parse_json("[1e999]", "n.json"); }), HasSubstr("n.json: not valid JSON"));
}

TEST(ParseJson, SizeIsBounded) {
    EXPECT_THAT(error_of([] { parse_json("[1, 2, 3]", "s.json", {.max_bytes = 4}); }),
                HasSubstr("s.json: larger than the limit of 4 bytes"));
    TempDir d;
    write_text(d.path() / "big.json", "[1, 2, 3]");
    EXPECT_THAT(error_of([&] { parse_json_file(d.path() / "big.json", {.max_bytes = 4}); }),
                HasSubstr("big.json: larger than the limit of 4 bytes"));
    EXPECT_EQ(parse_json_file(d.path() / "big.json").size(), 3u);
}

}  // namespace
}  // namespace wp::test

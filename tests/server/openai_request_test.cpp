// The request parser of `serve` (app/server/openai_request.h): what it takes, and that every
// refusal names the parameter at fault.
#include "openai_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace wp::server {
namespace {

// The param a refusal names ("" when the body passes), with its status.
std::string refused(const std::string& body, CompletionRequest (*parse)(std::string_view) = parse_chat_request,
                    int* status = nullptr) {
    try {
        parse(body);
    } catch (const RequestError& e) {
        if (status) *status = e.status();
        EXPECT_FALSE(std::string(e.what()).empty());
        return e.param().empty() ? "<null>" : e.param();
    }
    return "";
}

const std::string kMsgs = R"("messages":[{"role":"user","content":"Hi"}])";
std::string chat(const std::string& extra) { return R"({"model":"m",)" + kMsgs + (extra.empty() ? "" : "," + extra) + "}"; }
std::string text(const std::string& extra) { return R"({"model":"m","prompt":"Hi")" + (extra.empty() ? "" : "," + extra) + "}"; }

TEST(OpenAIRequest, ChatDefaultsAreOpenAIs) {
    const CompletionRequest r = parse_chat_request(chat(""));
    EXPECT_EQ(r.kind, CompletionRequest::Kind::Chat);
    EXPECT_EQ(r.model, "m");
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].role, "user");
    EXPECT_EQ(r.messages[0].content, "Hi");
    EXPECT_FALSE(r.sampling.greedy);
    EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
    EXPECT_FALSE(r.max_tokens);
    EXPECT_EQ(r.top_logprobs, -1);
    EXPECT_FALSE(r.stream);
    EXPECT_FALSE(r.seeded);
}

TEST(OpenAIRequest, TemperatureZeroIsGreedy) {
    EXPECT_TRUE(parse_chat_request(chat(R"("temperature":0)")).sampling.greedy);
    const auto r = parse_chat_request(chat(R"("temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"seed":-7)"));
    EXPECT_FALSE(r.sampling.greedy);
    EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
    EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
    EXPECT_EQ(r.sampling.top_k, 40);
    EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
    EXPECT_TRUE(r.seeded);
    EXPECT_EQ(r.sampling.seed, static_cast<std::uint64_t>(std::int64_t{-7}));
}

TEST(OpenAIRequest, ContentPartsAreJoinedTextAndOtherPartsRefused) {
    const auto r = parse_chat_request(
        R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})");
    EXPECT_EQ(r.messages[0].content, "a\nb");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})"),
              "messages[0].content[0].type");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]})"),
              "messages[0].content[0].text");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":null}]})"), "messages[0].content");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"tool","content":"x"}]})"), "messages[0].role");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":"x","name":"bob"}]})"), "messages[0].name");
    EXPECT_EQ(refused(R"({"model":"m","messages":[]})"), "messages");
    EXPECT_EQ(refused(R"({"model":"m","messages":"hi"})"), "messages");
    EXPECT_EQ(refused(R"({"model":"m"})"), "messages");
}

TEST(OpenAIRequest, UnknownParametersAreRefusedByName) {
    for (const char* key : {"logit_bias", "tools", "response_format", "echo", "best_of", "file", "path"})
        EXPECT_EQ(refused(chat("\"" + std::string(key) + "\":1")), key);
    EXPECT_EQ(refused(text(R"("echo":true)"), parse_completion_request), "echo");
    EXPECT_EQ(refused(text(R"("top_logprobs":2)"), parse_completion_request), "top_logprobs");
    EXPECT_EQ(refused(chat(R"("stream":true,"stream_options":{"continuous_usage_stats":true})")),
              "stream_options.continuous_usage_stats");
}

TEST(OpenAIRequest, WrongTypesNameTheField) {
    EXPECT_EQ(refused(chat(R"("temperature":"hot")")), "temperature");
    EXPECT_EQ(refused(chat(R"("max_tokens":1.5)")), "max_tokens");
    EXPECT_EQ(refused(chat(R"("max_tokens":"10")")), "max_tokens");
    EXPECT_EQ(refused(chat(R"("stream":1)")), "stream");
    EXPECT_EQ(refused(chat(R"("seed":"x")")), "seed");
    EXPECT_EQ(refused(chat(R"("top_k":2.5)")), "top_k");
    EXPECT_EQ(refused(R"({"model":5,)" + kMsgs + "}"), "model");
    EXPECT_EQ(refused("{" + kMsgs + "}"), "model");
    EXPECT_EQ(refused(chat(R"("logprobs":1)")), "logprobs");
    EXPECT_EQ(refused(text(R"("logprobs":true)"), parse_completion_request), "logprobs");
    EXPECT_EQ(parse_chat_request(chat(R"("max_tokens":12.0)")).max_tokens, 12);
}

TEST(OpenAIRequest, RangesAreChecked) {
    EXPECT_EQ(refused(chat(R"("temperature":2.5)")), "temperature");
    EXPECT_EQ(refused(chat(R"("temperature":-1)")), "temperature");
    EXPECT_EQ(refused(chat(R"("top_p":0)")), "top_p");
    EXPECT_EQ(refused(chat(R"("min_p":1.5)")), "min_p");
    EXPECT_EQ(refused(chat(R"("max_tokens":0)")), "max_tokens");
    EXPECT_EQ(refused(chat(R"("max_completion_tokens":-3)")), "max_completion_tokens");
    EXPECT_EQ(refused(chat(R"("n":2)")), "n");
    EXPECT_EQ(refused(chat(R"("presence_penalty":0.5)")), "presence_penalty");
    EXPECT_EQ(refused(chat(R"("frequency_penalty":-0.1)")), "frequency_penalty");
    EXPECT_EQ(refused(chat(R"("repetition_penalty":0)")), "repetition_penalty");
    EXPECT_EQ(refused(chat(R"("seed":18446744073709551615)")), "seed");
    EXPECT_EQ(refused(chat(R"("n":1,"presence_penalty":0,"frequency_penalty":0,"user":"u")")), "");
}

TEST(OpenAIRequest, MaxCompletionTokensWinsOverMaxTokens) {
    EXPECT_EQ(parse_chat_request(chat(R"("max_tokens":5)")).max_tokens, 5);
    EXPECT_EQ(parse_chat_request(chat(R"("max_tokens":5,"max_completion_tokens":7)")).max_tokens, 7);
}

TEST(OpenAIRequest, StopTakesAStringOrUpToFourStrings) {
    EXPECT_EQ(parse_chat_request(chat(R"("stop":"\n")")).stop, std::vector<std::string>{"\n"});
    EXPECT_EQ(parse_chat_request(chat(R"("stop":["a","b","c","d"])")).stop.size(), 4u);
    EXPECT_TRUE(parse_chat_request(chat(R"("stop":null)")).stop.empty());
    EXPECT_EQ(refused(chat(R"("stop":["a","b","c","d","e"])")), "stop");
    EXPECT_EQ(refused(chat(R"("stop":["a",3])")), "stop[1]");
    EXPECT_EQ(refused(chat(R"("stop":["a",""])")), "stop[1]");
    EXPECT_EQ(refused(chat(R"("stop":"")")), "stop");
    EXPECT_EQ(refused(chat(R"("stop":{"a":1})")), "stop");
}

TEST(OpenAIRequest, LogprobsRanges) {
    EXPECT_EQ(parse_chat_request(chat(R"("logprobs":true)")).top_logprobs, 0);
    EXPECT_EQ(parse_chat_request(chat(R"("logprobs":true,"top_logprobs":20)")).top_logprobs, 20);
    EXPECT_EQ(parse_chat_request(chat(R"("logprobs":false)")).top_logprobs, -1);
    EXPECT_EQ(refused(chat(R"("logprobs":true,"top_logprobs":21)")), "top_logprobs");
    EXPECT_EQ(refused(chat(R"("logprobs":true,"top_logprobs":-1)")), "top_logprobs");
    EXPECT_EQ(refused(chat(R"("top_logprobs":3)")), "top_logprobs");  // needs logprobs: true
    EXPECT_EQ(parse_completion_request(text(R"("logprobs":5)")).top_logprobs, 5);
    EXPECT_EQ(parse_completion_request(text(R"("logprobs":0)")).top_logprobs, 0);
    EXPECT_EQ(refused(text(R"("logprobs":6)"), parse_completion_request), "logprobs");
}

TEST(OpenAIRequest, StreamOptionsOnlyWithStream) {
    EXPECT_TRUE(parse_chat_request(chat(R"("stream":true,"stream_options":{"include_usage":true})")).include_usage);
    EXPECT_EQ(refused(chat(R"("stream_options":{"include_usage":true})")), "stream_options");
    EXPECT_EQ(refused(chat(R"("stream":true,"stream_options":{"include_usage":"yes"})")), "stream_options.include_usage");
}

TEST(OpenAIRequest, PromptIsOneText) {
    EXPECT_EQ(parse_completion_request(text("")).prompt, "Hi");
    EXPECT_EQ(parse_completion_request(R"({"model":"m","prompt":["one"]})").prompt, "one");
    EXPECT_EQ(refused(R"({"model":"m","prompt":["a","b"]})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m","prompt":[1,2,3]})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m","prompt":[[1,2]]})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m","prompt":""})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m","prompt":7})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m"})", parse_completion_request), "prompt");
    EXPECT_EQ(refused(R"({"model":"m","prompt":"x","messages":[]})", parse_completion_request), "messages");
}

TEST(OpenAIRequest, MalformedBodiesAreRefusedWithoutAParam) {
    EXPECT_EQ(refused("{bad"), "<null>");
    EXPECT_EQ(refused("[1,2]"), "<null>");
    EXPECT_EQ(refused(""), "<null>");
    EXPECT_EQ(refused(std::string(100000, '[')), "<null>");  // depth bounded while parsing
    // Invalid UTF-8 raw and as escapes (a lone surrogate).
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":")" + std::string("\xff\xfe") + "\"}]}"),
              "<null>");
    EXPECT_EQ(refused(R"({"model":"m","messages":[{"role":"user","content":"\ud800"}]})"), "<null>");
    EXPECT_EQ(refused(std::string("{\"model\":\"m\xc0\xaf\"}")), "<null>");  // an overlong '/'
}

TEST(OpenAIRequest, ValidUtf8) {
    EXPECT_TRUE(valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xc3"));                  // cut
    EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));          // overlong
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));          // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));      // above U+10FFFF
    EXPECT_FALSE(valid_utf8("\x80"));
}

TEST(OpenAIRequest, ClassifyAndScoreShapes) {
    const auto c = parse_classify_request(R"({"model":"h","input":["a","b"]})");
    EXPECT_EQ(c.input.size(), 2u);
    EXPECT_EQ(parse_classify_request(R"({"model":"h","input":"a"})").input.size(), 1u);
    auto classify_param = [](const std::string& body) {
        try {
            parse_classify_request(body);
        } catch (const RequestError& e) {
            return e.param();
        }
        return std::string();
    };
    EXPECT_EQ(classify_param(R"({"model":"h","input":[]})"), "input");
    EXPECT_EQ(classify_param(R"({"model":"h","input":["a",2]})"), "input[1]");
    EXPECT_EQ(classify_param(R"({"model":"h","input":"a","truncate_prompt_tokens":3})"), "truncate_prompt_tokens");

    const auto s = parse_score_request(R"({"model":"h","text_1":"q","text_2":["a","b"]})");
    ASSERT_EQ(s.pairs.size(), 2u);
    EXPECT_EQ(s.pairs[1], (std::pair<std::string, std::string>{"q", "b"}));
    EXPECT_EQ(parse_score_request(R"({"model":"h","text_1":["x","y"],"text_2":["a","b"]})").pairs[1].first, "y");
    try {
        parse_score_request(R"({"model":"h","text_1":["x","y"],"text_2":["a"]})");
        ADD_FAILURE() << "lists of different lengths were taken";
    } catch (const RequestError& e) {
        EXPECT_EQ(e.param(), "text_2");
    }
}

TEST(OpenAIRequest, ErrorBodyIsOpenAIs) {
    const auto j = nlohmann::json::parse(error_body(404, "The model `x` does not exist", "model", "model_not_found"));
    EXPECT_EQ(j["error"]["message"], "The model `x` does not exist");
    EXPECT_EQ(j["error"]["type"], "not_found_error");
    EXPECT_EQ(j["error"]["param"], "model");
    EXPECT_EQ(j["error"]["code"], "model_not_found");
    const auto k = nlohmann::json::parse(error_body(400, "bad \xff byte"));
    EXPECT_TRUE(k["error"]["param"].is_null());
    EXPECT_TRUE(k["error"]["code"].is_null());
    EXPECT_EQ(k["error"]["type"], "invalid_request_error");
}

}  // namespace
}  // namespace wp::server

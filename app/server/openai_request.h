// The JSON bodies `windowpane-cli serve` accepts, parsed and checked into plain structs: OpenAI's
// POST /v1/chat/completions and /v1/completions, and vLLM's POST /classify and /score.
//
// Every refusal is a RequestError naming the parameter at fault ("messages[1].content",
// "stop[2]", "logit_bias"): a parameter this server does not implement is refused by name, never
// ignored. Nothing here touches a model or the file system; `model` is only a name, which the
// server looks up among the models it loaded. Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wp/generate/chat_session.h"
#include "wp/generate/sampler.h"

namespace wp::server {

// A request the server refuses: `status` (400 unless said otherwise) with OpenAI's error body,
// whose "param" is `param` (empty: null).
class RequestError : public std::runtime_error {
public:
    RequestError(const std::string& message, std::string param, int status = 400)
        : std::runtime_error(message), param_(std::move(param)), status_(status) {}
    const std::string& param() const { return param_; }
    int status() const { return status_; }

private:
    std::string param_;
    int status_;
};

// POST /v1/chat/completions (messages) or /v1/completions (prompt).
struct CompletionRequest {
    enum class Kind { Chat, Text };
    Kind kind = Kind::Chat;
    std::string model;
    std::vector<ChatMessage> messages;  // Chat: roles system, user, assistant; text parts joined by "\n"
    std::string prompt;                 // Text
    // temperature 0 gives greedy = true; otherwise OpenAI's default temperature is 1.
    SamplingParams sampling{.greedy = false};
    bool seeded = false;                   // "seed" was given (sampling.seed holds it)
    std::optional<std::int64_t> max_tokens;  // max_completion_tokens or max_tokens; >= 1
    std::vector<std::string> stop;         // up to 4, none empty
    // -1: no logprobs. Chat: top_logprobs (0..20) when logprobs is true; completions: logprobs (0..5).
    int top_logprobs = -1;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
};

CompletionRequest parse_chat_request(std::string_view body);
CompletionRequest parse_completion_request(std::string_view body);

// vLLM's POST /classify: {"model", "input": string | [string, ...]}.
struct ClassifyRequest {
    std::string model;
    std::vector<std::string> input;  // at least one
};

// vLLM's POST /score: {"model", "text_1", "text_2"}, each a string or a list; one text_1 is paired
// with every text_2, otherwise the lists pair up in order and must be as long.
struct ScoreRequest {
    std::string model;
    std::vector<std::pair<std::string, std::string>> pairs;  // at least one
};

ClassifyRequest parse_classify_request(std::string_view body);
ScoreRequest parse_score_request(std::string_view body);

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}; empty param and code give
// null. The type follows the status as llama.cpp's server names them (invalid_request_error,
// authentication_error, not_found_error, rate_limit_error, unavailable_error, server_error).
std::string error_body(int status, const std::string& message, const std::string& param = {},
                       const std::string& code = {});

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace wp::server

#include "openai_request.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "wp/error.h"
#include "wp/io/json_file.h"

namespace wp::server {

namespace {

using json = nlohmann::json;

constexpr int kMaxStops = 4;           // OpenAI's bound
constexpr int kMaxChatTopLogprobs = 20;
constexpr int kMaxTextLogprobs = 5;
constexpr std::size_t kMaxInputs = 4096;  // /classify inputs and /score pairs in one request

// The body as a JSON object. Invalid UTF-8 is named as such (nlohmann would only say "invalid
// string"); depth is bounded while parsing (wp::parse_json), as bodies come from anyone.
json parse_object(std::string_view body) {
    if (!valid_utf8(body)) throw RequestError("the request body is not valid UTF-8", "");
    json j;
    try {
        JsonLimits limits;
        limits.max_bytes = body.size() + 1;  // the server bounds the body; this is not the place
        limits.max_depth = 64;
        j = parse_json<json>(body, "the request body", limits);
    } catch (const Error& e) {
        throw RequestError(e.what(), "");
    }
    if (!j.is_object()) throw RequestError("the request body must be a JSON object", "");
    return j;
}

const char* type_name(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        case json::value_t::number_float: return "a number";
        default: return "an integer";
    }
}

[[noreturn]] void wrong_type(const std::string& name, const json& v, const char* wanted) {
    throw RequestError(name + " must be " + wanted + ", not " + type_name(v), name);
}

// Refuses every key of `obj` outside `known`, naming the first (with `prefix`, e.g. "messages[0].").
void refuse_unknown(const json& obj, const std::set<std::string>& known, const std::string& prefix = {}) {
    for (const auto& [key, value] : obj.items())
        if (!known.count(key)) {
            const std::string name = prefix + key;
            throw RequestError("unrecognized request argument supplied: " + name + " (this server does not support it)",
                               name);
        }
}

// Optional members: absent and null are alike, as OpenAI's API treats them.
const json* member(const json& obj, const std::string& key) {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string as_string(const json& v, const std::string& name) {
    if (!v.is_string()) wrong_type(name, v, "a string");
    return v.get<std::string>();
}

bool as_bool(const json& v, const std::string& name) {
    if (!v.is_boolean()) wrong_type(name, v, "a boolean");
    return v.get<bool>();
}

double as_number(const json& v, const std::string& name) {
    if (!v.is_number()) wrong_type(name, v, "a number");
    return v.get<double>();
}

// An integer within [lo, hi]; 3.0 counts as 3 (JSON does not tell them apart reliably).
std::int64_t as_integer(const json& v, const std::string& name, std::int64_t lo, std::int64_t hi) {
    std::int64_t n = 0;
    if (v.is_number_integer() && !v.is_number_unsigned()) {
        n = v.get<std::int64_t>();
    } else if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(hi)) throw RequestError(name + " must be at most " + std::to_string(hi), name);
        n = static_cast<std::int64_t>(u);
    } else if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!(d == std::floor(d)) || !(d >= -9.2e18 && d <= 9.2e18)) wrong_type(name, v, "an integer");
        n = static_cast<std::int64_t>(d);
    } else {
        wrong_type(name, v, "an integer");
    }
    if (n < lo || n > hi)
        throw RequestError(name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " +
                               std::to_string(n),
                           name);
    return n;
}

double in_range(double x, const std::string& name, double lo, double hi, bool lo_open = false) {
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s must be in %c%g, %g], not %g", name.c_str(), lo_open ? '(' : '[', lo, hi, x);
        throw RequestError(buf, name);
    }
    return x;
}

std::string required_model(const json& j) {
    const json* m = member(j, "model");
    if (!m) throw RequestError("model is required: the id of a model GET /v1/models lists", "model");
    std::string id = as_string(*m, "model");
    if (id.empty()) throw RequestError("model must not be empty", "model");
    return id;
}

// The keys both completion endpoints share, into `r`; `logprobs` and `top_logprobs` differ and are
// read by the callers.
void parse_common(const json& j, CompletionRequest& r) {
    r.model = required_model(j);
    if (const json* v = member(j, "temperature")) {
        const double t = in_range(as_number(*v, "temperature"), "temperature", 0, 2);
        r.sampling.greedy = t == 0;
        r.sampling.temperature = t == 0 ? 1.0f : static_cast<float>(t);
    }
    if (const json* v = member(j, "top_p")) r.sampling.top_p = static_cast<float>(in_range(as_number(*v, "top_p"), "top_p", 0, 1, true));
    if (const json* v = member(j, "top_k")) {
        // vLLM's -1 and 0 both mean "off".
        r.sampling.top_k = static_cast<int>(std::max<std::int64_t>(0, as_integer(*v, "top_k", -1, 1 << 24)));
    }
    if (const json* v = member(j, "min_p")) r.sampling.min_p = static_cast<float>(in_range(as_number(*v, "min_p"), "min_p", 0, 1));
    if (const json* v = member(j, "repetition_penalty"))
        r.sampling.repetition_penalty =
            static_cast<float>(in_range(as_number(*v, "repetition_penalty"), "repetition_penalty", 0, 100, true));
    if (const json* v = member(j, "seed")) {
        // Any 64-bit integer, as vLLM takes; the sampler's seed is its bit pattern.
        r.sampling.seed = static_cast<std::uint64_t>(
            as_integer(*v, "seed", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()));
        r.seeded = true;
    }
    // max_completion_tokens replaced max_tokens in OpenAI's chat API; both are taken, the newer first.
    for (const char* key : {"max_completion_tokens", "max_tokens"})
        if (const json* v = member(j, key)) {
            r.max_tokens = as_integer(*v, key, 1, std::numeric_limits<std::int32_t>::max());
            break;
        }
    if (const json* v = member(j, "stop")) {
        if (v->is_string()) {
            r.stop.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            if (v->size() > kMaxStops)
                throw RequestError("stop takes at most " + std::to_string(kMaxStops) + " sequences, not " +
                                       std::to_string(v->size()),
                                   "stop");
            for (std::size_t i = 0; i < v->size(); ++i) r.stop.push_back(as_string((*v)[i], "stop[" + std::to_string(i) + "]"));
        } else {
            wrong_type("stop", *v, "a string or an array of strings");
        }
        for (std::size_t i = 0; i < r.stop.size(); ++i)
            if (r.stop[i].empty()) {
                const std::string name = v->is_string() ? "stop" : "stop[" + std::to_string(i) + "]";
                throw RequestError(name + " must not be empty", name);
            }
    }
    if (const json* v = member(j, "stream")) r.stream = as_bool(*v, "stream");
    if (const json* v = member(j, "stream_options")) {
        if (!v->is_object()) wrong_type("stream_options", *v, "an object");
        if (!r.stream) throw RequestError("stream_options is only allowed when stream is true", "stream_options");
        refuse_unknown(*v, {"include_usage"}, "stream_options.");
        if (const json* u = member(*v, "include_usage")) r.include_usage = as_bool(*u, "stream_options.include_usage");
    }
    if (const json* v = member(j, "n"))
        if (as_integer(*v, "n", 1, 128) != 1) throw RequestError("n must be 1: one choice per request", "n");
    for (const char* key : {"presence_penalty", "frequency_penalty"})
        if (const json* v = member(j, key))
            if (in_range(as_number(*v, key), key, -2, 2) != 0)
                throw RequestError(std::string(key) + " is not supported: only 0 (use repetition_penalty)", key);
    if (const json* v = member(j, "user")) as_string(*v, "user");  // an end-user id for abuse tracking: unused
}

std::string message_content(const json& v, const std::string& name) {
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) wrong_type(name, v, "a string or an array of text parts");
    // vLLM joins text parts with newlines.
    std::string text;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string part = name + "[" + std::to_string(i) + "]";
        const json& p = v[i];
        if (!p.is_object()) wrong_type(part, p, "an object");
        const json* type = member(p, "type");
        if (!type) throw RequestError(part + ".type is required", part + ".type");
        const std::string t = as_string(*type, part + ".type");
        if (t != "text") throw RequestError(part + ".type \"" + t + "\" is not supported: only text parts", part + ".type");
        refuse_unknown(p, {"type", "text"}, part + ".");
        const json* tx = member(p, "text");
        if (!tx) throw RequestError(part + ".text is required", part + ".text");
        if (i) text += '\n';
        text += as_string(*tx, part + ".text");
    }
    return text;
}

std::vector<std::string> string_or_list(const json& v, const std::string& name) {
    std::vector<std::string> out;
    if (v.is_string()) {
        out.push_back(v.get<std::string>());
    } else if (v.is_array()) {
        if (v.empty()) throw RequestError(name + " must not be empty", name);
        if (v.size() > kMaxInputs)
            throw RequestError(name + " takes at most " + std::to_string(kMaxInputs) + " texts", name);
        for (std::size_t i = 0; i < v.size(); ++i) out.push_back(as_string(v[i], name + "[" + std::to_string(i) + "]"));
    } else {
        wrong_type(name, v, "a string or an array of strings");
    }
    return out;
}

}  // namespace

CompletionRequest parse_chat_request(std::string_view body) {
    const json j = parse_object(body);
    refuse_unknown(j, {"model", "messages", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed",
                       "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options", "n",
                       "presence_penalty", "frequency_penalty", "user", "logprobs", "top_logprobs"});
    CompletionRequest r;
    r.kind = CompletionRequest::Kind::Chat;
    parse_common(j, r);

    const json* msgs = member(j, "messages");
    if (!msgs) throw RequestError("messages is required", "messages");
    if (!msgs->is_array()) wrong_type("messages", *msgs, "an array");
    if (msgs->empty()) throw RequestError("messages must not be empty", "messages");
    for (std::size_t i = 0; i < msgs->size(); ++i) {
        const std::string name = "messages[" + std::to_string(i) + "]";
        const json& m = (*msgs)[i];
        if (!m.is_object()) wrong_type(name, m, "an object");
        refuse_unknown(m, {"role", "content"}, name + ".");
        const json* role = member(m, "role");
        if (!role) throw RequestError(name + ".role is required", name + ".role");
        ChatMessage cm;
        cm.role = as_string(*role, name + ".role");
        if (cm.role != "system" && cm.role != "user" && cm.role != "assistant")
            throw RequestError(name + ".role \"" + cm.role + "\" is not supported: system, user or assistant", name + ".role");
        const json* content = member(m, "content");
        if (!content) throw RequestError(name + ".content is required", name + ".content");
        cm.content = message_content(*content, name + ".content");
        r.messages.push_back(std::move(cm));
    }

    bool logprobs = false;
    if (const json* v = member(j, "logprobs")) logprobs = as_bool(*v, "logprobs");
    if (const json* v = member(j, "top_logprobs")) {
        const auto k = as_integer(*v, "top_logprobs", 0, kMaxChatTopLogprobs);
        if (!logprobs) throw RequestError("top_logprobs needs logprobs set to true", "top_logprobs");
        r.top_logprobs = static_cast<int>(k);
    } else if (logprobs) {
        r.top_logprobs = 0;
    }
    return r;
}

CompletionRequest parse_completion_request(std::string_view body) {
    const json j = parse_object(body);
    refuse_unknown(j, {"model", "prompt", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed",
                       "max_tokens", "stop", "stream", "stream_options", "n", "presence_penalty",
                       "frequency_penalty", "user", "logprobs"});
    CompletionRequest r;
    r.kind = CompletionRequest::Kind::Text;
    parse_common(j, r);

    const json* p = member(j, "prompt");
    if (!p) throw RequestError("prompt is required", "prompt");
    if (p->is_string()) {
        r.prompt = p->get<std::string>();
    } else if (p->is_array()) {
        // OpenAI also takes token ids and batches of prompts; one text per request here.
        if (p->size() == 1 && (*p)[0].is_string()) {
            r.prompt = (*p)[0].get<std::string>();
        } else if (!p->empty() && (*p)[0].is_number()) {
            throw RequestError("prompt as token ids is not supported: send the text", "prompt");
        } else if (!p->empty() && (*p)[0].is_array()) {
            throw RequestError("prompt as lists of token ids is not supported: send the text", "prompt");
        } else if (p->size() > 1) {
            throw RequestError("prompt takes one text per request, not " + std::to_string(p->size()), "prompt");
        } else {
            wrong_type("prompt", *p, "a string");
        }
    } else {
        wrong_type("prompt", *p, "a string");
    }
    if (r.prompt.empty()) throw RequestError("prompt must not be empty", "prompt");

    if (const json* v = member(j, "logprobs")) {
        // The legacy API's logprobs is how many alternatives to list, 0..5.
        if (v->is_boolean()) wrong_type("logprobs", *v, "an integer (0 to 5)");
        r.top_logprobs = static_cast<int>(as_integer(*v, "logprobs", 0, kMaxTextLogprobs));
    }
    return r;
}

ClassifyRequest parse_classify_request(std::string_view body) {
    const json j = parse_object(body);
    refuse_unknown(j, {"model", "input", "user"});
    ClassifyRequest r;
    r.model = required_model(j);
    if (const json* v = member(j, "user")) as_string(*v, "user");
    const json* in = member(j, "input");
    if (!in) throw RequestError("input is required", "input");
    r.input = string_or_list(*in, "input");
    return r;
}

ScoreRequest parse_score_request(std::string_view body) {
    const json j = parse_object(body);
    refuse_unknown(j, {"model", "text_1", "text_2", "user"});
    ScoreRequest r;
    r.model = required_model(j);
    if (const json* v = member(j, "user")) as_string(*v, "user");
    const json* a = member(j, "text_1");
    if (!a) throw RequestError("text_1 is required", "text_1");
    const json* b = member(j, "text_2");
    if (!b) throw RequestError("text_2 is required", "text_2");
    const auto first = string_or_list(*a, "text_1");
    const auto second = string_or_list(*b, "text_2");
    if (first.size() != 1 && first.size() != second.size())
        throw RequestError("text_2 must hold as many texts as text_1 (" + std::to_string(first.size()) + "), or text_1 one",
                           "text_2");
    for (std::size_t i = 0; i < second.size(); ++i) r.pairs.emplace_back(first.size() == 1 ? first[0] : first[i], second[i]);
    return r;
}

std::string error_body(int status, const std::string& message, const std::string& param, const std::string& code) {
    const char* type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 503 ? "unavailable_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    nlohmann::ordered_json e;
    e["message"] = message;
    e["type"] = type;
    e["param"] = param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param);
    e["code"] = code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(code);
    nlohmann::ordered_json out;
    out["error"] = std::move(e);
    // Messages may quote request text: never let a stray byte make dump() throw.
    return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
        else return false;
        if (i + len > n) return false;
        for (int k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

}  // namespace wp::server

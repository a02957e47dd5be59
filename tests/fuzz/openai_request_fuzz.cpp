// Fuzzes the request parser of `serve` (app/server/openai_request.h) on arbitrary bodies: each of
// its four entry points must accept or throw RequestError, never crash, hang or throw anything else.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    try {
        (void)wp::server::parse_chat_request(body);
    } catch (const wp::server::RequestError&) {
    }
    try {
        (void)wp::server::parse_completion_request(body);
    } catch (const wp::server::RequestError&) {
    }
    try {
        (void)wp::server::parse_classify_request(body);
    } catch (const wp::server::RequestError&) {
    }
    try {
        (void)wp::server::parse_score_request(body);
    } catch (const wp::server::RequestError&) {
    }
    (void)wp::server::error_body(400, std::string(body));  // messages quote request text
    return 0;
}

// Fuzzes chat templates: the bytes are the template source, rendered with a small fixed conversation
// under the default sandbox limits.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "wp/chat/chat_template.h"
#include "wp/error.h"

namespace {

const nlohmann::ordered_json& context() {
    static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello <b>world</b>"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Count: 1, 2, 3"}
        ],
        "bos_token": "<bos>", "eos_token": "<eos>",
        "add_generation_prompt": true,
        "tools": [{"name": "f", "parameters": {"x": 1}}]
    })");
    return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string source(reinterpret_cast<const char*>(data), size);
    try {
        wp::ChatTemplate(std::move(source)).render(context(), wp::TemplateLimits{});
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}

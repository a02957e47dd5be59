// Fuzzes the limited JSON reader used for messages files (wp::parse_json) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include "wp/error.h"
#include "wp/io/json_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto json = wp::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "messages.json");
        (void)json.dump();  // conversions of what the limits let through must not recurse too deep
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}

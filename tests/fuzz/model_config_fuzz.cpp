// Fuzzes config.json parsing (ModelConfig::parse) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "wp/error.h"
#include "wp/model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        wp::ModelConfig::parse(text);
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}

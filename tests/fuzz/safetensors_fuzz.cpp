// Fuzzes the safetensors header: the bytes are a whole .safetensors file (length, JSON header, data).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fuzz_support.h"
#include "io/safetensors.h"
#include "wp/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = wp::fuzz::write_scratch("model.safetensors", data, size);
    try {
        wp::SafeTensorsFile file(path);
        // Touch every tensor's bytes: validation promised they lie inside the mapping.
        std::uint8_t sum = 0;
        for (const auto& [name, t] : file.tensors())
            for (std::size_t i = 0; i < t.bytes; i += 97) sum ^= t.data[i];
        volatile std::uint8_t sink = sum;
        (void)sink;
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}

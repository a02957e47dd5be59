// Fuzzes the GGUF header and what is read from it: the bytes are a whole .gguf file (metadata,
// tensor infos, data), parsed, every tensor's bytes touched, and the model config derived.
#include <cstddef>
#include <cstdint>
#include <exception>

#include "fuzz_support.h"
#include "io/gguf.h"
#include "model/gguf_checkpoint.h"
#include "wp/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = wp::fuzz::write_scratch("model.gguf", data, size);
    try {
        wp::GgufFile file(path);
        // Validation promised every tensor's bytes lie inside the mapping.
        std::uint8_t sum = 0;
        for (const auto& t : file.tensors())
            for (std::size_t i = 0; i < t.bytes; i += 97) sum ^= t.data[i];
        for (const auto& [key, v] : file.metadata())
            if (v.type == wp::GgufValue::ARRAY && v.elem_type != wp::GgufValue::STRING) {
                if (v.elem_type == wp::GgufValue::F32 || v.elem_type == wp::GgufValue::F64) sum ^= file.float_array(key).size() & 1;
                else if (v.elem_type != wp::GgufValue::BOOL) sum ^= file.int_array(key).size() & 1;
            }
        volatile std::uint8_t sink = sum;
        (void)sink;
        (void)wp::gguf_model_config(file);
    } catch (const wp::Error&) {
    } catch (const std::exception&) {
    }
    return 0;
}

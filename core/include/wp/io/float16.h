// The 16-bit floats of safetensors files, one value at a time: bf16 (the top half of an f32)
// and f16 (IEEE half precision).
#pragma once

#include <cstdint>
#include <cstring>

namespace wp {

inline float bf16_to_f32(std::uint16_t h) {
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
// Round to nearest even, NaN preserved.
std::uint16_t f32_to_bf16(float f);
// Exact (subnormals, infinities and NaN included).
float f16_to_f32(std::uint16_t h);

}  // namespace wp

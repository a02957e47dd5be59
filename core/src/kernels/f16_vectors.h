// Vectors of the f16 KV cache (q8/q4 models) and the dot products of decode attention: AVX2/F16C
// where the CPU has it (unless options.force_scalar), else plain loops.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wp/model/kernel_options.h"

namespace wp {

// a . b over n f32 values.
float dot_f32(const float* a, const float* b, int n, const KernelOptions& options = {});
// a . b with f16 values in b, and y += a * x with f16 x.
float dot_f32_f16(const float* a, const std::uint16_t* b, int n, const KernelOptions& options = {});
void axpy_f16(float a, const std::uint16_t* x, float* y, int n, const KernelOptions& options = {});

// Rounding to f16 (nearest even) and widening back, n values.
void f32_to_f16_array(const float* src, std::uint16_t* dst, std::size_t n, const KernelOptions& options = {});
void f16_to_f32_array(const std::uint16_t* src, float* dst, std::size_t n);

// One value rounded to f16, nearest even, as F16C rounds it (the q8/q4 block scales). Finite
// inputs only: NaN becomes infinity.
std::uint16_t f32_to_f16(float f);

}  // namespace wp

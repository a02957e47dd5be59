// The hand-written loops of the forward pass. Each has a plain reference test in tests/core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wp/io/float16.h"
#include "wp/model/model_config.h"

namespace wp::ops {

// One value at a time (wp/io/float16.h).
using wp::bf16_to_f32;
using wp::f16_to_f32;
using wp::f32_to_bf16;

// Widens n 16-bit values (bf16 or f16) from possibly unaligned memory to f32.
void bf16_to_f32(const void* src, float* dst, std::size_t n);
void f16_to_f32(const void* src, float* dst, std::size_t n);

// y = x / sqrt(mean(x^2) + eps) * (w or 1 + w), per row of length n. In-place allowed (y == x).
void rms_norm(const float* x, const float* w, float* y, int rows, int n, float eps, NormStyle style);

// Rotate-half RoPE on `rows` vectors of `heads` heads of `head_dim`; cos/sin are [rows, head_dim/2]
// and row r uses cos[r]/sin[r]. `stride` is the distance between rows in floats.
void rope(float* x, int rows, int heads, int head_dim, int stride, const float* cos, const float* sin);
// Fills cos/sin [count, head_dim/2] for positions pos0 .. pos0+count-1 (computed in double).
void rope_table(double theta, int head_dim, std::int64_t pos0, int count, float* cos, float* sin);

void gelu_tanh_mul(const float* gate, const float* up, float* out, std::size_t n);  // gelu(g) * u
void silu_mul(const float* gate, const float* up, float* out, std::size_t n);       // silu(g) * u
void softcap(float* x, std::size_t n, float cap);                                  // cap * tanh(x/cap)
void add(float* y, const float* x, std::size_t n);                                  // y += x
std::size_t argmax(const float* x, std::size_t n);  // first index of the largest, as std::max_element

}  // namespace wp::ops

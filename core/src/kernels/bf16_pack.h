// What the two bf16 products (AVX-512 BF16 and AMX) share: the input rounded to bf16 and a 16 x 16
// transpose of 32-bit values. Both run only where cpu_has_avx512_bf16().
#pragma once

#include <cstdint>

namespace wp {

// Transposes 16 x 16 32-bit values in place (16 vectors of 64 bytes, 64-byte aligned): afterwards
// vector k holds element k of every input vector.
void transpose16x16_dwords(void* v);

// Rounds one row of cols floats (a multiple of 32) to bf16, nearest even.
void bf16_round_row(const float* x, int cols, std::uint16_t* out);

}  // namespace wp

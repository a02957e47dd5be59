// What the two bf16 products (AVX-512 BF16 and AMX) share: the input rounded to bf16 and the
// weights repacked in pairs. Both run only where cpu_has_avx512_bf16().
#pragma once

#include <cstdint>

#include "kernels/qmatrix.h"

namespace wp {

// Weight rows r0 .. r0 + 31 of a bf16 W (cols a multiple of 32) into `packed` (64-byte aligned,
// cols x 64 bytes): vector 2 p + h holds, in word j, the pair of columns (2 p, 2 p + 1) of row
// r0 + 16 h + j, which is both vdpbf16ps's lane order and an AMX B tile's row (16 pairs of 16
// columns). Rows past W.rows are zero.
void bf16_pack_group(const QMatrix& W, int r0, void* packed);

// Transposes 16 x 16 32-bit values in place (16 vectors of 64 bytes, 64-byte aligned): afterwards
// vector k holds element k of every input vector.
void transpose16x16_dwords(void* v);

// Rounds one row of cols floats (a multiple of 32) to bf16, nearest even.
void bf16_round_row(const float* x, int cols, std::uint16_t* out);

}  // namespace wp

// Internal to the kernels: the int8 matrix product of q8/q4 weights with many input rows.
#pragma once

#include <cstdint>

#include "wp/kernels/qmatrix.h"

namespace wp::detail {

// Rounds x (n values, n % 32 == 0) to int8 blocks of 32 with one scale each, as the decode
// kernels do (d = amax / 127, q = round(x / d)).
void quantize_vector_blocks(const float* x, int n, std::int8_t* q, float* d);

// Whether the AVX-512 VNNI product can run here (CPU check only).
bool cpu_has_avx512_vnni();

// Y[n, W.rows] = X[n, W.cols] W^T for a q8 or q4 W, with every input row rounded to int8 blocks
// as the decode kernels round it, and integer dot products per block (AVX-512 VNNI). Each
// block's sum is exact, so a row of Y equals the decode kernels' result for that input row up to
// float rounding (the order of additions over blocks; q4's AVX2 decode kernel applies its -8
// correction in float). Needs cpu_has_avx512_vnni().
void qgemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s);

}  // namespace wp::detail

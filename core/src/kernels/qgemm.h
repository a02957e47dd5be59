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

// Decode kernels for one input vector, AVX-512 (needs cpu_has_avx512_vnni()), rows [r0, r1) of
// y = W x, one row after another with the weights 3 KB ahead prefetched. The input as prepare_input leaves it: xq int8 blocks and xd their scales,
// zero-padded to a multiple of 16 blocks; q4 also reads the arrangement below.
void rows_q8_avx512(const QMatrix& W, const std::int8_t* xq, const float* xd, float* y, int r0, int r1);
void rows_q4_avx512(const QMatrix& W, const std::int8_t* x4, const std::int32_t* c4, const float* xd, float* y, int r0,
                    int r1);
// bf16: xp holds, per 32 input elements, the 16 even ones then the 16 odd ones (a bf16 pair read
// as a 32-bit word gives the even element by a shift, the odd one by a mask); elements past the
// last whole 32 are read from x.
void rows_bf16_avx512(const QMatrix& W, const float* xp, const float* x, float* y, int r0, int r1);
void rows_f32_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1);
// For rows_q4_avx512: per group of four blocks, 64 bytes of their elements 0-15 then 64 of
// their elements 16-31 (the order of the low and high nibbles of four blocks' 64 bytes), and 16
// int32 lanes, four per block, each -2 x the block's sum (the unsigned nibbles' correction, -8 x
// the sum, spread over the four lanes that hold the block's products). `blocks` is a multiple of
// 16; blocks past `nb` are zero.
void arrange_q4_avx512(const std::int8_t* xq, int nb, int blocks, std::int8_t* x4, std::int32_t* c4);

// Y[n, W.rows] = X[n, W.cols] W^T for a q8 or q4 W, with every input row rounded to int8 blocks
// as the decode kernels round it, and integer dot products per block (AVX-512 VNNI). Each
// block's sum is exact, so a row of Y equals the decode kernels' result for that input row up to
// float rounding (the order of additions over blocks; q4's AVX2 decode kernel applies its -8
// correction in float). Needs cpu_has_avx512_vnni().
void qgemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s);

}  // namespace wp::detail

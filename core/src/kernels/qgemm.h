// Internal to the kernels: the int8 matrix product of q8/q4 weights with many input rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wp/kernels/qmatrix.h"

namespace wp::detail {

// Rounds x (n values, n % 32 == 0) to int8 blocks of 32 with one scale each, as the decode
// kernels do (d = amax / 127, q = round(x / d)).
void quantize_vector_blocks(const float* x, int n, std::int8_t* q, float* d);

// Whether the AVX-512 VNNI product can run here (CPU check only).
bool cpu_has_avx512_vnni();

// Decode kernels for one input vector, AVX-512 (needs cpu_has_avx512_vnni()), rows [r0, r1) of
// y = W x, one row after another with the weights ahead prefetched (f32 3 KB into L1, the others
// 6 KB into L2). The input as prepare_input leaves it: xq int8 blocks and xd their scales,
// zero-padded to a multiple of 16 blocks; q4 reads the arrangement of arrange_q4_input instead.
void rows_q8_avx512(const QMatrix& W, const std::int8_t* xq, const float* xd, float* y, int r0, int r1);
void rows_q4_avx512(const QMatrix& W, const std::int8_t* x4, const std::int32_t* c4, const float* xd, float* y, int r0,
                    int r1);
// bf16: xp holds, per 32 input elements, the 16 even ones then the 16 odd ones (a bf16 pair read
// as a 32-bit word gives the even element by a shift, the odd one by a mask); elements past the
// last whole 32 are read from x.
void rows_bf16_avx512(const QMatrix& W, const float* xp, const float* x, float* y, int r0, int r1);
void rows_f32_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1);
// The q4 row layout. A row's blocks are taken 16 at a time (a group; the last one may hold
// fewer, m); a group's 16 m bytes are four chunks of 4 m bytes, and chunk k holds bytes 4k..4k+3
// of each block in turn. So one 64-byte load of a whole group gives, in 32-bit lane j, four
// bytes of block j: integer dot products accumulate each block's sum in its own lane over the
// four chunks, and are scaled once per 16 blocks with no shuffles. Within a block, byte i holds
// element i (low nibble) and element i + 16 (high), as in Q4_0. The offset of byte `byte` of
// block `block` within a row of `nb` blocks:
inline std::size_t q4_offset(int block, int byte, int nb) {
    const int g = block / 16, j = block % 16, m = nb - 16 * g < 16 ? nb - 16 * g : 16;
    return static_cast<std::size_t>(256) * g + static_cast<std::size_t>(4 * m * (byte / 4) + 4 * j + byte % 4);
}

// The input vector as the q4 kernels read it (AVX2 and AVX-512 alike), per group of 16 blocks:
// eight 64-byte vectors, lo0 hi0 lo1 hi1 .. lo3 hi3, where lane j of lo_k holds elements 4k..4k+3
// of block j (against the low nibbles of chunk k) and lane j of hi_k elements 16+4k..16+4k+3
// (against the high nibbles); and 16 int32, -8 x the sum of block j (the unsigned nibbles'
// correction: sum (u - 8) x = sum u x - 8 sum x). `blocks` is a multiple of 16; blocks past `nb`
// are zero.
void arrange_q4_input(const std::int8_t* xq, int nb, int blocks, std::int8_t* x4, std::int32_t* c4);

// Y[n, W.rows] = X[n, W.cols] W^T for a q8 or q4 W, with every input row rounded to int8 blocks
// as the decode kernels round it, and integer dot products per block (AVX-512 VNNI). Each
// block's sum is exact, so a row of Y equals the decode kernels' result for that input row up to
// float rounding (the order of additions over blocks). Needs cpu_has_avx512_vnni().
void qgemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& s);

}  // namespace wp::detail

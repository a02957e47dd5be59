// The input row of a product in the forms the decode kernels read, prepared once per product
// (or once for several matrices that share it).
#pragma once

#include <cstdint>

#include "kernels/kernel_scratch.h"
#include "kernels/qmatrix.h"

namespace wp {

// The kernels a product runs, chosen once from the CPU and the options when its input is
// prepared; the kernels that read the input follow this, so the two always agree.
enum class KernelSet { Scalar, Avx2, Avx512 };

struct PreparedInput {
    const float* x = nullptr;
    const float* xp = nullptr;         // bf16, AVX2 kernel: even and odd elements of each 16-block
    const std::int8_t* xq = nullptr;   // q8/q4: int8 blocks
    const std::uint8_t* xu = nullptr;  // q8 (AVX-512): the same + 128, unsigned (vpdpbusd's first operand)
    const float* xd = nullptr;         // their scales
    const std::int8_t* x4 = nullptr;   // q4 (AVX2, AVX-512): groups of 16 blocks as the kernels read them
    const std::int32_t* c4 = nullptr;  // q4: their corrections, one per block
    KernelSet kernels = KernelSet::Scalar;
};

// x (W.cols values) prepared for W's precision in `s`, which keeps the buffers.
PreparedInput prepare_input(const QMatrix& W, const float* x, InputScratch& s, const KernelOptions& options);

// Rounds x (n values, n % 32 == 0) to int8 blocks of 32 with one scale each, d = amax / 127 and
// q = round(x / d) (nearest even); the scalar and AVX2 loops give the same bytes.
void quantize_input_blocks(const float* x, int n, std::int8_t* q, float* d, const KernelOptions& options);

// The input vector as the q4 kernels read it (AVX2 and AVX-512 alike), per group of 16 blocks:
// eight 64-byte vectors, lo0 hi0 lo1 hi1 .. lo3 hi3, where lane j of lo_k holds elements 4k..4k+3
// of block j (against the low nibbles of chunk k, q4_layout.h) and lane j of hi_k elements
// 16+4k..16+4k+3 (against the high nibbles); and 16 int32, -8 x the sum of block j (the unsigned
// nibbles' correction: sum (u - 8) x = sum u x - 8 sum x). `blocks` is a multiple of 16; blocks
// past `nb` are zero.
void arrange_q4_input(const std::int8_t* xq, int nb, int blocks, std::int8_t* x4, std::int32_t* c4);

}  // namespace wp

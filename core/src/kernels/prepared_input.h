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
    const std::int32_t* c4 = nullptr;  // q4 (AVX2, AVX-512): -8 x each block's sum
    KernelSet kernels = KernelSet::Scalar;
};

// x (W.cols values) prepared for W's precision in `s`, which keeps the buffers.
PreparedInput prepare_input(const QMatrix& W, const float* x, InputScratch& s, const KernelOptions& options);

// Rounds x (n values, n % 32 == 0) to int8 blocks of 32 with one scale each, d = amax / 127 and
// q = round(x / d) (nearest even); the scalar and AVX2 loops give the same bytes.
void quantize_input_blocks(const float* x, int n, std::int8_t* q, float* d, const KernelOptions& options);

// -8 x the sum of each of the nb int8 blocks of xq: the q4 kernels keep the nibbles unsigned,
// sum (u - 8) x = sum u x - 8 sum x.
void q4_corrections(const std::int8_t* xq, int nb, std::int32_t* c4);

}  // namespace wp

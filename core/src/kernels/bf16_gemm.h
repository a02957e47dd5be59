// The bf16 product of bf16 weights with many input rows (long prompts): AMX-BF16 or AVX-512 BF16.
#pragma once

#include "kernels/kernel_scratch.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"

namespace wp {

// Y[n, W.rows] = X[n, W.cols] W^T for a bf16 W whose cols are a multiple of 32, with every input
// value rounded to bf16 (nearest even) and pairs of products summed by vdpbf16ps into f32. Against
// the weights widened for sgemm, an output differs by at most 2^-8 x sum |w x| over its row (the
// input's rounding, 2^-9 relative, plus f32 accumulation; tested). Runs where
// bf16_gemm_available(options); does nothing on other CPUs.
void bf16_gemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& scratch);

// The same product on AMX tiles (tdpbf16ps: 16 weight rows x 16 input rows x 32 columns an
// instruction; the weights read in place, the input repacked), with the same input rounding and
// bound (tested). Runs where amx_bf16_available(options); does nothing on other CPUs.
void bf16_gemm_amx(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& scratch);

}  // namespace wp

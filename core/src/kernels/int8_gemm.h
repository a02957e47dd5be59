// The int8 product of q8/q4 weights with many input rows (long prompts), AVX-512 VNNI.
#pragma once

#include "kernels/kernel_scratch.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"

namespace wp {

// Y[n, W.rows] = X[n, W.cols] W^T for a q8 or q4 W, with every input row rounded to int8 blocks
// as the decode kernels round it, and integer dot products per block. Each block's sum is exact,
// so a row of Y equals the decode kernels' result for that input row up to float rounding (the
// order of additions over blocks). Runs where int8_gemm_available(options); does nothing on other
// CPUs.
void int8_gemm_avx512(const QMatrix& W, const float* X, int n, float* Y, ThreadPool& pool, KernelScratch& scratch,
                      const KernelOptions& options);

}  // namespace wp

// Weight matrices in the compute precisions, and the matrix products of the forward pass.
// Layouts, kernels, prefetch distances and the choice of path: docs/KERNELS.md.
//
// One input row (decode) runs the decode kernels (AVX-512, AVX2 or scalar; kernel_choice.h) over
// output rows on the thread pool. A short prompt (up to few_rows_limit rows) runs the same
// kernels over blocks of weight rows kept in cache for every input row; a longer one goes
// through the int8 product (q8/q4 with AVX-512 VNNI) or cblas_sgemm on weights widened tile by
// tile.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_scratch.h"
#include "kernels/thread_pool.h"
#include "kernels/weight_storage.h"
#include "wp/model/kernel_options.h"
#include "wp/model/precision.h"

namespace wp {

constexpr int kQuantBlock = 32;  // weights per q8/q4 block (one f16 scale each)

// A matrix of `rows` x `cols` weights in one precision; it points into a file's mapping or a
// WeightStorage and owns nothing. The q4 bytes are interleaved within a row (q4_layout.h).
struct QMatrix {
    Precision precision = Precision::F32;
    int rows = 0, cols = 0;
    const float* f32 = nullptr;
    const std::uint16_t* bf16 = nullptr;
    const std::int8_t* q8 = nullptr;
    const std::uint8_t* q4 = nullptr;       // rows * cols / 2 bytes
    const std::uint16_t* scales = nullptr;  // f16, rows * cols / 32

    std::size_t bytes() const;  // weight bytes read by one matrix-vector product
    // Rows [r0, r1) as f32, row-major. The same floats with any options.
    void dequantize_rows(int r0, int r1, float* out, const KernelOptions& options = {}) const;
};

// Builds a matrix in `precision` from raw f32 or bf16 values (as they are in the file).
// Quantized precisions need cols % 32 == 0; otherwise the matrix stays f32. With a pool, the
// conversion runs on its threads. The same bytes with or without a pool, with any options.
QMatrix make_qmatrix(Precision precision, int rows, int cols, const float* f32, const std::uint16_t* bf16,
                     WeightStorage& storage, ThreadPool* pool = nullptr, const KernelOptions& options = {});

// y = W x for one input row (decode), threaded over output rows.
void matvec(const QMatrix& W, const float* x, float* y, ThreadPool& pool, KernelScratch& scratch,
            const KernelOptions& options);
// Y[rows, W.rows] = X[rows, W.cols] W^T. Up to few_rows_limit input rows run the decode kernels
// (each row gives exactly what matvec gives for it); more go through the int8 product for q8/q4
// where int8_gemm_available, else through cblas_sgemm on f32 or widened weights.
void matmul(const QMatrix& W, const float* X, int rows, float* Y, ThreadPool& pool, KernelScratch& scratch,
            const KernelOptions& options);
// Y_i = X W_i^T for matrices that share their input (q, k and v; gate and up): on the decode
// kernels' path the input rows are prepared once and one parallel loop covers all the rows.
void matmul_multi(const QMatrix* const* Ws, const float* X, int rows, float* const* Ys, int count, ThreadPool& pool,
                  KernelScratch& scratch, const KernelOptions& options);

// The largest input-row count that takes the decode kernels' path: options.few_rows_limit when
// set, 1 for q8/q4 where the int8 product runs, else the crossover with sgemm measured per
// precision (docs/KERNELS.md, "Short prompts").
int few_rows_limit(Precision p, const KernelOptions& options);

// y = W x in double precision from the widened weights (tests).
void matvec_reference(const QMatrix& W, const float* x, float* y);

}  // namespace wp

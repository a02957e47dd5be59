// Weight matrices in the compute precisions, and the matrix products of the forward pass.
//
//  f32  — the file's f32 values (a view into the mapping), or bf16/f16 widened once at load.
//  bf16 — bf16 values straight from the mapping (no f32 copy); kernels widen on the fly.
//  q8   — blocks of 32 weights: 32 int8 and one f16 scale (8.5 bits per weight), quantized at load.
//  q4   — blocks of 32 weights: 16 bytes of 4-bit values (v - 8) and one f16 scale (4.5 bits);
//         within a row, the bytes of 16 blocks at a time are interleaved four by four so that
//         one vector load holds part of 16 blocks (the layout is internal: dequantize_rows reads it).
//
// Decode (one row) runs hand-vectorised AVX2/FMA kernels, or AVX-512 ones where the CPU has
// AVX-512 VNNI (chosen at run time, with a scalar fallback), over output rows on the thread
// pool; q8/q4 quantize the input vector to int8 blocks and use integer dot products. A short
// prompt (up to few_rows_limit rows) runs the same kernels over blocks of weight rows kept in
// cache for every input row; a long one goes through the int8 product (q8/q4 with VNNI) or
// cblas_sgemm, widening or dequantizing the weights tile by tile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wp/kernels/thread_pool.h"
#include "wp/model/precision.h"

namespace wp {

constexpr int kQuantBlock = 32;

struct QMatrix {
    Precision precision = Precision::F32;
    int rows = 0, cols = 0;
    const float* f32 = nullptr;
    const std::uint16_t* bf16 = nullptr;
    const std::int8_t* q8 = nullptr;
    const std::uint8_t* q4 = nullptr;       // rows * cols / 2 bytes
    const std::uint16_t* scales = nullptr;  // f16, rows * cols / 32

    std::size_t bytes() const;  // weight bytes read by one matrix-vector product
    void dequantize_rows(int r0, int r1, float* out) const;  // rows [r0, r1) as f32, row-major
};

// Owns the memory of quantized or widened matrices: 64-byte aligned pieces, each with at least
// 64 zeroed bytes past its end that kernels may read (whole vector groups). Pieces are cut one
// after another from huge-page mappings (huge_pages.h) of 64 MB or more: a mapping per matrix
// left every matrix smaller than a few MB (a layer's, for models up to a few billion weights)
// in 4 KB pages, since only whole aligned 2 MB of a mapping can be huge pages.
struct QStorage {
    struct Buffer {
        void* base = nullptr;
        std::size_t size = 0;
    };
    std::vector<Buffer> buffers;  // the mappings
    QStorage() = default;
    QStorage(const QStorage&) = delete;
    QStorage& operator=(const QStorage&) = delete;
    ~QStorage();
    template <typename T>
    T* alloc(std::size_t n) {
        return static_cast<T*>(alloc_bytes(n * sizeof(T)));
    }
    void* alloc_bytes(std::size_t bytes);  // zero-filled; throws std::bad_alloc

private:
    char* next_ = nullptr;  // the free rest of the newest mapping
    std::size_t left_ = 0;
};

// Builds a matrix in `precision` from raw f32 or bf16 values (as they are in the file).
// Quantized precisions need cols % 32 == 0; otherwise the matrix stays f32. With a pool, the
// conversion runs on its threads (the result is the same either way).
QMatrix make_qmatrix(Precision precision, int rows, int cols, const float* f32, const std::uint16_t* bf16,
                     QStorage& storage, ThreadPool* pool = nullptr);

// One input row in the forms the kernels read.
struct InputScratch {
    std::vector<std::int8_t> xq;  // quantized input vector
    std::vector<float> xd;        // its block scales
    std::vector<float> xp;        // input split into even/odd elements per 16-block (bf16; AVX-512: 32)
    std::vector<std::int8_t> x4;  // q4: groups of 16 blocks as the vector kernels read them
    std::vector<std::int32_t> c4; // their corrections (-8 x each block's sum)
};

// Scratch for the kernels, reused across calls.
struct KernelScratch {
    std::vector<InputScratch> inputs;  // up to 64 input rows at a time
    std::vector<float> tile;           // widened weight tile (sgemm prefill)
    std::vector<std::uint8_t> gemm_q;  // int8 product: the input rows as int8 blocks
    std::vector<float> gemm_d;         // their block scales
    std::vector<std::int32_t> gemm_s;  // q4: -8 x each block's sum
};

// y = W x for one input row (decode), threaded over output rows.
void matvec(const QMatrix& W, const float* x, float* y, ThreadPool& pool, KernelScratch& scratch);
// Y[rows, W.rows] = X[rows, W.cols] W^T. Up to few_rows_limit(W.precision) input rows run the
// decode kernels (weights read from memory once per 64 input rows, each block of 16 weight rows
// reused from cache for every one of them); more go through the int8 product for q8/q4 where
// int8_gemm_available(), else through cblas_sgemm, widening the weights tile by tile unless they
// are f32.
void matmul(const QMatrix& W, const float* X, int rows, float* Y, ThreadPool& pool, KernelScratch& scratch);
// Y_i = X W_i^T for matrices that share their input (q, k and v; gate and up): on the decode
// kernels' path the input rows are prepared once and one parallel loop covers all the rows.
void matmul_multi(const QMatrix* const* Ws, const float* X, int rows, float* const* Ys, int count, ThreadPool& pool,
                  KernelScratch& scratch);
// The largest input-row count that takes the decode kernels' path: the crossover with sgemm
// measured on the 2-core development machine with qwen2-0.5b's shapes and 2 threads (gemma2-2b's
// larger matrices cross over a little later, so the limits are on the safe side there); 1 for
// q8/q4 where the int8 product runs (faster from two rows on).
int few_rows_limit(Precision p);
// Overrides that limit for every precision (tests compare the paths); a negative value restores
// the measured ones. One input row always takes the decode kernels. Process-wide.
void set_few_rows_limit(int limit);
struct ScopedFewRowsLimit {
    explicit ScopedFewRowsLimit(int limit) { set_few_rows_limit(limit); }
    ~ScopedFewRowsLimit() { set_few_rows_limit(-1); }
    ScopedFewRowsLimit(const ScopedFewRowsLimit&) = delete;
    ScopedFewRowsLimit& operator=(const ScopedFewRowsLimit&) = delete;
};

// Whether q8/q4 products of more than few_rows_limit input rows run as int8 products (the input
// rows rounded to int8 blocks as the decode kernels round them, integer dot products per block;
// AVX-512 VNNI) instead of widening the weights for sgemm: the CPU has VNNI and the path is not
// switched off (tests and benchmarks compare both; off too when the scalar kernels are forced).
bool int8_gemm_available();
void set_int8_gemm_enabled(bool on);  // process-wide; on by default
// Whether decode (and the short-prompt path) runs the AVX-512 kernels of every precision (the
// CPU has AVX-512 VNNI and they are not switched off) rather than the AVX2 ones; tests compare
// both. Process-wide.
bool avx512_decode_kernels();
void set_avx512_decode_kernels_enabled(bool on);

// Dot product of two f32 vectors (AVX2 when available).
float dot_f32(const float* a, const float* b, int n);
// The same with f16 values in b, and y += a * x with f16 x (the f16 KV cache).
float dot_f32_f16(const float* a, const std::uint16_t* b, int n);
void axpy_f16(float a, const std::uint16_t* x, float* y, int n);
void f32_to_f16_array(const float* src, std::uint16_t* dst, std::size_t n);
void f16_to_f32_array(const std::uint16_t* src, float* dst, std::size_t n);

// Plain scalar references (tests) and the CPU check.
void matvec_reference(const QMatrix& W, const float* x, float* y);
bool cpu_has_avx2_fma();
// Whether the AVX2 kernels run: the CPU has them and they are not forced off.
bool use_avx2_kernels();
// Forces the scalar kernels (tests compare both paths).
void set_force_scalar_kernels(bool on);

}  // namespace wp

// Kernels of single-query attention (decode) over a KV cache, and the vectorised elementwise
// functions of the forward pass. AVX2/FMA when the CPU has it (unless options.force_scalar), else
// plain loops. The query heads that share one KV head are handled together, so each cached key
// and value is read and widened once per group rather than once per query head.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "wp/model/kernel_options.h"

namespace wp {

// Rows of int8 with one scale per `block` consecutive elements (element i is q[i] * scales[i /
// block]): a q8 KV cache's keys or values.
struct Q8Rows {
    Q8Rows(const std::int8_t* q_, const float* scales_, int block_)
        : q(q_), scales(scales_), block(block_), shift(std::countr_zero(static_cast<unsigned>(block_))) {}
    const std::int8_t* q;
    const float* scales;
    int block;
    int shift;  // log2(block) when block is a power of two (the vector kernels need one: 8, 16, 32)
};

// The first n of 16 lanes as an AVX-512 mask's bits (plain arithmetic: callable from any target).
inline std::uint16_t lanes16(int n) {
    return n >= 16 ? std::uint16_t{0xffff} : n <= 0 ? std::uint16_t{0} : static_cast<std::uint16_t>((1u << n) - 1);
}

// scores[h * score_stride + j] = q_h . K_j for the nq query heads q (contiguous, head_dim each)
// and the n cached keys K_j = keys + j * key_stride (f16, f32 or q8). q8 keys with
// options.int8_queries on AVX-512 VNNI (blocks of 32, head_dim a multiple of 64) take q rounded to
// int8 blocks of 32 (a q already rounded so, as queries_as_scored rounds it, keeps its integers).
void attention_scores(const float* q, int nq, int head_dim, const std::uint16_t* keys, std::size_t key_stride, int n,
                      float* scores, std::size_t score_stride, const KernelOptions& options = {});
void attention_scores(const float* q, int nq, int head_dim, const float* keys, std::size_t key_stride, int n,
                      float* scores, std::size_t score_stride, const KernelOptions& options = {});
void attention_scores(const float* q, int nq, int head_dim, const Q8Rows& keys, std::size_t key_stride, int n,
                      float* scores, std::size_t score_stride, const KernelOptions& options = {});

// out[h * head_dim + i] = sum_j p[h * p_stride + j] * V_j[i] over the n cached values (f16 or
// f32); out is overwritten.
void attention_mix(const float* p, std::size_t p_stride, int nq, const std::uint16_t* values, std::size_t value_stride,
                   int n, int head_dim, float* out, const KernelOptions& options = {});
void attention_mix(const float* p, std::size_t p_stride, int nq, const float* values, std::size_t value_stride, int n,
                   int head_dim, float* out, const KernelOptions& options = {});
void attention_mix(const float* p, std::size_t p_stride, int nq, const Q8Rows& values, std::size_t value_stride, int n,
                   int head_dim, float* out, const KernelOptions& options = {});

// Prompt attention, AVX-512 (where avx512_decode_kernels holds, kernel_choice.h): 8 query rows at
// a time.
// scores[i * score_stride + j] = q_i . K_j for i < nq <= 8 (q: 8 rows of head_dim, rows past nq
// zero) and j < n, with the keys transposed in blocks of kPromptKeyBlock: K_j's element c at
// key_blocks[(j / 32) * head_dim * 32 + c * 32 + j % 32] (each block one contiguous stretch).
// out[i * head_dim + c] (+)= sum_j p[i * p_stride + j] * V_j[c] for i < nq (rows of p past nq are
// read, not used), V_j = values + j * value_stride; `accumulate` adds to out instead of
// overwriting it.
inline constexpr int kPromptKeyBlock = 32;
void prompt_scores_avx512(const float* q, int nq, int head_dim, const float* key_blocks, int n, float* scores,
                          std::size_t score_stride);
void prompt_mix_avx512(const float* p, std::size_t p_stride, int nq, const float* values, std::size_t value_stride, int n,
                       int head_dim, float* out, bool accumulate);

// One score row to probabilities in place: x = scale * x, then cap * tanh(x / cap) when cap > 0,
// then x + bias (bias may be null; -inf masks a key), then softmax. Masked keys get exactly 0.
// Returns the log of the softmax's denominator, max + log(sum of e^(x - max)) (-inf, and a row of
// zeros, when every key is masked): rows softmaxed in parts are merged by it.
float softmax_row(float* x, int n, float scale, float cap, const float* bias, const KernelOptions& options = {});

// Vectorised forms of the elementwise functions (ops:: calls these).
void vec_tanh(const float* x, float* y, std::size_t n, const KernelOptions& options = {});
void vec_gelu_tanh_mul(const float* gate, const float* up, float* out, std::size_t n,
                       const KernelOptions& options = {});
void vec_silu_mul(const float* gate, const float* up, float* out, std::size_t n, const KernelOptions& options = {});
void vec_softcap(float* x, std::size_t n, float cap, const KernelOptions& options = {});
// The index of the first of the largest of x[0..n) (n > 0), as std::max_element gives it (which
// also means 0 when x[0] is NaN; other NaNs are passed over).
std::size_t vec_argmax(const float* x, std::size_t n, const KernelOptions& options = {});

}  // namespace wp

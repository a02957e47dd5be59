// The decode kernels: rows [r0, r1) of y = W x for one prepared input row (prepared_input.h),
// one set per instruction set. The dispatch (matmul.cpp) picks the set; weight layouts,
// prefetch distances and why: docs/KERNELS.md.
//
// Every set sums a row in one fixed order whether it runs for decode or for a short prompt, so
// a prompt row gets exactly what decoding it would.
#pragma once

#include <cstdint>

#include "kernels/qmatrix.h"

namespace wp {

// ---- AVX2 / FMA (matvec_avx2.cpp); the CPU must have them (cpu_has_avx2_fma) --------------
// `stream`: one input row (decode), whose weight rows come from memory once and are read one
// after another with the weights ahead prefetched; otherwise a short prompt, whose weight rows
// stay in cache while every input row runs against them (several rows at a time).
void rows_f32_avx2(const float* W, int cols, const float* x, float* y, int r0, int r1, bool stream);
void rows_bf16_avx2(const std::uint16_t* W, int cols, const float* xp, const float* x, float* y, int r0, int r1,
                    bool stream);
// q8 and q4 work on whole panels of 16 rows (q8_layout.h, q4_layout.h); the rows of a panel
// outside [r0, r1) are computed and not stored. q4 reads xq/xd and c4, -8 x each input block's sum
// (PreparedInput::c4).
void rows_q8_avx2(const QMatrix& W, const std::int8_t* xq, const float* xd, float* y, int r0, int r1);
void rows_q4_avx2(const QMatrix& W, const std::int8_t* xq, const std::int32_t* c4, const float* xd, float* y, int r0,
                  int r1);
// Prefetches the first 6 KB of rows [r0, r1) and the first 512 bytes of their scales: the
// kernels prefetch ahead of what they read, never the start of the rows they are given. Once per
// chunk of rows a thread takes.
void prefetch_rows_start(const QMatrix& W, int r0, int r1);

// ---- AVX-512 VNNI (matvec_avx512.cpp); the CPU must have it (cpu_has_avx512_vnni) ----------
// One row after another with the weights ahead prefetched, for decode and short prompts alike.
// q8 and q4 a panel of 16 rows at a time, as the AVX2 kernels; q8 reads xu/xd, q4 xq/xd and c4.
void rows_f32_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1);
// bf16: xp holds, per 32 input elements, the 16 even ones then the 16 odd ones (a bf16 pair read
// as a 32-bit word gives the even element by a shift, the odd one by a mask); elements past the
// last whole 32 are read from x.
void rows_bf16_avx512(const QMatrix& W, const float* x, float* y, int r0, int r1);
// q8: xu is the input's int8 blocks + 128, as unsigned bytes (PreparedInput::xu).
void rows_q8_avx512(const QMatrix& W, const std::uint8_t* xu, const float* xd, float* y, int r0, int r1);
void rows_q4_avx512(const QMatrix& W, const std::int8_t* xq, const std::int32_t* c4, const float* xd, float* y, int r0,
                    int r1);

// n input rows (a batch of decoding sequences, a short prompt) against rows [r0, r1): the weights
// are loaded once for up to four input rows at a time; each y[t] equals the one-row kernel's
// result for input t, bit for bit.
void rows_q8_avx512_multi(const QMatrix& W, int n, const std::uint8_t* const* xu, const float* const* xd,
                          float* const* y, int r0, int r1);
void rows_q4_avx512_multi(const QMatrix& W, int n, const std::int8_t* const* xq, const std::int32_t* const* c4,
                          const float* const* xd, float* const* y, int r0, int r1);

// ---- AMX-INT8 (matvec_amx.cpp); the CPU must have it and the tiles granted (amx_int8_available)
// q8, n input rows against rows [r0, r1), sixteen input rows per pass over the weights: x holds
// the input rows' int8 blocks (PreparedInput::xq) `ldx` bytes apart. Each y[t] equals
// rows_q8_avx512's result for input t, bit for bit.
void rows_q8_amx_multi(const QMatrix& W, int n, const std::int8_t* x, std::size_t ldx, const float* const* xd,
                       float* const* y, int r0, int r1);

// ---- scalar (matvec_scalar.cpp): any CPU, and the reference the vector kernels are tested against.
// q8/q4 read xq/xd; f32/bf16 read x.
void rows_scalar(const QMatrix& W, const float* x, const std::int8_t* xq, const float* xd, float* y, int r0, int r1);

}  // namespace wp

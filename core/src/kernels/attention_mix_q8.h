// Decode's mix over a q8 KV cache on integer dot products (KernelOptions::int16_probabilities,
// AVX-512 VNNI): out[h * d + i] = sum_j p[h * ps + j] * V_j[i], with each value an int8 times its
// block's scale. The f32 form spends most of decode attention's time at long contexts widening
// the values and multiplying; here the weights are rounded instead and the sums are exact.
//
// What is computed, chunk by chunk (kInt16MixKeys keys from the first) and for every query head h
// and value block b (32 elements):
//   pm = the chunk's largest |p_hj|, sm = the chunk's largest |s_jb| (either 0: weights 0);
//   w_j = round_half_even((p_hj * (1 / pm)) * (s_jb * (32767 / sm))), in [-32767, 32767];
//   the chunk's sums, sum_j w_j * q_ji, are exact in int32 (256 * 32767 * 127 < 2^31);
//   out_i = fma(float(sum_i), pm * sm / 32767, out_i), chunks in order from out_i = 0.
// A weight is off by at most half of pm * sm / 32767, 1/65534 of the chunk's largest weight.
//
// With fewer query heads than kInt16MixMinHeads, mix_q8_bytes: the weights unsigned 16-bit
// (probabilities and scales are never negative), split into a high and a low byte, so that
// vpdpbusd takes four keys' int8 values at once with no widening (two per head for the two
// bytes). Chunk by chunk (kBytesMixKeys keys), for every query head h and value block b:
//   pm, sm as above (largest p_hj, largest s_jb of the chunk);
//   w_j = min(65535, round_half_even((p_hj * (1 / pm)) * (s_jb * (65535 / sm))));
//   the chunk's sums, sum_j w_j * q_ji, exact in int32 (64 * 65535 * 127 < 2^31);
//   out_i = fma(float(sum_i), pm * sm / 65535, out_i), chunks in order from out_i = 0.
// A weight is off by at most half of pm * sm / 65535.
#pragma once

#include <cstddef>

#include "kernels/attention_kernels.h"

namespace wp {

inline constexpr int kInt16MixKeys = 256;
// attention_mix takes it from this many query heads per call (per KV head): with fewer, the
// widening of each pair of keys outweighs the products it saves, and the f32 mix measured faster
// (gemma2-2b's two heads of 256 at 4,096 keys: 9.5-10.1 ms per token against 11.8-12.4).
inline constexpr int kInt16MixMinHeads = 4;
inline constexpr int kInt16MixMaxDim = 512;

inline constexpr int kBytesMixKeys = 64;

// The rows suit the kernel: blocks of 32, head_dim and the row stride multiples of 32, head_dim
// at most kInt16MixMaxDim. (The CPU test is the caller's: avx512_decode_kernels.)
bool int16_mix_fits(const Q8Rows& values, int head_dim, std::size_t value_stride);

// The mix above into out (nq * head_dim, overwritten), any nq. False, with out unspecified, when
// a probability is not finite (the caller then takes the f32 loops, which show the NaN).
bool mix_q8_int16(const float* p, std::size_t p_stride, int nq, const Q8Rows& values, std::size_t value_stride,
                  int n, int head_dim, float* out);

// The rows suit mix_q8_bytes: blocks of 32, head_dim 128 or 256, the row stride a multiple of 32.
bool bytes_mix_fits(const Q8Rows& values, int head_dim, std::size_t value_stride);

// The two-byte mix above into out (nq * head_dim, overwritten), any nq (in groups of up to
// three). False, with out unspecified, when a probability or a scale is negative or not finite.
bool mix_q8_bytes(const float* p, std::size_t p_stride, int nq, const Q8Rows& values, std::size_t value_stride,
                  int n, int head_dim, float* out);

}  // namespace wp

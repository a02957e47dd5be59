// Decode's scores against a q8 KV cache on integer dot products (KernelOptions::int8_queries,
// AVX-512 VNNI; blocks of 32, head_dim a multiple of 64). Each query head is rounded to int8
// blocks (d = amax / 127, as queries_as_scored rounds them, so a query already rounded keeps its
// integers), the keys are made unsigned (k + 128, which vpdpbusd takes) and every sum starts at
// -128 x its query bytes, which leaves exactly the signed sum; each block's sum is scaled by key
// scale x query scale into float. From kLanesMinHeads query heads the keys go sixteen at a time,
// one per lane (scores_vnni_lanes); otherwise, and for the keys past the last sixteen, a row at
// a time (scores_vnni, its sums reduced by sum16).
#pragma once

#include <cstddef>

#include "kernels/attention_kernels.h"

namespace wp {

inline constexpr int kVnniMaxHeads = 8, kVnniMaxDim = 512;

// The rows suit the kernels: blocks of 32, head_dim a multiple of 64 up to kVnniMaxDim, the row
// stride a multiple of 64. (The CPU test is the caller's: avx512_decode_kernels.)
bool vnni_scores_fit(const Q8Rows& keys, int head_dim, std::size_t key_stride);

// scores[h * score_stride + j] = q_h . K_j for nq <= kVnniMaxHeads query heads, as
// attention_scores. False, with nothing written, when a query block holds a NaN or an infinity or
// is too small for its scale's inverse: those heads are for the f32 loops. amx: the whole
// sixteens of keys on AMX tiles where scores_vnni_lanes would take them (attention_scores_amx.h;
// the caller checks amx_int8_available), the same floats.
bool scores_q8_vnni(const float* q, int nq, int head_dim, const Q8Rows& keys, std::size_t key_stride, int n,
                    float* scores, std::size_t score_stride, bool amx);

}  // namespace wp

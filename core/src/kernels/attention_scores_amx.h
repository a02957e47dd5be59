// Decode's scores against a q8 KV cache on AMX-INT8 tiles: the same sums as scores_vnni_lanes
// (attention_scores_q8.cpp), bit for bit, with the dot products on tdpbssd.
//
// Sixteen keys' rows, 64 bytes of each, are an A tile as they lie in the cache. The queries make
// the B tiles, built once per call: column (h, b) holds query head h's int8 in block b's 32
// places and zero elsewhere, so one C tile gathers the exact integer sum of every (head, block)
// for the sixteen keys. The tile is stored, transposed in registers (a column per vector, a key
// per lane) and scaled block after block as scores_vnni_lanes scales its sums.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/attention_kernels.h"

namespace wp {

// The tiles hold the nq heads' blocks: 16 x 2 columns and 4 B tiles (head_dim 64 or 128 for up
// to 8 heads, 256 for up to 2).
bool amx_scores_fit(int nq, int head_dim);

// scores[h * score_stride + j] for n keys (a multiple of 16) and nq heads that amx_scores_fit:
// q holds the heads' int8 (head_dim each), q_scale[h * head_dim / 32 + b] their blocks' scales;
// keys as vnni_scores_fit takes them. The caller checks amx_int8_available.
void scores_q8_amx(const std::int8_t* q, const float* q_scale, int nq, int head_dim, const Q8Rows& keys,
                   std::size_t key_stride, int n, float* scores, std::size_t score_stride);

}  // namespace wp

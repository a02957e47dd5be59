// The scratch buffers of one forward pass, one set per Context. Each grows to the largest chunk
// and context it meets and is then reused, so decoding allocates nothing per token (the
// wp_alloc_tests program counts it).
//
// Shapes, row-major: T the tokens of the call, H hidden_size, I intermediate_size, D head_dim,
// QD = num_heads * D, KD = num_kv_heads * D, keys = the keys an attention step sees (the slots
// the cache holds for the layer, then the T new ones). A buffer may be longer than its shape.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/qmatrix.h"
#include "wp/cache/kv_cache.h"

namespace wp {

// `v` with room for at least n elements (grown by doubling, never shrunk).
template <typename T>
T* ensure(std::vector<T>& v, std::size_t n) {
    if (v.size() < n) v.resize(std::max(n, v.size() * 2));
    return v.data();
}

// What one pool thread of prompt attention works in, for its current unit: kRows query rows of
// one head. Sized on the calling thread before the parallel loop, so no pool thread allocates.
struct PromptAttentionSlot {
    static constexpr int kRows = 8;  // query rows per work unit
    std::vector<float> q;            // [kRows, D] the unit's queries (rows past the unit's zero)
    std::vector<float> scores;       // [kRows, keys] scores, then probabilities (rows as wide as the unit's keys)
    std::vector<float> out;          // [kRows, D] the unit's output
    std::vector<float> out_past;     // [kRows, D] the cached values' share of it (AVX2 path)
    std::vector<float> bias;         // [keys] one row's additive mask (0 or -inf), when not plainly causal
};

// Attention's buffers (core/src/attention/).
struct AttentionScratch {
    std::vector<std::int64_t> key_pos;  // [keys] each key's absolute position, cache slots in slot order
    // Decode: sized for the cache's allocated slots + 1, so they grow only when the cache does.
    std::vector<float> scores;  // [num_heads, keys] scores, then probabilities
    std::vector<float> bias;    // [keys] additive mask (0 or -inf), when some key is hidden
    std::vector<float> partial;  // [parts, num_heads, D] a split context's outputs per part (DecodeSplit)
    std::vector<float> lse;      // [parts, num_heads] and their softmax's log denominators
    std::vector<float> query;    // [count, QD] the queries rounded as a q8 cache rounds keys (queries_as_scored)
    // Prompt.
    std::vector<float> kpast, vpast;  // [num_kv_heads, held, D] an f16 cache's rows widened to f32
    std::vector<float> keys_t;        // AVX-512: [num_kv_heads, key blocks, D, 32] each KV head's keys transposed in blocks
    std::vector<PromptAttentionSlot> slots;  // one per pool thread (made at the first prompt)
};

// One sequence's rows of a pass: `len` tokens after what `cache` holds (store: their K/V are kept
// and the cache advanced), or from position 0 attending only to each other (forward_packed).
struct ForwardSegment {
    KvCache* cache;
    int len;
    bool store;
};

struct ForwardScratch {
    std::vector<float> x;         // [T, H] the residual stream
    std::vector<float> n;         // [T, H] x normalised: the input of attention, the MLP and the logits
    std::vector<float> q;         // [T, QD] queries, RoPE applied
    std::vector<float> k, v;      // [T, KD] the new tokens' keys (RoPE applied) and values
    std::vector<float> att;       // [T, QD] attention output, heads side by side
    std::vector<float> o;         // [T, H] o_proj's and down_proj's output, before the residual add
    std::vector<float> gate, up;  // [T, I] the MLP's projections; gate then holds act(gate) * up
    std::vector<float> cos, sin;  // [T, D / 2] RoPE's table for the new positions
    std::vector<float> logits;    // [T or 1, vocab_size] (LogitsMode::All or Last)
    AttentionScratch attention;
    KernelScratch kernels;  // the matrix products' forms of their input rows
    std::vector<ForwardSegment> segments;  // forward_batch: its sequences, and their ids side by side
    std::vector<int> batch_ids;
    std::vector<AttentionScratch> slot_attention;  // a decode batch's attention: one per pool thread
    KernelOptions options;  // this pass's: the model's, or its decode kernels (Context::decode_kernel_rows)
    bool decode_order = false;  // this pass's attention row by row, as decoding (Context::decode_kernel_rows)
};

}  // namespace wp

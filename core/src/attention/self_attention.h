// One decoder layer's self-attention: the new tokens' queries against the keys the KV cache
// holds for the layer, followed by the new tokens' own keys. Those are not stored yet: the caller
// stores them after attention (transformers' cache update returns past + new the same way).
// Both functions apply the layer's MaskSpec and the config's scaling and soft-cap, record the
// probabilities into the step's trace when it covers them, run on `pool` and keep their buffers
// in `scratch`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/forward_scratch.h"
#include "wp/attention/trace.h"
#include "wp/cache/kv_cache.h"
#include "kernels/thread_pool.h"
#include "wp/model/kernel_options.h"
#include "wp/model/model_config.h"

namespace wp {

// What one layer's attention reads and writes. QD = num_heads * head_dim, KD = num_kv_heads *
// head_dim; row i is the new token at position pos0 + i.
struct AttentionStep {
    const ModelConfig& cfg;
    const KvCache& cache;   // the layer's past keys and values
    int layer;
    std::int64_t pos0;      // the first new token's position (the cache's length)
    int count;              // new tokens
    const float* q;         // [count, QD] queries, RoPE applied
    const float* k;         // [count, KD] keys, RoPE applied
    const float* v;         // [count, KD] values
    float* out;             // [count, QD] written: each query head's output, heads side by side
    AttentionTrace* trace;  // may be null
    const KernelOptions& kernels;
    // Decode: the thread count the work is split for (0: the pool's). A batch's sequences run
    // side by side, each on one thread, split as alone so that its sums come out the same.
    int split_threads = 0;
};

// Decode attention's work units on a pool of `threads`, over `keys` keys (cached and new): each
// KV head's keys in `parts` ranges of part_keys (the last shorter, none empty); when that still
// leaves threads idle (a context too short for parts), each head group's query heads in
// `head_parts` instead (each part then reads the group's keys: cheap at that length). Unit u is
// KV head u / (parts * head_parts), range (u / head_parts) % parts, query heads u % head_parts.
struct DecodeSplit {
    static constexpr int kMinKeys = 256;  // the shortest range worth a part of its own
    static constexpr int kMaxParts = 64;
    DecodeSplit(int threads, int kv_heads, int group, int keys);
    int parts, head_parts, units, part_keys;
    int kv_head(std::int64_t u) const { return static_cast<int>(u / (parts * head_parts)); }
    int part(std::int64_t u) const { return static_cast<int>(u / head_parts % parts); }
    // The unit's query heads, [first_head, end_head), of the group's `group`.
    int first_head(std::int64_t u, int group) const { return kv_head(u) * group + static_cast<int>(u % head_parts) * group / head_parts; }
    int end_head(std::int64_t u, int group) const { return kv_head(u) * group + (static_cast<int>(u % head_parts) + 1) * group / head_parts; }
};

// One new token (count == 1): the query heads that share a KV head go together.
void decode_attention(const AttentionStep& step, ThreadPool& pool, AttentionScratch& scratch);
// Several new tokens, over a cache that may already hold some (a prompt fed in chunks).
void prompt_attention(const AttentionStep& step, ThreadPool& pool, AttentionScratch& scratch);

// The step's queries as attention scores them: over a q8 cache with KernelOptions::int8_queries,
// rounded to int8 in the cache's blocks as it rounds its keys (KvCache::round_as_stored), in
// s.query; else step.q itself. Decode and prompt attention both take them, so a token's scores
// agree whether it came alone or in a chunk.
inline const float* queries_as_scored(const AttentionStep& step, AttentionScratch& s) {
    if (step.cache.type() != KvType::Q8 || !step.kernels.int8_queries) return step.q;
    const std::size_t n = static_cast<std::size_t>(step.count) * step.cfg.q_dim();
    float* q = ensure(s.query, n);
    std::copy(step.q, step.q + n, q);
    step.cache.round_as_stored(q, n);
    return q;
}

// Absolute positions of the keys an attention step sees: the cache's slots (ring layers in slot
// order), then the `count` new tokens at pos0.. . `room`: the buffer is made at least that long.
inline std::int64_t* key_positions(const KvCache& cache, int layer, std::int64_t pos0, int count,
                                   AttentionScratch& scratch, std::size_t room = 0) {
    const int n_past = cache.held(layer);
    std::int64_t* key_pos = ensure(scratch.key_pos, std::max(room, static_cast<std::size_t>(n_past + count)));
    for (int s = 0; s < n_past; ++s) key_pos[s] = cache.slot_position(layer, s);
    for (int j = 0; j < count; ++j) key_pos[n_past + j] = pos0 + j;
    return key_pos;
}

}  // namespace wp

#include "attention/self_attention.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/attention_kernels.h"
#include "kernels/f16_vectors.h"

namespace wp {

// Attention of one new query (decode). The query heads sharing a KV head are done together (each
// cached key and value is read and widened once per group), groups run in parallel on the pool
// (split further when there are fewer KV heads than threads). The cached keys are scored by one
// kernel call per group, the new key (not yet stored) separately; the mask is evaluated once per
// layer, not per head.
void decode_attention(const AttentionStep& step, ThreadPool& pool, AttentionScratch& s) {
    const ModelConfig& c = step.cfg;
    const KvCache& cache = step.cache;
    const int layer = step.layer;
    const std::int64_t pos = step.pos0;
    AttentionTrace* trace = step.trace;
    const MaskSpec& mask = c.layer_masks[layer];
    const int hd = c.head_dim;
    const int n_past = cache.held(layer);
    const int n_tot = n_past + 1;
    // The buffers that grow with the context are sized for the cache's allocated slots, so they
    // grow only when the cache does (a dynamic cache doubling), never on an ordinary token.
    const std::size_t room = static_cast<std::size_t>(std::max<std::int64_t>(n_tot, cache.allocated_slots(layer) + 1));
    const std::int64_t* key_pos = key_positions(cache, layer, pos, 1, s, room);
    float* scores = ensure(s.scores, static_cast<std::size_t>(c.num_heads) * room);
    // Additive mask (0 or -inf), only when some key is hidden.
    const float* bias = nullptr;
    {
        bool all = true;
        for (int j = 0; j < n_tot && all; ++j) all = mask.allows(pos, key_pos[j]);
        if (!all) {
            float* b = ensure(s.bias, room);
            for (int j = 0; j < n_tot; ++j) b[j] = mask.allows(pos, key_pos[j]) ? 0.0f : -std::numeric_limits<float>::infinity();
            bias = b;
        }
    }
    const bool half = cache.half();
    const float* Kp = cache.keys(layer);
    const float* Vp = cache.values(layer);
    const std::uint16_t* Kh = cache.keys16(layer);
    const std::uint16_t* Vh = cache.values16(layer);
    const float* q = step.q;
    const float* kn = step.k;
    const float* vn = step.v;
    float* att = step.out;
    const bool trace_on = trace != nullptr && trace->covers(pos) && trace->records(layer);
    const DecodeHeadSplit split(pool.size(), c.num_heads, c.num_kv_heads);

    pool.parallel_for(split.units, 1, [&](std::int64_t u0, std::int64_t u1) {
        for (std::int64_t u = u0; u < u1; ++u) {
            const int g = split.kv_head(u), h0 = split.first_head(u), nq = split.end_head(u) - h0;
            const float* qh = q + static_cast<std::size_t>(h0) * hd;
            float* rows = scores + static_cast<std::size_t>(h0) * n_tot;
            const std::size_t coff = cache.offset(layer, 0, g);  // this KV head's cached rows
            const std::size_t koff = static_cast<std::size_t>(g) * hd;  // and its new row
            if (half)
                attention_scores(qh, nq, hd, Kh + coff, hd, n_past, rows, n_tot, step.kernels);
            else
                attention_scores(qh, nq, hd, Kp + coff, hd, n_past, rows, n_tot, step.kernels);
            for (int h = 0; h < nq; ++h) {
                float* row = rows + static_cast<std::size_t>(h) * n_tot;
                row[n_past] = dot_f32(qh + static_cast<std::size_t>(h) * hd, kn + koff, hd, step.kernels);
                softmax_row(row, n_tot, c.attn_scale, c.attn_softcap, bias, step.kernels);
            }
            float* out = att + static_cast<std::size_t>(h0) * hd;
            if (half)
                attention_mix(rows, n_tot, nq, Vh + coff, hd, n_past, hd, out, step.kernels);
            else
                attention_mix(rows, n_tot, nq, Vp + coff, hd, n_past, hd, out, step.kernels);
            const float* vj = vn + koff;
            for (int h = 0; h < nq; ++h) {
                const float p = rows[static_cast<std::size_t>(h) * n_tot + n_past];
                float* o = out + static_cast<std::size_t>(h) * hd;
                for (int i = 0; i < hd; ++i) o[i] += p * vj[i];
            }
        }
    });
    if (trace_on)
        for (int h = 0; h < c.num_heads && h < trace->heads(); ++h) {
            float* tr = trace->row(layer, h, pos);
            for (int j = 0; j < n_tot; ++j)
                if (trace->covers(key_pos[j])) tr[key_pos[j]] = scores[static_cast<std::size_t>(h) * n_tot + j];
        }
}

}  // namespace wp

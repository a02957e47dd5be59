#include "attention/self_attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>

#include "kernels/attention_kernels.h"
#include "kernels/f16_vectors.h"

namespace wp {

DecodeSplit::DecodeSplit(int threads, int kv_heads, int group, int keys) {
    // The fewest parts that let the units share out evenly (kv_heads * parts a multiple of the
    // threads), each at least kMinKeys long: below that the merge costs more than it spreads.
    threads = std::max(threads, 1);
    kv_heads = std::max(kv_heads, 1);
    const int even = threads / std::gcd(kv_heads, threads);
    parts = std::clamp(std::min(even, keys / kMinKeys), 1, kMaxParts);
    part_keys = std::max(1, (keys + parts - 1) / parts);
    parts = std::max(1, (keys + part_keys - 1) / part_keys);  // no empty last part
    head_parts = parts == 1 ? std::clamp((threads + kv_heads - 1) / kv_heads, 1, std::max(group, 1)) : 1;
    units = kv_heads * parts * head_parts;
}

namespace {

// One unit's scores (cached keys, then the new key when in range) for the nq heads of KV head g,
// keys [j0, j1) of each head's row.
template <typename Rows>
void unit_scores(const float* qh, int nq, int hd, const Rows& keys, int j0, int j1, int n_past, const float* kn,
                 float* rows, int n_tot, const KernelOptions& kernels) {
    const int past_end = std::min(j1, n_past);
    if (past_end > j0) attention_scores(qh, nq, hd, keys, hd, past_end - j0, rows + j0, n_tot, kernels);
    if (j1 > n_past)
        for (int h = 0; h < nq; ++h)
            rows[static_cast<std::size_t>(h) * n_tot + n_past] = dot_f32(qh + static_cast<std::size_t>(h) * hd, kn, hd, kernels);
}

template <typename Rows>
void unit_mix(const float* rows, int nq, int hd, const Rows& values, int j0, int j1, int n_past, const float* vn,
              int n_tot, float* out, const KernelOptions& kernels) {
    const int past_end = std::min(j1, n_past);
    if (past_end > j0) attention_mix(rows + j0, n_tot, nq, values, hd, past_end - j0, hd, out, kernels);
    else std::fill(out, out + static_cast<std::size_t>(nq) * hd, 0.0f);
    if (j1 > n_past)
        for (int h = 0; h < nq; ++h) {
            const float p = rows[static_cast<std::size_t>(h) * n_tot + n_past];
            float* o = out + static_cast<std::size_t>(h) * hd;
            for (int i = 0; i < hd; ++i) o[i] += p * vn[i];
        }
}

// Calls f with the layer's cached keys (or values) from element `at` on, as the kernels read
// them: a pointer to f32 or f16, or Q8Rows.
template <typename F>
void with_rows(const KvCache& cache, int layer, std::size_t at, bool values, F&& f) {
    switch (cache.type()) {
        case KvType::F32: f((values ? cache.values(layer) : cache.keys(layer)) + at); break;
        case KvType::F16: f((values ? cache.values16(layer) : cache.keys16(layer)) + at); break;
        case KvType::Q8: {
            const int block = cache.q8_block();
            f(values ? Q8Rows(cache.values8(layer) + at, cache.value_scales(layer) + at / block, block)
                     : Q8Rows(cache.keys8(layer) + at, cache.key_scales(layer) + at / block, block));
            break;
        }
    }
}

}  // namespace

// Attention of one new query (decode). The query heads sharing a KV head are done together (each
// cached key and value is read and widened once per group), groups run in parallel on the pool.
// With fewer KV heads than threads (or a number the threads do not divide) each group's keys are
// split in parts (DecodeSplit): every part's softmax is normalised on its own, and the parts'
// outputs are merged by their log-sum-exp, so each key is still read once. The cached keys are
// scored by one kernel call per unit, the new key (not yet stored) separately; the mask is
// evaluated once per layer, not per head.
void decode_attention(const AttentionStep& step, ThreadPool& pool, AttentionScratch& s) {
    const ModelConfig& c = step.cfg;
    const KvCache& cache = step.cache;
    const int layer = step.layer;
    const std::int64_t pos = step.pos0;
    AttentionTrace* trace = step.trace;
    const MaskSpec& mask = c.layer_masks[layer];
    const int hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
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
    const float* q = queries_as_scored(step, s);
    const float* kn = step.k;
    const float* vn = step.v;
    float* att = step.out;
    const bool trace_on = trace != nullptr && trace->covers(pos) && trace->records(layer);
    const DecodeSplit split(step.split_threads > 0 ? step.split_threads : pool.size(), c.num_kv_heads, group, n_tot);
    const int parts = split.parts;
    // Split: each part's output and log-sum-exp per head (sized for the most parts, once).
    float* partial = ensure(s.partial, static_cast<std::size_t>(DecodeSplit::kMaxParts) * c.num_heads * hd);
    float* lse = ensure(s.lse, static_cast<std::size_t>(DecodeSplit::kMaxParts) * c.num_heads);

    pool.parallel_for(split.units, 1, [&](std::int64_t u0, std::int64_t u1) {
        for (std::int64_t u = u0; u < u1; ++u) {
            const int g = split.kv_head(u), part = split.part(u);
            const int h0 = split.first_head(u, group), nq = split.end_head(u, group) - h0;
            const int j0 = part * split.part_keys, j1 = std::min(n_tot, j0 + split.part_keys);
            const float* qh = q + static_cast<std::size_t>(h0) * hd;
            float* rows = scores + static_cast<std::size_t>(h0) * n_tot;
            const std::size_t coff = cache.offset(layer, j0, g);  // this KV head's cached rows from j0
            const float* kn_g = kn + static_cast<std::size_t>(g) * hd;  // and its new row
            const float* vn_g = vn + static_cast<std::size_t>(g) * hd;
            with_rows(cache, layer, coff, false, [&](const auto& keys) {
                unit_scores(qh, nq, hd, keys, j0, j1, n_past, kn_g, rows, n_tot, step.kernels);
            });
            for (int h = 0; h < nq; ++h) {
                float* row = rows + static_cast<std::size_t>(h) * n_tot + j0;
                lse[part * c.num_heads + h0 + h] =
                    softmax_row(row, j1 - j0, c.attn_scale, c.attn_softcap, bias ? bias + j0 : nullptr, step.kernels);
            }
            float* out = parts == 1 ? att + static_cast<std::size_t>(h0) * hd
                                    : partial + (static_cast<std::size_t>(part) * c.num_heads + h0) * hd;
            with_rows(cache, layer, coff, true, [&](const auto& values) {
                unit_mix(rows, nq, hd, values, j0, j1, n_past, vn_g, n_tot, out, step.kernels);
            });
        }
    });
    if (parts > 1) {
        // Part p's output weighs e^(lse_p - lse), lse the whole row's; so do its probabilities.
        constexpr float kNone = -std::numeric_limits<float>::infinity();  // a part with every key masked
        for (int h = 0; h < c.num_heads; ++h) {
            float m = kNone;
            for (int p = 0; p < parts; ++p) m = std::max(m, lse[p * c.num_heads + h]);
            double sum = 0;
            for (int p = 0; p < parts; ++p) sum += std::exp(static_cast<double>(lse[p * c.num_heads + h]) - m);
            const double total = m + std::log(sum);
            float* o = att + static_cast<std::size_t>(h) * hd;
            std::fill(o, o + hd, 0.0f);
            for (int p = 0; p < parts; ++p) {
                const float l = lse[p * c.num_heads + h];
                const float w = l == kNone ? 0.0f : static_cast<float>(std::exp(l - total));
                const float* op = partial + (static_cast<std::size_t>(p) * c.num_heads + h) * hd;
                for (int i = 0; i < hd; ++i) o[i] += w * op[i];
                if (trace_on) {
                    float* row = scores + static_cast<std::size_t>(h) * n_tot;
                    for (int j = p * split.part_keys; j < std::min(n_tot, (p + 1) * split.part_keys); ++j) row[j] *= w;
                }
            }
        }
    }
    if (trace_on)
        for (int h = 0; h < c.num_heads && h < trace->heads(); ++h) {
            float* tr = trace->row(layer, h, pos);
            for (int j = 0; j < n_tot; ++j)
                if (trace->covers(key_pos[j])) tr[key_pos[j]] = scores[static_cast<std::size_t>(h) * n_tot + j];
        }
}

}  // namespace wp

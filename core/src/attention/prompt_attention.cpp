#include "attention/self_attention.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/kernel_choice.h"
#include "kernels/attention_kernels.h"

namespace wp {

// The cached rows are read in place (f32) or widened once per call (f16, q8); the new keys follow
// them. Every query row's probabilities cover the cached keys, then the new ones.
void prompt_attention(const AttentionStep& step, ThreadPool& pool, AttentionScratch& s) {
    const ModelConfig& c = step.cfg;
    const KvCache& cache = step.cache;
    const int layer = step.layer, count = step.count;
    const std::int64_t pos0 = step.pos0;
    AttentionTrace* trace = step.trace;
    const MaskSpec& mask = c.layer_masks[layer];
    const int hd = c.head_dim, QD = c.q_dim(), KD = c.kv_dim();
    const int group = c.num_heads / c.num_kv_heads;

    const int n_past = cache.held(layer);
    const int n_tot = n_past + count;
    const std::int64_t* key_pos = key_positions(cache, layer, pos0, count, s);

    // The cached rows, head-major: KV head g's n_past rows at Kp + g * head_stride, hd apart.
    const float* Kp = cache.keys(layer);
    const float* Vp = cache.values(layer);
    std::size_t head_stride = cache.head_stride(layer);
    if (cache.type() != KvType::F32 && n_past > 0) {
        const std::size_t n = static_cast<std::size_t>(n_past) * hd;
        float* kw = ensure(s.kpast, n * c.num_kv_heads);
        float* vw = ensure(s.vpast, n * c.num_kv_heads);
        pool.parallel_for(c.num_kv_heads, 1, [&](std::int64_t g0, std::int64_t g1) {
            for (std::int64_t g = g0; g < g1; ++g) cache.widen(layer, static_cast<int>(g), n_past, kw + g * n, vw + g * n);
        });
        Kp = kw;
        Vp = vw;
        head_stride = n;
    }
    const float* q = queries_as_scored(step, s);
    const float* kn = step.k;
    const float* vn = step.v;
    float* att = step.out;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const bool plain_causal = mask.causal && mask.window == 0;

    // Work units of kRows query rows of one head, all on the pool: handing the cores back and
    // forth with BLAS threads cost more than it saved (docs/PERFORMANCE.md). Under a causal mask
    // a unit scores only the keys its last row can see (the cached ones and new keys up to it);
    // each row's later keys are zero in the probabilities. Windows and non-causal masks add a
    // per-row bias; a window also lets a unit skip the keys before it (below).
    constexpr int kRows = PromptAttentionSlot::kRows;
    const int blocks = (count + kRows - 1) / kRows;
    // With AVX-512 the keys are scored transposed (every key of a KV head in lanes, 32 at a
    // time, against broadcast query elements), which needs no horizontal sums: each KV head's
    // n_tot keys, cached then new, in blocks of 32 keys, each block hd rows of 32 (contiguous:
    // a full transpose made every head-dimension row a separate stream, too many to prefetch).
    const bool wide = avx512_decode_kernels(step.kernels);
    constexpr int kB = kPromptKeyBlock;
    const std::size_t kblocks = static_cast<std::size_t>(n_tot + kB - 1) / kB;
    const std::size_t head_keys = kblocks * kB * hd;  // one KV head's blocks
    float* keys_t = nullptr;
    if (wide) {
        keys_t = ensure(s.keys_t, static_cast<std::size_t>(c.num_kv_heads) * head_keys);
        pool.parallel_for(c.num_kv_heads, 1, [&](std::int64_t g0, std::int64_t g1) {
            for (std::int64_t g = g0; g < g1; ++g) {
                float* kt = keys_t + static_cast<std::size_t>(g) * head_keys;
                for (int j = 0; j < n_tot; ++j) {
                    const float* key = j < n_past ? Kp + g * head_stride + static_cast<std::size_t>(j) * hd
                                                  : kn + static_cast<std::size_t>(j - n_past) * KD + g * hd;
                    float* col = kt + static_cast<std::size_t>(j / kB) * kB * hd + j % kB;
                    for (int e = 0; e < hd; ++e) col[static_cast<std::size_t>(e) * kB] = key[e];
                }
            }
        });
    }
    // The pool hands out units (a slower thread simply takes fewer); each thread works in the
    // slot of its own (ThreadPool::parallel_for_slots). The slots are sized here, on this thread.
    const std::int64_t units = static_cast<std::int64_t>(c.num_heads) * blocks;
    if (s.slots.size() < static_cast<std::size_t>(pool.size())) s.slots.resize(pool.size());
    for (PromptAttentionSlot& slot : s.slots) {
        ensure(slot.q, static_cast<std::size_t>(kRows) * hd);
        ensure(slot.out, static_cast<std::size_t>(kRows) * hd);
        ensure(slot.out_past, static_cast<std::size_t>(kRows) * hd);
        ensure(slot.scores, static_cast<std::size_t>(kRows) * n_tot);
        ensure(slot.bias, static_cast<std::size_t>(n_tot));
    }
    auto run_unit = [&](std::int64_t u, PromptAttentionSlot& slot) {
        const int h = static_cast<int>(u / blocks), i0 = static_cast<int>(u % blocks) * kRows;
        const int rows = std::min(kRows, count - i0), g = h / group;
        const int new_keys = mask.causal ? i0 + rows : count;  // new keys the last row sees
        // Under a sliding window, the keys before the first row's window are hidden from every
        // row of the unit. Once that covers all the cached keys (ring layers keep them in slot
        // order, not by position), the unit starts at the first new key in the window (rounded
        // down to a 32-key block of the keys' order; the mask hides the few before it): a long
        // chunk then costs its window, not its length.
        int lo = 0;  // the unit's first key, counting the cached keys, then the new ones
        if (mask.causal && mask.window > 0 && i0 - mask.window + 1 > 0) {
            lo = (n_past + i0 - mask.window + 1) / kPromptKeyBlock * kPromptKeyBlock;
            if (lo < n_past) lo = 0;  // the block would take cached keys in: score them all
        }
        const int past = lo == 0 ? n_past : 0;            // cached keys the unit scores
        const int first_new = lo == 0 ? 0 : lo - n_past;  // and its first new key
        const int unit_new = new_keys - first_new;
        const int width = past + unit_new;  // score row r covers keys lo .. lo + width
        const float* kn_u = kn + static_cast<std::size_t>(first_new) * KD + static_cast<std::size_t>(g) * hd;
        const float* vn_u = vn + static_cast<std::size_t>(first_new) * KD + static_cast<std::size_t>(g) * hd;
        float* qb = slot.q.data();
        for (int r = 0; r < rows; ++r)
            std::copy_n(q + static_cast<std::size_t>(i0 + r) * QD + static_cast<std::size_t>(h) * hd, hd,
                        qb + static_cast<std::size_t>(r) * hd);
        float* S = slot.scores.data();
        if (wide) {
            std::fill(qb + static_cast<std::size_t>(rows) * hd, qb + static_cast<std::size_t>(kRows) * hd, 0.0f);
            prompt_scores_avx512(qb, rows, hd, keys_t + static_cast<std::size_t>(g) * head_keys + static_cast<std::size_t>(lo) * hd,
                                 width, S, width);
        } else {
            if (past > 0) attention_scores(qb, rows, hd, Kp + g * head_stride, hd, past, S, width, step.kernels);
            attention_scores(qb, rows, hd, kn_u, KD, unit_new, S + past, width, step.kernels);
        }
        for (int r = 0; r < rows; ++r) {
            const int i = i0 + r;
            const std::int64_t qp = pos0 + i;
            float* row = S + static_cast<std::size_t>(r) * width;
            const int limit = (mask.causal ? n_past + i + 1 : n_tot) - lo;  // keys the row may see, from lo
            const float* bias = nullptr;
            if (!plain_causal) {
                float* b = slot.bias.data();
                for (int j = 0; j < limit; ++j) b[j] = mask.allows(qp, key_pos[lo + j]) ? 0.0f : neg_inf;
                bias = b;
            }
            softmax_row(row, limit, c.attn_scale, c.attn_softcap, bias, step.kernels);
            std::fill(row + limit, row + width, 0.0f);
            if (trace != nullptr && trace->covers(qp) && trace->records(layer) && h < trace->heads()) {
                float* tr = trace->row(layer, h, qp);
                for (int j = 0; j < width; ++j)
                    if (trace->covers(key_pos[lo + j])) tr[key_pos[lo + j]] = row[j];
            }
        }
        float* o = slot.out.data();
        if (wide) {
            prompt_mix_avx512(S + past, width, rows, vn_u, KD, unit_new, hd, o, false);
            if (past > 0) prompt_mix_avx512(S, width, rows, Vp + g * head_stride, hd, past, hd, o, true);
        } else {
            attention_mix(S + past, width, rows, vn_u, KD, unit_new, hd, o, step.kernels);
            if (past > 0) {
                float* op = slot.out_past.data();
                attention_mix(S, width, rows, Vp + g * head_stride, hd, past, hd, op, step.kernels);
                for (std::size_t k = 0; k < static_cast<std::size_t>(rows) * hd; ++k) o[k] += op[k];
            }
        }
        for (int r = 0; r < rows; ++r)
            std::copy_n(o + static_cast<std::size_t>(r) * hd, hd,
                        att + static_cast<std::size_t>(i0 + r) * QD + static_cast<std::size_t>(h) * hd);
    };
    pool.parallel_for_slots(units, 1, [&](std::int64_t u0, std::int64_t u1, int slot) {
        for (std::int64_t u = u0; u < u1; ++u) run_unit(u, s.slots[slot]);
    });
}

}  // namespace wp

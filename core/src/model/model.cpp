#include "wp/model/model.h"

#include <algorithm>
#include <atomic>
#include <cblas.h>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <sys/mman.h>
#include <thread>

#include "wp/error.h"
#include "model/forward_scratch.h"
#include "wp/kernels/attention_kernels.h"
#include "wp/kernels/ops.h"

namespace wp {

namespace fs = std::filesystem;

Context::Context(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len, bool half_cache)
    : cache(cfg, kind, max_len, half_cache), scratch_(std::make_unique<ForwardScratch>()) {}

Context::~Context() = default;

std::unique_ptr<Model> Model::load(const fs::path& dir, const std::function<void(double)>& progress,
                                   const LoadOptions& options) {
    std::unique_ptr<Model> m(new Model());
    m->dir_ = dir;
    m->cfg_ = ModelConfig::load(dir);
    m->store_ = WeightStore::open_dir(dir);
    if (options.precision) {
        m->precision_ = *options.precision;
    } else {
        bool all_bf16 = true;
        for (const TensorView* t : m->store_.all()) all_bf16 = all_bf16 && t->dtype == DType::BF16;
        m->precision_ = all_bf16 ? Precision::BF16 : Precision::F32;
    }
    const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    m->pool_ = std::make_unique<ThreadPool>(threads);
    openblas_set_num_threads(threads);
    const ModelConfig& c = m->cfg_;
    const std::int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
    const std::int64_t QD = c.q_dim(), KD = c.kv_dim();

    m->embed_ = m->matrix("model.embed_tokens.weight", V, H);
    m->final_norm_ = m->tensor_f32("model.norm.weight", {H});
    m->lm_head_ = c.tie_word_embeddings ? m->embed_ : m->matrix("lm_head.weight", V, H);

    auto linear = [&](const std::string& name, std::int64_t out, std::int64_t in, bool bias) {
        Linear L;
        L.w = m->matrix(name + ".weight", out, in);
        if (bias) L.b = m->tensor_f32(name + ".bias", {out});
        return L;
    };
    m->layers_.resize(c.num_layers);
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        Layer& L = m->layers_[l];
        L.input_norm = m->tensor_f32(p + "input_layernorm.weight", {H});
        L.post_attn_norm = m->tensor_f32(p + "post_attention_layernorm.weight", {H});
        if (c.sandwich_norms) {
            L.pre_ffn_norm = m->tensor_f32(p + "pre_feedforward_layernorm.weight", {H});
            L.post_ffn_norm = m->tensor_f32(p + "post_feedforward_layernorm.weight", {H});
        }
        L.q = linear(p + "self_attn.q_proj", QD, H, c.qkv_bias);
        L.k = linear(p + "self_attn.k_proj", KD, H, c.qkv_bias);
        L.v = linear(p + "self_attn.v_proj", KD, H, c.qkv_bias);
        L.o = linear(p + "self_attn.o_proj", H, QD, c.attention_out_bias);
        L.gate = linear(p + "mlp.gate_proj", I, H, false);
        L.up = linear(p + "mlp.up_proj", I, H, false);
        L.down = linear(p + "mlp.down_proj", H, I, false);
        if (progress) progress(static_cast<double>(l + 1) / c.num_layers);
    }

    std::set<std::string> dtypes;
    for (const TensorView* t : m->store_.all()) {
        m->n_params_ += t->numel();
        dtypes.insert(dtype_name(t->dtype));
    }
    m->weights_dtype_ = dtypes.size() == 1 ? *dtypes.begin() : "mixed";
    return m;
}

const float* Model::tensor_f32(const std::string& name, const std::vector<std::int64_t>& shape) {
    const TensorView& t = store_.require(name, shape);
    const std::size_t n = static_cast<std::size_t>(t.numel());
    if (t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0)
        return reinterpret_cast<const float*>(t.data);  // a view into the mapping
    std::vector<float> buf(n);
    switch (t.dtype) {
        case DType::F32: std::memcpy(buf.data(), t.data, n * sizeof(float)); break;
        case DType::BF16: ops::bf16_to_f32(t.data, buf.data(), n); break;
        case DType::F16: ops::f16_to_f32(t.data, buf.data(), n); break;
    }
    owned_.push_back(std::move(buf));
    return owned_.back().data();
}

QMatrix Model::matrix(const std::string& name, std::int64_t rows, std::int64_t cols) {
    const TensorView& t = store_.require(name, {rows, cols});
    const auto addr = reinterpret_cast<std::uintptr_t>(t.data);
    QMatrix m;
    if (t.dtype == DType::BF16 && addr % 2 == 0) {
        m = make_qmatrix(precision_, static_cast<int>(rows), static_cast<int>(cols), nullptr,
                         reinterpret_cast<const std::uint16_t*>(t.data), qstore_, pool_.get());
    } else {
        // F32 (a view when aligned), or F16 / misaligned data widened once.
        m = make_qmatrix(precision_, static_cast<int>(rows), static_cast<int>(cols), tensor_f32(name, {rows, cols}),
                         nullptr, qstore_, pool_.get());
    }
    const bool view = m.f32 == reinterpret_cast<const float*>(t.data) ||
                      m.bf16 == reinterpret_cast<const std::uint16_t*>(t.data);
    if (!view) {
        // The file's pages were only read to convert them: drop them from this process's memory
        // (the mapping is private and read-only, so they come back from the file if touched).
        const std::uintptr_t page = 4096, b = (addr + page - 1) & ~(page - 1), e = (addr + t.bytes) & ~(page - 1);
        if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
    }
    return m;
}

void Model::linear(const Linear& L, const float* x, int rows, float* y, ForwardScratch& s) const {
    linear_multi({&L}, x, rows, {y}, s);
}

void Model::linear_multi(std::initializer_list<const Linear*> Ls, const float* x, int rows,
                         std::initializer_list<float*> ys, ForwardScratch& s) const {
    if (Ls.size() > 4 || ys.size() != Ls.size()) throw Error("linear_multi: up to four matrices, one output each");
    const QMatrix* Ws[4] = {};
    float* outs[4] = {};
    int n = 0;
    for (const Linear* L : Ls) Ws[n++] = &L->w;
    n = 0;
    for (float* y : ys) outs[n++] = y;
    matmul_multi(Ws, x, rows, outs, n, *pool_, s.kernels);
    for (int i = 0; i < n; ++i)
        if (const float* b = Ls.begin()[i]->b)
            for (int r = 0; r < rows; ++r) ops::add(outs[i] + static_cast<std::size_t>(r) * Ws[i]->rows, b, Ws[i]->rows);
}

std::size_t Model::weight_bytes_per_token() const {
    std::size_t b = lm_head_.bytes();
    for (const Layer& L : layers_)
        for (const Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) b += l->w.bytes();
    return b;
}

CacheKind Model::default_cache() const {
    if (cfg_.cache_implementation == "hybrid" || cfg_.cache_implementation == "sliding_window")
        return CacheKind::Hybrid;
    return CacheKind::Dynamic;
}

std::size_t Model::kv_bytes_per_token() const {
    const std::size_t elem = precision_ == Precision::Q8 || precision_ == Precision::Q4 ? 2 : 4;  // see new_context
    return static_cast<std::size_t>(cfg_.num_layers) * cfg_.kv_dim() * elem * 2;
}

std::unique_ptr<Context> Model::new_context(CacheKind kind, std::int64_t max_len) const {
    // The quantized precisions keep an f16 KV cache (half the bytes read per token at long
    // contexts); f32 and bf16 keep f32 so that their logits stay exact.
    const bool half = precision_ == Precision::Q8 || precision_ == Precision::Q4;
    return std::unique_ptr<Context>(new Context(cfg_, kind, max_len, half));
}

std::span<const float> Model::forward(Context& ctx, std::span<const int> ids, LogitsMode mode,
                                      AttentionTrace* trace) const {
    const ModelConfig& c = cfg_;
    const int T = static_cast<int>(ids.size());
    if (T == 0) throw Error("forward: no tokens given");
    for (int id : ids)
        if (id < 0 || id >= c.vocab_size)
            throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(c.vocab_size - 1) + ")");
    KvCache& cache = ctx.cache;
    cache.check_room(T);
    ForwardScratch& s = *ctx.scratch_;
    const int H = c.hidden_size, I = c.intermediate_size, QD = c.q_dim(), KD = c.kv_dim();
    const std::int64_t pos0 = cache.length();

    float* x = ensure(s.x, static_cast<std::size_t>(T) * H);
    float* n = ensure(s.n, static_cast<std::size_t>(T) * H);
    float* q = ensure(s.q, static_cast<std::size_t>(T) * QD);
    float* k = ensure(s.k, static_cast<std::size_t>(T) * KD);
    float* v = ensure(s.v, static_cast<std::size_t>(T) * KD);
    float* att = ensure(s.att, static_cast<std::size_t>(T) * QD);
    float* o = ensure(s.o, static_cast<std::size_t>(T) * H);
    float* gate = ensure(s.gate, static_cast<std::size_t>(T) * I);
    float* up = ensure(s.up, static_cast<std::size_t>(T) * I);
    float* cos = ensure(s.cos, static_cast<std::size_t>(T) * c.head_dim / 2);
    float* sin = ensure(s.sin, static_cast<std::size_t>(T) * c.head_dim / 2);

    // transformers multiplies by sqrt(hidden) as a tensor of the activation dtype (f32 here).
    const float emb_scale = c.scale_embeddings ? static_cast<float>(std::sqrt(static_cast<double>(H))) : 1.0f;
    for (int t = 0; t < T; ++t) {
        float* xt = x + static_cast<std::size_t>(t) * H;
        embed_.dequantize_rows(ids[t], ids[t] + 1, xt);
        for (int i = 0; i < H; ++i) xt[i] *= emb_scale;
    }
    ops::rope_table(c.rope_theta, c.head_dim, pos0, T, cos, sin);
    const float eps = static_cast<float>(c.rms_norm_eps);
    const std::size_t TH = static_cast<std::size_t>(T) * H;

    for (int l = 0; l < c.num_layers; ++l) {
        const Layer& L = layers_[l];
        ops::rms_norm(x, L.input_norm, n, T, H, eps, c.norm_style);
        linear_multi({&L.q, &L.k, &L.v}, n, T, {q, k, v}, s);
        ops::rope(q, T, c.num_heads, c.head_dim, QD, cos, sin);
        ops::rope(k, T, c.num_kv_heads, c.head_dim, KD, cos, sin);
        if (T == 1) attention_decode(ctx, l, pos0, trace);
        else attention(ctx, l, pos0, T, trace);
        cache.store(l, k, v, T);
        linear(L.o, att, T, o, s);
        if (c.sandwich_norms) {
            ops::rms_norm(o, L.post_attn_norm, o, T, H, eps, c.norm_style);
            ops::add(x, o, TH);
            ops::rms_norm(x, L.pre_ffn_norm, n, T, H, eps, c.norm_style);
        } else {
            ops::add(x, o, TH);
            ops::rms_norm(x, L.post_attn_norm, n, T, H, eps, c.norm_style);
        }
        linear_multi({&L.gate, &L.up}, n, T, {gate, up}, s);
        const std::size_t TI = static_cast<std::size_t>(T) * I;
        if (c.activation == Activation::GeluTanh) ops::gelu_tanh_mul(gate, up, gate, TI);
        else ops::silu_mul(gate, up, gate, TI);
        linear(L.down, gate, T, o, s);
        if (c.sandwich_norms) ops::rms_norm(o, L.post_ffn_norm, o, T, H, eps, c.norm_style);
        ops::add(x, o, TH);
    }
    cache.advance(T);

    const int rows = mode == LogitsMode::All ? T : 1;
    const float* last = x + static_cast<std::size_t>(T - rows) * H;
    ops::rms_norm(last, final_norm_, n, rows, H, eps, c.norm_style);
    const std::size_t nl = static_cast<std::size_t>(rows) * c.vocab_size;
    float* logits = ensure(s.logits, nl);
    matmul(lm_head_, n, rows, logits, *pool_, s.kernels);
    if (c.final_softcap > 0) ops::softcap(logits, nl, c.final_softcap);
    return {logits, nl};
}

// Absolute positions of the keys one attention step sees: the cache's slots (ring layers in slot
// order), then the `count` new tokens at pos0.. .
// `room`: the buffer is made at least that large (see attention_decode).
static std::int64_t* key_positions(const KvCache& cache, int layer, std::int64_t pos0, int count,
                                   AttentionScratch& s, std::size_t room = 0) {
    const int n_past = cache.held(layer);
    std::int64_t* key_pos = ensure(s.key_pos, std::max(room, static_cast<std::size_t>(n_past + count)));
    for (int s = 0; s < n_past; ++s) key_pos[s] = cache.slot_position(layer, s);
    for (int j = 0; j < count; ++j) key_pos[n_past + j] = pos0 + j;
    return key_pos;
}

// Attention of one new query (decode). The query heads sharing a KV head are done together (each
// cached key and value is read and widened once per group), groups run in parallel on the pool
// (split further when there are fewer KV heads than threads). The cached keys are scored by one
// kernel call per group, the new key (not yet stored) separately; the mask is evaluated once per
// layer, not per head.
void Model::attention_decode(Context& ctx, int layer, std::int64_t pos, AttentionTrace* trace) const {
    const ModelConfig& c = cfg_;
    const KvCache& cache = ctx.cache;
    ForwardScratch& ws = *ctx.scratch_;
    AttentionScratch& s = ws.attention;
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
    const float* q = ws.q.data();
    const float* kn = ws.k.data();
    const float* vn = ws.v.data();
    float* att = ws.att.data();
    const bool trace_on = trace != nullptr && trace->covers(pos) && trace->records(layer);
    const DecodeHeadSplit split(pool_->size(), c.num_heads, c.num_kv_heads);

    pool_->parallel_for(split.units, 1, [&](std::int64_t u0, std::int64_t u1) {
        for (std::int64_t u = u0; u < u1; ++u) {
            const int g = split.kv_head(u), h0 = split.first_head(u), nq = split.end_head(u) - h0;
            const float* qh = q + static_cast<std::size_t>(h0) * hd;
            float* rows = scores + static_cast<std::size_t>(h0) * n_tot;
            const std::size_t coff = cache.offset(layer, 0, g);  // this KV head's cached rows
            const std::size_t koff = static_cast<std::size_t>(g) * hd;  // and its new row
            if (half)
                attention_scores(qh, nq, hd, Kh + coff, hd, n_past, rows, n_tot);
            else
                attention_scores(qh, nq, hd, Kp + coff, hd, n_past, rows, n_tot);
            for (int h = 0; h < nq; ++h) {
                float* row = rows + static_cast<std::size_t>(h) * n_tot;
                row[n_past] = dot_f32(qh + static_cast<std::size_t>(h) * hd, kn + koff, hd);
                softmax_row(row, n_tot, c.attn_scale, c.attn_softcap, bias);
            }
            float* out = att + static_cast<std::size_t>(h0) * hd;
            if (half)
                attention_mix(rows, n_tot, nq, Vh + coff, hd, n_past, hd, out);
            else
                attention_mix(rows, n_tot, nq, Vp + coff, hd, n_past, hd, out);
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

// Attention of `count` new queries (in ws.q, RoPE applied) over the keys the cache holds for the
// layer plus the new keys (ws.k/ws.v, not yet stored). Writes ws.att.
void Model::attention(Context& ctx, int layer, std::int64_t pos0, int count, AttentionTrace* trace) const {
    const ModelConfig& c = cfg_;
    const KvCache& cache = ctx.cache;
    ForwardScratch& ws = *ctx.scratch_;
    AttentionScratch& s = ws.attention;
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
    if (cache.half() && n_past > 0) {
        const std::size_t n = static_cast<std::size_t>(n_past) * hd;
        float* kw = ensure(s.kpast, n * c.num_kv_heads);
        float* vw = ensure(s.vpast, n * c.num_kv_heads);
        pool_->parallel_for(c.num_kv_heads, 1, [&](std::int64_t g0, std::int64_t g1) {
            for (std::int64_t g = g0; g < g1; ++g) {
                f16_to_f32_array(cache.keys16(layer) + cache.offset(layer, 0, static_cast<int>(g)), kw + g * n, n);
                f16_to_f32_array(cache.values16(layer) + cache.offset(layer, 0, static_cast<int>(g)), vw + g * n, n);
            }
        });
        Kp = kw;
        Vp = vw;
        head_stride = n;
    }
    const float* q = ws.q.data();
    const float* kn = ws.k.data();
    const float* vn = ws.v.data();
    float* att = ws.att.data();
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const bool plain_causal = mask.causal && mask.window == 0;

    // Work units of kRows query rows of one head, all on the pool (no BLAS threads to hand the
    // cores back and forth with, which took ~15% of a q4 prompt's time). Under a causal mask a
    // unit scores only the keys its last row can see (the cached ones and new keys up to it);
    // each row's later keys are zero in the probabilities. Windows and non-causal masks add a
    // per-row bias.
    constexpr int kRows = 8;
    const int blocks = (count + kRows - 1) / kRows;
    // With AVX-512 the keys are scored transposed (every key of a KV head in lanes, 32 at a
    // time, against broadcast query elements), which needs no horizontal sums: each KV head's
    // n_tot keys, cached then new, as hd rows of n_tot.
    // The rows are padded to an odd number of 64-byte lines: at a power-of-two stride (512 keys,
    // 2 KB) the 64 rows a step reads fell into the same few L1 sets.
    const bool wide = avx512_decode_kernels();
    const std::size_t kts = static_cast<std::size_t>(n_tot + 15) / 32 * 32 + 16;  // >= n_tot
    float* keys_t = nullptr;
    if (wide) {
        keys_t = ensure(s.keys_t, static_cast<std::size_t>(c.num_kv_heads) * hd * kts);
        pool_->parallel_for(c.num_kv_heads, 1, [&](std::int64_t g0, std::int64_t g1) {
            for (std::int64_t g = g0; g < g1; ++g) {
                float* kt = keys_t + static_cast<std::size_t>(g) * hd * kts;
                for (int j = 0; j < n_tot; ++j) {
                    const float* key = j < n_past ? Kp + g * head_stride + static_cast<std::size_t>(j) * hd
                                                  : kn + static_cast<std::size_t>(j - n_past) * KD + g * hd;
                    for (int e = 0; e < hd; ++e) kt[static_cast<std::size_t>(e) * kts + j] = key[e];
                }
            }
        });
    }
    // Each pool thread works in its own slot and takes units from a shared counter until none
    // are left (a slower thread simply does fewer). The slots are sized here, on this thread.
    const std::int64_t units = static_cast<std::int64_t>(c.num_heads) * blocks;
    if (s.slots.size() < static_cast<std::size_t>(pool_->size())) s.slots.resize(pool_->size());
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
        const int width = n_past + new_keys;
        float* qb = slot.q.data();
        for (int r = 0; r < rows; ++r)
            std::copy_n(q + static_cast<std::size_t>(i0 + r) * QD + static_cast<std::size_t>(h) * hd, hd,
                        qb + static_cast<std::size_t>(r) * hd);
        float* S = slot.scores.data();
        if (wide) {
            std::fill(qb + static_cast<std::size_t>(rows) * hd, qb + static_cast<std::size_t>(kRows) * hd, 0.0f);
            prompt_scores_avx512(qb, rows, hd, keys_t + static_cast<std::size_t>(g) * hd * kts, kts, width, S, width);
        } else {
            if (n_past > 0) attention_scores(qb, rows, hd, Kp + g * head_stride, hd, n_past, S, width);
            attention_scores(qb, rows, hd, kn + static_cast<std::size_t>(g) * hd, KD, new_keys, S + n_past, width);
        }
        for (int r = 0; r < rows; ++r) {
            const int i = i0 + r;
            const std::int64_t qp = pos0 + i;
            float* row = S + static_cast<std::size_t>(r) * width;
            const int limit = mask.causal ? n_past + i + 1 : n_tot;
            const float* bias = nullptr;
            if (!plain_causal) {
                float* b = slot.bias.data();
                for (int j = 0; j < limit; ++j) b[j] = mask.allows(qp, key_pos[j]) ? 0.0f : neg_inf;
                bias = b;
            }
            softmax_row(row, limit, c.attn_scale, c.attn_softcap, bias);
            std::fill(row + limit, row + width, 0.0f);
            if (trace != nullptr && trace->covers(qp) && trace->records(layer) && h < trace->heads()) {
                float* tr = trace->row(layer, h, qp);
                for (int j = 0; j < width; ++j)
                    if (trace->covers(key_pos[j])) tr[key_pos[j]] = row[j];
            }
        }
        float* o = slot.out.data();
        if (wide) {
            prompt_mix_avx512(S + n_past, width, rows, vn + static_cast<std::size_t>(g) * hd, KD, new_keys, hd, o, false);
            if (n_past > 0) prompt_mix_avx512(S, width, rows, Vp + g * head_stride, hd, n_past, hd, o, true);
        } else {
            attention_mix(S + n_past, width, rows, vn + static_cast<std::size_t>(g) * hd, KD, new_keys, hd, o);
            if (n_past > 0) {
                float* op = slot.out_past.data();
                attention_mix(S, width, rows, Vp + g * head_stride, hd, n_past, hd, op);
                for (std::size_t k = 0; k < static_cast<std::size_t>(rows) * hd; ++k) o[k] += op[k];
            }
        }
        for (int r = 0; r < rows; ++r)
            std::copy_n(o + static_cast<std::size_t>(r) * hd, hd,
                        att + static_cast<std::size_t>(i0 + r) * QD + static_cast<std::size_t>(h) * hd);
    };
    std::atomic<std::int64_t> next_unit{0};
    pool_->parallel_for(pool_->size(), 1, [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t)
            for (std::int64_t u; (u = next_unit.fetch_add(1, std::memory_order_relaxed)) < units;) run_unit(u, s.slots[t]);
    });
}

}  // namespace wp

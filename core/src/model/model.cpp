#include "wp/model/model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <sys/mman.h>
#include <vector>

#include "attention/self_attention.h"
#include "model/forward_scratch.h"
#include "wp/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/gguf_weights.h"
#include "kernels/kernel_choice.h"
#include "model/gguf_checkpoint.h"
#include "kernels/ops.h"
#include "kernels/qmatrix.h"
#include "kernels/thread_pool.h"
#include "wp/model/decode_kernel_choice.h"
#include "wp/model/threads.h"

namespace wp {

namespace fs = std::filesystem;

// A model's weights in their compute precision, its thread pool, and the decoder that runs them.
struct Model::Impl {
    struct Linear {
        QMatrix w;
        const float* b = nullptr;
    };
    struct Layer {
        const float* input_norm = nullptr;
        const float* post_attn_norm = nullptr;
        const float* pre_ffn_norm = nullptr;   // Gemma2
        const float* post_ffn_norm = nullptr;  // Gemma2
        Linear q, k, v, o, gate, up, down;
    };

    const float* tensor_f32(const std::string& name, const std::vector<std::int64_t>& shape);
    QMatrix matrix(const std::string& name, std::int64_t rows, std::int64_t cols);
    void linear(const Linear& L, const float* x, int rows, float* y, ForwardScratch& s) const;
    // The same input through up to four matrices (see matmul_multi: on the decode kernels' path
    // the input is prepared once and one parallel loop covers all their rows).
    void linear_multi(std::initializer_list<const Linear*> Ls, const float* x, int rows,
                      std::initializer_list<float*> ys, ForwardScratch& s) const;
    using Segment = ForwardSegment;
    // `ids` holds the segments' tokens one after another. Logits: Last gives each segment's last
    // row ([segments, n]), All every row.
    std::span<const float> forward(std::span<const Segment> segs, ForwardScratch& s, std::span<const int> ids,
                                   LogitsMode mode, AttentionTrace* trace, const LayerObserver* observer = nullptr) const;
    // Final norm, then lm_head and the soft-cap, of `rows` residual rows; the logits in s.logits.
    std::span<const float> read_out(ForwardScratch& s, const float* x, int rows) const;

    // A GGUF file's tensor as a matrix in `precision` (kept, repacked or converted).
    QMatrix gguf_matrix(const GgufTensor& t, std::int64_t rows, std::int64_t cols);
    void note_conversion(const std::string& from, Precision to, bool repacked);

    ModelConfig cfg_;
    std::filesystem::path dir_;
    WeightStore store_;
    std::unique_ptr<GgufFile> gguf_;  // set when the model is one GGUF file
    bool precision_chosen_ = false;   // LoadOptions::precision given: every matrix in it
    std::vector<WeightConversion> conversions_;
    std::vector<std::vector<float>> owned_;  // widened or realigned copies
    WeightStorage qstore_;                   // quantized or converted matrices
    QMatrix embed_;
    const float* final_norm_ = nullptr;
    QMatrix lm_head_;               // causal LMs
    QMatrix head_;                  // task heads: score or qa_outputs, f32
    const float* head_bias_ = nullptr;
    Precision precision_ = Precision::F32;
    KvType kv_ = KvType::F32;  // the contexts' cache type, settled at load
    std::unique_ptr<ThreadPool> pool_;
    mutable ThreadPool serial_{1};  // runs a loop on the calling thread (a batch's attention, one sequence per thread)
    KernelOptions kernels_;  // from LoadOptions::kernels (and its decode choice), passed to every product
    bool measured_decode_kernels_ = false;
    std::vector<Layer> layers_;
    std::int64_t n_params_ = 0;
    std::string weights_dtype_;
};

Context::Context(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len, KvType kv)
    : cache(cfg, kind, max_len, kv), scratch_(std::make_unique<ForwardScratch>()) {}

Context::~Context() = default;

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelConfig& Model::config() const { return impl_->cfg_; }
const fs::path& Model::dir() const { return impl_->dir_; }
std::int64_t Model::parameter_count() const { return impl_->n_params_; }
std::string Model::weights_dtype() const { return impl_->weights_dtype_; }
const std::vector<WeightConversion>& Model::weight_conversions() const { return impl_->conversions_; }
const GgufFile* Model::gguf() const { return impl_->gguf_.get(); }
Precision Model::precision() const { return impl_->precision_; }
int Model::threads() const { return impl_->pool_->size(); }
void Model::for_each_parallel(int n, const std::function<void(int)>& fn) const {
    impl_->pool_->parallel_for(n, 1, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) fn(static_cast<int>(i));
    });
}
bool Model::measured_decode_kernels() const { return impl_->measured_decode_kernels_; }
const KernelOptions& Model::kernels() const { return impl_->kernels_; }

namespace {

// The precision a GGUF matrix keeps unless the user picks one: its own where Windowpane has it (F32,
// BF16; Q8_0 and Q4_0 repacked as q8 and q4), f32 for F16 (exact), q8 for the other quantized types.
Precision natural_precision(std::uint32_t type) {
    switch (static_cast<GgmlType>(type)) {
        case GgmlType::F32: case GgmlType::F16: return Precision::F32;
        case GgmlType::BF16: return Precision::BF16;
        case GgmlType::Q4_0: return Precision::Q4;
        default: return Precision::Q8;
    }
}

// The model's precision (what it reports, and what picks the KV cache's default): the natural
// precision of most of its matrices' weights.
Precision gguf_default_precision(const GgufFile& f) {
    std::map<Precision, std::int64_t> weights;
    for (const GgufTensor& t : f.tensors())
        if (t.dims.size() == 2) weights[natural_precision(t.type)] += t.numel();
    Precision best = Precision::F32;
    std::int64_t most = -1;
    for (const auto& [p, n] : weights)
        if (n > most) best = p, most = n;
    return best;
}

// A whole tensor as f32, rows on the pool's threads.
void dequantize_ggml_tensor(const GgufTensor& t, float* out, ThreadPool* pool = nullptr) {
    const std::int64_t cols = t.dims[0], rows = t.numel() / cols;
    const std::size_t row_bytes = t.bytes / static_cast<std::size_t>(rows);
    auto run = [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r)
            dequantize_ggml_row(t.type, t.data + static_cast<std::size_t>(r) * row_bytes, out + r * cols, cols);
    };
    if (pool) pool->parallel_for(rows, 16, run);
    else run(0, rows);
}

// gate = act(gate) * up over n values: on the pool's threads when a batch makes them many, since
// on one thread the other would wait for it; the values do not depend on the split.
void activate(Activation act, float* gate, const float* up, std::size_t n, ThreadPool& pool) {
    auto run = [&](std::int64_t b, std::int64_t e) {
        const std::size_t o = static_cast<std::size_t>(b), len = static_cast<std::size_t>(e - b);
        if (act == Activation::GeluTanh) ops::gelu_tanh_mul(gate + o, up + o, gate + o, len);
        else ops::silu_mul(gate + o, up + o, gate + o, len);
    };
    if (n >= 16384 && pool.size() > 1) pool.parallel_for(static_cast<std::int64_t>(n), 1024, run);
    else run(0, static_cast<std::int64_t>(n));
}

}  // namespace

std::unique_ptr<Model> Model::load(const fs::path& dir, const std::function<void(double)>& progress,
                                   const LoadOptions& options) {
    if (options.threads < 0 || options.threads > kMaxThreads)
        throw Error("threads must be between 0 and " + std::to_string(kMaxThreads) + ", got " +
                    std::to_string(options.threads));
    auto impl = std::make_unique<Impl>();
    Impl* m = impl.get();
    m->dir_ = dir;
    if (is_gguf_file(dir)) {
        m->gguf_ = std::make_unique<GgufFile>(dir);
        m->cfg_ = gguf_model_config(*m->gguf_);
    } else {
        m->cfg_ = ModelConfig::load(dir);
        m->store_ = WeightStore::open_dir(dir);
    }
    m->precision_chosen_ = options.precision.has_value();
    if (options.precision) {
        m->precision_ = *options.precision;
    } else if (m->gguf_) {
        m->precision_ = gguf_default_precision(*m->gguf_);
    } else {
        bool all_bf16 = true;
        for (const TensorView* t : m->store_.all()) all_bf16 = all_bf16 && t->dtype == DType::BF16;
        m->precision_ = all_bf16 ? Precision::BF16 : Precision::F32;
    }
    m->pool_ = std::make_unique<ThreadPool>(options.threads > 0 ? options.threads : default_thread_count());
    m->kernels_ = options.kernels;
    if (!options.decode_choice_file.empty()) {
        // After the folder's config and weight headers are known good, before the slow part.
        DecodeChoiceOptions co;
        co.threads = m->pool_->size();
        const DecodeKernelChoice choice = choose_decode_kernels(options.decode_choice_file, co);
        m->kernels_ = choice.apply(m->kernels_);
        m->measured_decode_kernels_ = choice.measured_now;
    }
    // The quantized precisions keep an f16 KV cache by default (half the bytes read per token at
    // long contexts); f32 and bf16 keep f32 so that their logits stay exact.
    const bool quantized = m->precision_ == Precision::Q8 || m->precision_ == Precision::Q4;
    m->kv_ = options.kv_cache.value_or(quantized ? KvType::F16 : KvType::F32);
    const ModelConfig& c = m->cfg_;
    const std::int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
    const std::int64_t QD = c.q_dim(), KD = c.kv_dim();

    const std::string& body = c.weights_prefix;
    m->embed_ = m->matrix(body + "embed_tokens.weight", V, H);
    m->final_norm_ = m->tensor_f32(body + "norm.weight", {H});
    if (c.head == Head::CausalLM) {
        m->lm_head_ = c.tie_word_embeddings ? m->embed_ : m->matrix("lm_head.weight", V, H);
    } else {
        // A task head: small, and kept in f32 whatever the body's precision.
        const bool qa = c.head == Head::QuestionAnswering;
        const std::string name = qa ? "qa_outputs" : "score";
        const std::int64_t outputs = c.num_outputs();
        m->head_ = make_qmatrix(Precision::F32, static_cast<int>(outputs), static_cast<int>(H),
                                m->tensor_f32(name + ".weight", {outputs, H}), nullptr, m->qstore_);
        if (c.head != Head::SequenceClassification) m->head_bias_ = m->tensor_f32(name + ".bias", {outputs});
    }

    auto linear = [&](const std::string& name, std::int64_t out, std::int64_t in, bool bias) {
        Impl::Linear L;
        L.w = m->matrix(name + ".weight", out, in);
        if (bias) L.b = m->tensor_f32(name + ".bias", {out});
        return L;
    };
    m->layers_.resize(c.num_layers);
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string p = body + "layers." + std::to_string(l) + ".";
        Impl::Layer& L = m->layers_[l];
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
    if (m->gguf_) {
        for (const GgufTensor& t : m->gguf_->tensors()) {
            m->n_params_ += t.numel();
            if (t.dims.size() == 2) dtypes.insert(ggml_type_name(t.type));
        }
    } else {
        for (const TensorView* t : m->store_.all()) {
            m->n_params_ += t->numel();
            dtypes.insert(dtype_name(t->dtype));
        }
    }
    m->weights_dtype_ = dtypes.size() == 1 ? *dtypes.begin() : "mixed";
    return std::unique_ptr<Model>(new Model(std::move(impl)));
}

void Model::Impl::note_conversion(const std::string& from, Precision to, bool repacked) {
    for (WeightConversion& c : conversions_)
        if (c.from == from && c.to == to && c.repacked == repacked) {
            ++c.matrices;
            return;
        }
    conversions_.push_back({from, to, 1, repacked});
}

QMatrix Model::Impl::gguf_matrix(const GgufTensor& t, std::int64_t rows, std::int64_t cols) {
    const Precision target = precision_chosen_ ? precision_ : natural_precision(t.type);
    const auto type = static_cast<GgmlType>(t.type);
    const auto addr = reinterpret_cast<std::uintptr_t>(t.data);
    const int R = static_cast<int>(rows), C = static_cast<int>(cols);
    std::vector<float> tmp;
    const QMatrix m = dequantize_to(target, R, C, t.type, t.data, qstore_, pool_.get(), tmp, kernels_, t.name);
    // Q8_0 into q8, Q4_0 into q4 or q8 move the file's values bit for bit.
    const bool repacked = (type == GgmlType::Q8_0 && m.precision == Precision::Q8) ||
                          (type == GgmlType::Q4_0 && (m.precision == Precision::Q4 || m.precision == Precision::Q8));
    note_conversion(ggml_type_name(t.type), m.precision, repacked);
    const bool view = m.f32 == reinterpret_cast<const float*>(t.data) || m.bf16 == reinterpret_cast<const std::uint16_t*>(t.data);
    if (!view) {
        // As for safetensors: the file's pages were only read to convert them.
        const std::uintptr_t page = 4096, b = (addr + page - 1) & ~(page - 1), e = (addr + t.bytes) & ~(page - 1);
        if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
    }
    return m;
}

const float* Model::Impl::tensor_f32(const std::string& name, const std::vector<std::int64_t>& shape) {
    if (gguf_) {
        const GgufTensor* g = gguf_tensor(*gguf_, cfg_, name, shape);
        if (g == nullptr)
            throw Error(gguf_->path().filename().string() + ": tensor " + gguf_tensor_name(cfg_, name) + " (" + name +
                        ") is missing");
        if (g->type == static_cast<std::uint32_t>(GgmlType::F32) && reinterpret_cast<std::uintptr_t>(g->data) % alignof(float) == 0)
            return reinterpret_cast<const float*>(g->data);
        std::vector<float> buf(static_cast<std::size_t>(g->numel()));
        dequantize_ggml_tensor(*g, buf.data());
        owned_.push_back(std::move(buf));
        return owned_.back().data();
    }
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

QMatrix Model::Impl::matrix(const std::string& name, std::int64_t rows, std::int64_t cols) {
    if (gguf_) {
        const GgufTensor* g = gguf_tensor(*gguf_, cfg_, name, {rows, cols});
        if (g == nullptr)
            throw Error(gguf_->path().filename().string() + ": tensor " + gguf_tensor_name(cfg_, name) + " (" + name +
                        ") is missing");
        return gguf_matrix(*g, rows, cols);
    }
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

void Model::Impl::linear(const Linear& L, const float* x, int rows, float* y, ForwardScratch& s) const {
    linear_multi({&L}, x, rows, {y}, s);
}

void Model::Impl::linear_multi(std::initializer_list<const Linear*> Ls, const float* x, int rows,
                               std::initializer_list<float*> ys, ForwardScratch& s) const {
    if (Ls.size() > 4 || ys.size() != Ls.size()) throw Error("linear_multi: up to four matrices, one output each");
    const QMatrix* Ws[4] = {};
    float* outs[4] = {};
    int n = 0;
    for (const Linear* L : Ls) Ws[n++] = &L->w;
    n = 0;
    for (float* y : ys) outs[n++] = y;
    matmul_multi(Ws, x, rows, outs, n, *pool_, s.kernels, s.options);
    for (int i = 0; i < n; ++i)
        if (const float* b = Ls.begin()[i]->b)
            for (int r = 0; r < rows; ++r) ops::add(outs[i] + static_cast<std::size_t>(r) * Ws[i]->rows, b, Ws[i]->rows);
}

std::size_t Model::weight_bytes_per_token() const {
    std::size_t b = impl_->lm_head_.bytes();
    for (const Impl::Layer& L : impl_->layers_)
        for (const Impl::Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) b += l->w.bytes();
    return b;
}

CacheKind Model::default_cache() const {
    const ModelConfig& c = impl_->cfg_;
    if (c.cache_implementation == "hybrid" || c.cache_implementation == "sliding_window")
        return CacheKind::Hybrid;
    return CacheKind::Dynamic;
}

KvType Model::kv_type() const { return impl_->kv_; }

std::size_t Model::kv_bytes_per_token() const {
    const ModelConfig& c = impl_->cfg_;
    return static_cast<std::size_t>(c.num_layers) * c.num_kv_heads * kv_row_bytes(kv_type(), c.head_dim) * 2;
}

std::unique_ptr<Context> Model::new_context(CacheKind kind, std::int64_t max_len) const {
    return std::make_unique<Context>(impl_->cfg_, kind, max_len, kv_type());
}

std::span<const float> Model::forward(Context& ctx, std::span<const int> ids, LogitsMode mode,
                                      AttentionTrace* trace) const {
    return forward(ctx, ids, mode, trace, LayerObserver{});
}

std::span<const float> Model::forward(Context& ctx, std::span<const int> ids, LogitsMode mode, AttentionTrace* trace,
                                      const LayerObserver& observer) const {
    ForwardScratch& s = *ctx.scratch_;
    s.options = impl_->kernels_;
    const int T = static_cast<int>(ids.size());
    s.decode_order = T <= ctx.decode_kernel_rows;
    if (s.decode_order) s.options.few_rows_limit = std::max(T, s.options.few_rows_limit);
    const ForwardSegment seg{&ctx.cache, static_cast<int>(ids.size()), true};
    return impl_->forward({&seg, 1}, s, ids, mode, trace, observer ? &observer : nullptr);
}

std::span<const float> Model::read_out(Context& ctx, std::span<const float> hidden) const {
    const ModelConfig& c = impl_->cfg_;
    if (c.head != Head::CausalLM) throw Error("read_out: the model has a task head, not a language-model head");
    const std::size_t H = static_cast<std::size_t>(c.hidden_size);
    if (hidden.empty() || hidden.size() % H != 0)
        throw Error("read_out: " + std::to_string(hidden.size()) + " values are not whole rows of " + std::to_string(H));
    ForwardScratch& s = *ctx.scratch_;
    s.options = impl_->kernels_;
    return impl_->read_out(s, hidden.data(), static_cast<int>(hidden.size() / H));
}

std::span<const float> Model::forward_packed(Context& ctx, std::span<const int> ids, std::span<const int> lengths) const {
    if (lengths.empty()) throw Error("forward_packed: no sequences given");
    std::int64_t total = 0;
    for (int n : lengths) {
        if (n <= 0) throw Error("forward_packed: a sequence has no tokens");
        total += n;
    }
    if (total != static_cast<std::int64_t>(ids.size()))
        throw Error("forward_packed: the lengths add up to " + std::to_string(total) + ", not the " +
                    std::to_string(ids.size()) + " ids given");
    if (ctx.cache.length() != 0) throw Error("forward_packed: the context's cache is not empty");
    ForwardScratch& s = *ctx.scratch_;
    s.options = impl_->kernels_;
    s.decode_order = false;
    std::vector<ForwardSegment> segs;
    segs.reserve(lengths.size());
    for (int n : lengths) segs.push_back({&ctx.cache, n, false});
    return impl_->forward(segs, s, ids, LogitsMode::All, nullptr);
}

bool Model::batched_prompts_exact() const {
    auto int8 = [](const QMatrix& w) { return w.precision == Precision::Q8 || w.precision == Precision::Q4; };
    if (impl_->cfg_.head != Head::CausalLM || !int8(impl_->lm_head_) || !int8_gemm_available(impl_->kernels_)) return false;
    for (const Impl::Layer& L : impl_->layers_)
        for (const Impl::Linear* m : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
            if (!int8(m->w)) return false;
    return true;
}

std::span<const float> Model::forward_batch(Context& work, std::span<const BatchItem> items) const {
    if (items.empty()) throw Error("forward_batch: no sequences given");
    ForwardScratch& s = *work.scratch_;
    std::vector<ForwardSegment>& segs = s.segments;
    std::vector<int>& ids = s.batch_ids;
    segs.clear();
    ids.clear();
    for (const BatchItem& it : items) {
        if (it.ctx == nullptr || it.ids.empty()) throw Error("forward_batch: a sequence has no context or no tokens");
        if (it.ctx == &work) throw Error("forward_batch: the work context cannot also be a sequence");
        for (const BatchItem& other : items)
            if (&other != &it && other.ctx == it.ctx) throw Error("forward_batch: a context appears twice");
        segs.push_back({&it.ctx->cache, static_cast<int>(it.ids.size()), true});
        ids.insert(ids.end(), it.ids.begin(), it.ids.end());
    }
    s.options = impl_->kernels_;
    const int T = static_cast<int>(ids.size());
    s.decode_order = T <= work.decode_kernel_rows;
    if (s.decode_order) s.options.few_rows_limit = std::max(T, s.options.few_rows_limit);
    return impl_->forward({segs.data(), segs.size()}, s, ids, LogitsMode::Last, nullptr);
}

std::span<const float> Model::Impl::forward(std::span<const Segment> segs, ForwardScratch& s, std::span<const int> ids,
                                            LogitsMode mode, AttentionTrace* trace, const LayerObserver* observer) const {
    const ModelConfig& c = cfg_;
    const int T = static_cast<int>(ids.size());
    if (T == 0) throw Error("forward: no tokens given");
    for (int id : ids)
        if (id < 0 || id >= c.vocab_size)
            throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(c.vocab_size - 1) + ")");
    for (const Segment& g : segs)
        if (g.store) g.cache->check_room(g.len);
    const int H = c.hidden_size, I = c.intermediate_size, QD = c.q_dim(), KD = c.kv_dim();
    bool decode_batch = segs.size() > 1 && trace == nullptr;
    for (const Segment& g : segs) decode_batch = decode_batch && g.len == 1 && g.store;

    float* x = ensure(s.x, static_cast<std::size_t>(T) * H);
    float* n = ensure(s.n, static_cast<std::size_t>(T) * H);
    float* q = ensure(s.q, static_cast<std::size_t>(T) * QD);
    float* k = ensure(s.k, static_cast<std::size_t>(T) * KD);
    float* v = ensure(s.v, static_cast<std::size_t>(T) * KD);
    float* att = ensure(s.att, static_cast<std::size_t>(T) * QD);
    float* o = ensure(s.o, static_cast<std::size_t>(T) * H);
    float* gate = ensure(s.gate, static_cast<std::size_t>(T) * I);
    float* up = ensure(s.up, static_cast<std::size_t>(T) * I);
    // RoPE's table: each segment's rows at its own positions (packed ones from 0).
    const std::size_t half = static_cast<std::size_t>(c.head_dim) / 2;
    float* cos = ensure(s.cos, static_cast<std::size_t>(T) * half);
    float* sin = ensure(s.sin, static_cast<std::size_t>(T) * half);
    {
        std::size_t row = 0;
        for (const Segment& g : segs) {
            const std::int64_t pos0 = g.store ? g.cache->length() : 0;
            ops::rope_table(c.rope_theta, c.head_dim, pos0, g.len, cos + row * half, sin + row * half);
            row += static_cast<std::size_t>(g.len);
        }
    }

    // transformers multiplies by sqrt(hidden) as a tensor of the activation dtype (f32 here).
    const float emb_scale = c.scale_embeddings ? static_cast<float>(std::sqrt(static_cast<double>(H))) : 1.0f;
    for (int t = 0; t < T; ++t) {
        float* xt = x + static_cast<std::size_t>(t) * H;
        embed_.dequantize_rows(ids[t], ids[t] + 1, xt);
        for (int i = 0; i < H; ++i) xt[i] *= emb_scale;
    }
    const float eps = static_cast<float>(c.rms_norm_eps);
    const std::size_t TH = static_cast<std::size_t>(T) * H;

    for (int l = 0; l < c.num_layers; ++l) {
        const Layer& L = layers_[l];
        ops::rms_norm(x, L.input_norm, n, T, H, eps, c.norm_style);
        linear_multi({&L.q, &L.k, &L.v}, n, T, {q, k, v}, s);
        // An f16 or q8 cache: attention reads every key and value as the cache holds it, the
        // new tokens' too (stored, then read, as llama.cpp does), so a token's attention is the
        // same whether it came alone or in a chunk (prompt lookup's drafts rely on that).
        // A packed segment attends to its own tokens only, from position 0, against the (empty)
        // cache, and stores nothing: what it would see alone.
        // A decode batch (one new token per sequence): the sequences' attention side by side,
        // one per thread, each split as it would be alone; a short context's attention is too
        // small to share between threads, and one parallel loop instead of one per sequence.
        if (decode_batch) {
            if (s.slot_attention.size() < static_cast<std::size_t>(pool_->size())) s.slot_attention.resize(pool_->size());
            pool_->parallel_for_slots(static_cast<std::int64_t>(segs.size()), 1, [&](std::int64_t b, std::int64_t e, int slot) {
                for (std::int64_t i = b; i < e; ++i) {
                    KvCache& cache = *segs[i].cache;
                    const std::size_t r = static_cast<std::size_t>(i);
                    float* qs = q + r * QD;
                    float* ks = k + r * KD;
                    float* vs = v + r * KD;
                    ops::rope(qs, 1, c.num_heads, c.head_dim, QD, cos + r * half, sin + r * half);
                    ops::rope(ks, 1, c.num_kv_heads, c.head_dim, KD, cos + r * half, sin + r * half);
                    cache.round_as_stored(vs, static_cast<std::size_t>(KD));
                    cache.round_as_stored(ks, static_cast<std::size_t>(KD));
                    AttentionStep step{c, cache, l, cache.length(), 1, qs, ks, vs, att + r * QD, nullptr, kernels_};
                    step.split_threads = pool_->size();
                    decode_attention(step, serial_, s.slot_attention[static_cast<std::size_t>(slot)]);
                    cache.store(l, ks, vs, 1);
                }
            });
        }
        std::size_t row = 0;
        for (const Segment& g : decode_batch ? std::span<const Segment>() : segs) {
            KvCache& cache = *g.cache;
            const std::int64_t pos0 = g.store ? cache.length() : 0;
            float* qs = q + row * QD;
            float* ks = k + row * KD;
            float* vs = v + row * KD;
            ops::rope(qs, g.len, c.num_heads, c.head_dim, QD, cos + row * half, sin + row * half);
            ops::rope(ks, g.len, c.num_kv_heads, c.head_dim, KD, cos + row * half, sin + row * half);
            cache.round_as_stored(vs, static_cast<std::size_t>(g.len) * KD);
            cache.round_as_stored(ks, static_cast<std::size_t>(g.len) * KD);
            if (s.decode_order && g.store && g.len > 1) {
                // Row by row, each row stored before the next attends, as decoding would: the
                // same keys in the same order, so the same sums (prompt lookup's drafts). The
                // cache's length steps with the rows and goes back for the next layer (also
                // when a step throws).
                struct Rewind {
                    KvCache& cache;
                    int rows = 0;
                    ~Rewind() { cache.advance(-rows); }
                } rewind{cache};
                for (int i = 0; i < g.len; ++i) {
                    const std::size_t r = static_cast<std::size_t>(i);
                    const AttentionStep step{c, cache, l, pos0 + i, 1, qs + r * QD, ks + r * KD, vs + r * KD,
                                             att + (row + r) * QD, trace, kernels_};
                    decode_attention(step, *pool_, s.attention);
                    cache.store(l, ks + r * KD, vs + r * KD, 1);
                    cache.advance(1);
                    ++rewind.rows;
                }
            } else {
                const AttentionStep step{c, cache, l, pos0, g.len, qs, ks, vs, att + row * QD, trace, kernels_};
                if (g.len == 1) decode_attention(step, *pool_, s.attention);
                else prompt_attention(step, *pool_, s.attention);
                if (g.store) cache.store(l, ks, vs, g.len);
            }
            row += static_cast<std::size_t>(g.len);
        }
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
        activate(c.activation, gate, up, static_cast<std::size_t>(T) * I, *pool_);
        linear(L.down, gate, T, o, s);
        if (c.sandwich_norms) ops::rms_norm(o, L.post_ffn_norm, o, T, H, eps, c.norm_style);
        ops::add(x, o, TH);
        if (observer != nullptr) (*observer)(l, std::span<const float>(x, TH));
    }
    for (const Segment& g : segs)
        if (g.store) g.cache->advance(g.len);

    // The rows read out: every row, or each segment's last (one segment: the pass's last row).
    int rows = T;
    const float* last = x;
    if (mode == LogitsMode::Last) {
        rows = static_cast<int>(segs.size());
        if (rows == 1) {
            last = x + static_cast<std::size_t>(T - 1) * H;
        } else {
            float* gathered = ensure(s.o, static_cast<std::size_t>(rows) * H);
            std::size_t end = 0;
            for (std::size_t i = 0; i < segs.size(); ++i) {
                end += static_cast<std::size_t>(segs[i].len);
                std::memmove(gathered + i * H, x + (end - 1) * H, static_cast<std::size_t>(H) * sizeof(float));
            }
            last = gathered;
        }
    }
    if (c.head == Head::CausalLM) return read_out(s, last, rows);
    ops::rms_norm(last, final_norm_, n, rows, H, eps, c.norm_style);
    const std::size_t outputs = static_cast<std::size_t>(c.num_outputs()), nl = static_cast<std::size_t>(rows) * outputs;
    float* logits = ensure(s.logits, nl);
    // Task heads read the normed hidden state: no soft-cap (transformers' modeling_layers.py).
    matmul(head_, n, rows, logits, *pool_, s.kernels, s.options);
    if (head_bias_ != nullptr)
        for (int r = 0; r < rows; ++r) ops::add(logits + static_cast<std::size_t>(r) * outputs, head_bias_, outputs);
    return {logits, nl};
}

std::span<const float> Model::Impl::read_out(ForwardScratch& s, const float* x, int rows) const {
    const ModelConfig& c = cfg_;
    const std::size_t H = static_cast<std::size_t>(c.hidden_size), nl = static_cast<std::size_t>(rows) * c.num_outputs();
    float* n = ensure(s.n, static_cast<std::size_t>(rows) * H);
    ops::rms_norm(x, final_norm_, n, rows, static_cast<int>(H), static_cast<float>(c.rms_norm_eps), c.norm_style);
    float* logits = ensure(s.logits, nl);
    matmul(lm_head_, n, rows, logits, *pool_, s.kernels, s.options);
    if (c.final_softcap > 0) ops::softcap(logits, nl, c.final_softcap);
    return {logits, nl};
}

}  // namespace wp

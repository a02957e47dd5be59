// A loaded model: config, memory-mapped weights and the one decoder that runs every family.
//
// Threads: forward runs on the model's own thread pool, which takes one pass at a time, so one
// thread at a time calls forward on a model (in the app, the worker that owns it). A Context
// holds one conversation's state and goes to one forward pass at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "wp/attention/trace.h"
#include "wp/cache/kv_cache.h"
#include "wp/model/kernel_options.h"
#include "wp/model/model_config.h"
#include "wp/model/precision.h"

namespace wp {

struct ForwardScratch;  // core/src/model/forward_scratch.h
class GgufFile;        // core/src/io/gguf.h

struct LoadOptions {
    // Compute precision of the weight matrices; unset: bf16 when the file's weights are all bf16
    // (used in place, no f32 copy), else f32.
    std::optional<Precision> precision;
    // The model's thread pool, 0..kMaxThreads (Model::load throws outside); 0: one per core.
    // BLAS's threads: set_blas_threads.
    int threads = 0;
    // How contexts' KV caches hold K and V; unset: f16 for q8 and q4, else f32 (exact logits).
    std::optional<KvType> kv_cache;
    KernelOptions kernels;  // which kernels run; the defaults take the fastest the CPU has
    // Non-empty: kernels.decode_avx2 as choose_decode_kernels keeps it in this file for the CPU and
    // the pool's thread count, measured now if the file lacks it (decode_kernel_choice.h; the app
    // and the CLI pass default_decode_choice_file()).
    std::filesystem::path decode_choice_file;
};

// What one conversation needs besides the shared weights: its KV cache and the scratch buffers
// of its forward passes. Model::new_context makes one with the model's cache type.
class Context {
public:
    Context(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len = 0, KvType kv = KvType::F32);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    KvCache cache;
    // Passes of up to this many tokens take the kernels a single token takes, whatever the
    // precision's few-rows limit: prompt lookup checks its drafts so, each row's logits then
    // those decoding would have given (no bf16 or int8 rounding of the inputs). 0: off.
    int decode_kernel_rows = 0;

private:
    friend class Model;
    std::unique_ptr<ForwardScratch> scratch_;
};

enum class LogitsMode { Last, All };

// Called after each decoder layer with the residual stream of the pass's tokens,
// [ids.size(), hidden_size], as the next layer will read it (the logit lens).
using LayerObserver = std::function<void(int layer, std::span<const float> hidden)>;

// What one tensor type of a GGUF file became at load: "Q4_K" -> q8 for 169 matrices, converted
// (dequantized, then quantized); or "Q8_0" -> q8, repacked (the same values, no rounding).
struct WeightConversion {
    std::string from;  // ggml's type name
    Precision to = Precision::F32;
    int matrices = 0;
    bool repacked = false;
};

class Model {
public:
    // Reads config.json (+ generation_config.json) and the safetensors weights of `dir`, or a GGUF
    // file (is_gguf_file), checking every expected tensor's presence and shape. Throws wp::Error.
    // A GGUF file's matrices keep their own precision unless LoadOptions::precision is set:
    // F32, BF16, Q8_0 (as q8) and Q4_0 (as q4) as they are, F16 widened to f32, other types as q8.
    // `progress` (optional) is called with the fraction done, 0..1, as layers are prepared.
    static std::unique_ptr<Model> load(const std::filesystem::path& dir,
                                       const std::function<void(double)>& progress = {},
                                       const LoadOptions& options = {});
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelConfig& config() const;
    const std::filesystem::path& dir() const;
    std::int64_t parameter_count() const;
    std::string weights_dtype() const;  // "F32", "BF16", "F16", a GGUF type ("Q8_0"), "mixed"
    // For a GGUF file, each matrix type and what it became (empty for a folder).
    const std::vector<WeightConversion>& weight_conversions() const;
    // The mapped GGUF file when the model is one (nullptr for a folder), for core's loaders of
    // its tokenizer and template, so that its header is read once.
    const GgufFile* gguf() const;
    Precision precision() const;
    int threads() const;
    // fn(i) for every i in [0, n) on the model's threads (the caller's among them), returning when
    // all are done: per-sequence work between a serving batch's passes (sampling its rows). Not
    // while a pass of this model runs (its threads run both); fn must not throw.
    void for_each_parallel(int n, const std::function<void(int)>& fn) const;
    const KernelOptions& kernels() const;  // what runs: LoadOptions::kernels with the decode choice applied
    bool measured_decode_kernels() const;  // this load measured the decode choice (its file lacked it)
    std::size_t weight_bytes_per_token() const;  // weight bytes one decode step reads
    CacheKind default_cache() const;
    KvType kv_type() const;  // the contexts' KV cache type (LoadOptions::kv_cache)
    std::size_t kv_bytes_per_token() const;  // all layers, K and V, as kv_type() holds them

    std::unique_ptr<Context> new_context(CacheKind kind, std::int64_t max_len = 0) const;
    std::unique_ptr<Context> new_context() const { return new_context(default_cache()); }

    // Runs `ids` at positions ctx.cache.length() ..; stores their K/V in the cache; returns the
    // outputs of the last token ([n]) or of every token ([ids.size(), n]), valid until the next call
    // on ctx: n = config().num_outputs(), the vocabulary's logits for a causal LM, the head's
    // outputs for a task head (task_heads.h). With `trace`, records post-softmax attention probabilities.
    std::span<const float> forward(Context& ctx, std::span<const int> ids, LogitsMode mode,
                                   AttentionTrace* trace = nullptr) const;
    // The same, with `observer` called after every layer (on the calling thread, between the
    // pool's products; it may use the model with another Context).
    std::span<const float> forward(Context& ctx, std::span<const int> ids, LogitsMode mode, AttentionTrace* trace,
                                   const LayerObserver& observer) const;

    // Residual-stream rows [rows, hidden_size] read out as the last layer's are: the final norm,
    // lm_head (or the tied embedding), the final soft-cap. Returns logits [rows, vocab_size],
    // valid until the next call on ctx (whose cache is not touched). Causal LMs only.
    std::span<const float> read_out(Context& ctx, std::span<const float> hidden) const;

    // Several independent sequences in one pass (task heads scoring many texts): `ids` holds them
    // one after another, `lengths` their sizes. Each starts at position 0 and attends only to its
    // own tokens, so every row's outputs equal those of the sequence run alone in a fresh context;
    // the matrix products run over all rows at once. ctx's cache must be empty and stays so;
    // returns every token's outputs ([ids.size(), n]), valid until the next call on ctx.
    std::span<const float> forward_packed(Context& ctx, std::span<const int> ids, std::span<const int> lengths) const;

    // Continuous batching: several conversations' next tokens in one pass, each after what its own
    // context's cache holds (its own positions), its K/V stored there. The matrix products run
    // over all rows at once, one read of the weights for the batch; attention runs per sequence.
    // With work.decode_kernel_rows >= the rows, each row's logits equal those of the sequence run
    // alone (one token at a time), bit for bit. `work` lends its scratch buffers (its cache is
    // not touched) and is not one of the items. Returns each item's last-token outputs
    // ([items.size(), n]), valid until the next call on work.
    struct BatchItem {
        Context* ctx;
        std::span<const int> ids;
    };
    std::span<const float> forward_batch(Context& work, std::span<const BatchItem> items) const;
    // Whether forward_batch over several prompt chunks (work.decode_kernel_rows 0) gives each the
    // bits it gets alone through forward(): every matrix q8 or q4 on the int8 product, whose rows
    // do not depend on one another (nor on whether the decode kernels took them). sgemm and the
    // bf16 products make no such promise.
    bool batched_prompts_exact() const;

private:
    struct Impl;  // weights, thread pool and the decoder (model.cpp)
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace wp

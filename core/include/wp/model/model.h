// A loaded model: config, memory-mapped weights and the one decoder that runs every family.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "wp/attention/trace.h"
#include "wp/cache/kv_cache.h"
#include "wp/io/safetensors.h"
#include "wp/kernels/qmatrix.h"
#include "wp/kernels/thread_pool.h"
#include "wp/model/model_config.h"

namespace wp {

struct ForwardScratch;  // internal: core/src/model/forward_scratch.h

struct LoadOptions {
    // Compute precision of the weight matrices; unset: bf16 when the file's weights are all bf16
    // (used in place, no f32 copy), else f32.
    std::optional<Precision> precision;
    int threads = 0;  // 0: one per core; BLAS uses the same number
};

// What one conversation needs besides the shared weights: its KV cache and the scratch buffers
// of its forward passes. Model::new_context makes one with the model's cache type.
class Context {
public:
    Context(const ModelConfig& cfg, CacheKind kind, std::int64_t max_len = 0, bool half_cache = false);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    KvCache cache;

private:
    friend class Model;
    std::unique_ptr<ForwardScratch> scratch_;
};

enum class LogitsMode { Last, All };

class Model {
public:
    // Reads config.json (+ generation_config.json) and the safetensors weights of `dir`, checking
    // every expected tensor's presence and shape. Throws wp::Error.
    // `progress` (optional) is called with the fraction done, 0..1, as layers are prepared.
    static std::unique_ptr<Model> load(const std::filesystem::path& dir,
                                       const std::function<void(double)>& progress = {},
                                       const LoadOptions& options = {});

    const ModelConfig& config() const { return cfg_; }
    const std::filesystem::path& dir() const { return dir_; }
    std::int64_t parameter_count() const { return n_params_; }
    std::string weights_dtype() const { return weights_dtype_; }  // "F32", "BF16", "F16", "mixed"
    Precision precision() const { return precision_; }
    int threads() const { return pool_->size(); }
    std::size_t weight_bytes_per_token() const;  // weight bytes one decode step reads
    CacheKind default_cache() const;
    std::size_t kv_bytes_per_token() const;  // all layers, K and V (f16 for q8/q4, else f32)

    std::unique_ptr<Context> new_context(CacheKind kind, std::int64_t max_len = 0) const;
    std::unique_ptr<Context> new_context() const { return new_context(default_cache()); }

    // Runs `ids` at positions ctx.cache.length() ..; stores their K/V in the cache; returns the
    // logits of the last token ([vocab]) or of every token ([ids.size(), vocab]), valid until the
    // next call on ctx. With `trace`, records post-softmax attention probabilities.
    std::span<const float> forward(Context& ctx, std::span<const int> ids, LogitsMode mode,
                                   AttentionTrace* trace = nullptr) const;

private:
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

    Model() = default;
    const float* tensor_f32(const std::string& name, const std::vector<std::int64_t>& shape);
    QMatrix matrix(const std::string& name, std::int64_t rows, std::int64_t cols);
    void linear(const Linear& L, const float* x, int rows, float* y, ForwardScratch& s) const;
    // The same input through up to four matrices (see matmul_multi: on the decode kernels' path
    // the input is prepared once and one parallel loop covers all their rows).
    void linear_multi(std::initializer_list<const Linear*> Ls, const float* x, int rows, std::initializer_list<float*> ys,
                      ForwardScratch& s) const;

    ModelConfig cfg_;
    std::filesystem::path dir_;
    WeightStore store_;
    std::vector<std::vector<float>> owned_;  // widened or realigned copies
    QStorage qstore_;                        // quantized or converted matrices
    QMatrix embed_;
    const float* final_norm_ = nullptr;
    QMatrix lm_head_;
    Precision precision_ = Precision::F32;
    std::unique_ptr<ThreadPool> pool_;
    std::vector<Layer> layers_;
    std::int64_t n_params_ = 0;
    std::string weights_dtype_;
};

}  // namespace wp

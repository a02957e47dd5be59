#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "wp/kernels/qmatrix.h"

namespace wp::cli {

struct BenchOptions {
    std::string model_dir;
    std::optional<Precision> precision;  // unset: the model's default
    int threads = 0;
    int prompt_tokens = 512;
    int gen_tokens = 128;
    int repeat = 5;
    bool json = false;
    KernelOptions kernels;  // --avx2, --no-int8-gemm
};

// Load time, prefill and decode tokens/s (median, min, max), peak RSS and KV bytes.
int bench(const BenchOptions& options);
// Memory read bandwidth with 1..threads threads.
int bench_memory(int threads);
// Matrix-vector throughput (GB/s of weights) of each precision's decode kernel at one shape; with
// inputs > 1, the product with that many input rows (a prompt) in GMAC/s.
int bench_kernels(int rows, int cols, int threads, int repeat, int mb, const std::vector<Precision>& precisions,
                  int inputs, const KernelOptions& kernels);
// Decode attention over a cache of `context` tokens in every layer (scores, softmax, mix, the
// query heads of each KV head together): time per token and GB/s of cache read.
struct AttentionBenchOptions {
    int context = 2048, layers = 26, heads = 8, kv_heads = 4, head_dim = 256, threads = 2, repeat = 7;
    bool f32_cache = false;  // f16 (the quantized precisions' cache) by default
};
int bench_attention(const AttentionBenchOptions& options);
double measure_read_bandwidth(int threads, std::size_t bytes, int repeat);

}  // namespace wp::cli

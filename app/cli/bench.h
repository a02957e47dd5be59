#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wp/bench/kernel_bench.h"
#include "wp/model/kernel_options.h"
#include "wp/model/model.h"
#include "wp/model/precision.h"

namespace wp::cli {

// The model a benchmark loads: which checkpoint, and how it runs.
struct BenchModelOptions {
    std::string model_dir;
    std::optional<Precision> precision;  // unset: the model's default
    std::optional<KvType> kv;            // unset: the precision's default
    int threads = 0;
    KernelOptions kernels;  // --avx2, --no-int8-gemm
    bool decode_choice = true;  // the decode kernels measured fastest here (not with --avx2 or --avx512)
};

// Loads it (noting on stderr when the decode kernels were measured for this CPU).
std::unique_ptr<Model> load_bench_model(const BenchModelOptions& options);

struct BenchOptions : BenchModelOptions {
    int prompt_tokens = 512;
    int gen_tokens = 128;
    int repeat = 5;
    bool json = false;
};

// Load time, prefill and decode tokens/s (median, min, max), peak RSS and KV bytes.
int bench(const BenchOptions& options);
// Memory read bandwidth with 1..threads threads.
int bench_memory(int threads);
// Matrix-vector throughput (GB/s of weights) of each precision's decode kernel at one shape; with
// inputs > 1, the product with that many input rows (a prompt) in GMAC/s.
int bench_kernels(const bench::KernelBenchOptions& options, const std::vector<Precision>& precisions);
// Decode attention over a cache: time per token and GB/s of cache read.
int bench_attention(const bench::AttentionBenchOptions& options);

}  // namespace wp::cli

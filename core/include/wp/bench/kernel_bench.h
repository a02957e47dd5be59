// Benchmarks of the engine's parts, for `windowpane-cli bench-kernels`, `bench-memory` and
// `bench-attention`: they run the kernels and return figures; printing is the caller's. Each
// blocks the calling thread and starts its own thread pool. What the figures mean and how to
// read them: docs/KERNELS.md and docs/PERFORMANCE.md.
#pragma once

#include <cstddef>
#include <memory>

#include <vector>

#include "wp/cache/kv_cache.h"
#include "wp/model/kernel_options.h"
#include "wp/model/precision.h"

namespace wp::bench {

struct Spread {
    double median = 0, min = 0, max = 0;
};

// The median (the upper middle of an even count), min and max of v (not empty).
Spread summarize(std::vector<double> v);

// Memory read bandwidth in bytes/s: the best of `repeat` passes over `bytes` in huge pages (as the
// weights are), read by `threads` threads with the decode kernels' prefetching.
double measure_read_bandwidth(int threads, std::size_t bytes, int repeat);

struct KernelBenchOptions {
    int rows = 4864, cols = 896;  // the weight matrix's shape (cols a multiple of 32)
    int inputs = 1;               // input rows per product: 1 decode, more a prompt
    int threads = 2;              // 0: one per core
    int repeat = 7;               // timed passes
    int mb = 512;                 // f32 bytes of distinct matrices (enough to read from memory)
    KernelOptions kernels;
};

// Products of one weight shape in each precision, as decode (inputs == 1: GB/s of weights read)
// or a prompt (GMAC/s). The random matrices are made once, in bf16; run() converts them.
class KernelBench {
public:
    explicit KernelBench(const KernelBenchOptions& options);
    ~KernelBench();
    KernelBench(const KernelBench&) = delete;
    KernelBench& operator=(const KernelBench&) = delete;

    int matrices() const;  // distinct matrices each pass runs through
    int threads() const;
    // The median, lowest and highest rate of the timed passes (after a warm-up pass).
    Spread run(Precision precision);

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Decode attention over a cache of `context` tokens in every layer (scores, softmax, mix, the
// query heads of each KV head together), as a decode step runs it.
struct AttentionBenchOptions {
    int context = 2048, layers = 26, heads = 8, kv_heads = 4, head_dim = 256, threads = 2, repeat = 7;
    KvType kv = KvType::F16;  // the quantized precisions' cache by default
    float softcap = 50.0f;    // gemma2's attention logit soft-cap; 0 for none (qwen2)
    KernelOptions kernels;
};
struct AttentionBenchResult {
    Spread ms_per_token;
    Spread gb_per_s;             // cache bytes read per second
    double bytes_per_token = 0;  // K and V of every layer
    int threads = 0;
};
AttentionBenchResult run_attention_bench(const AttentionBenchOptions& options);

}  // namespace wp::bench
